// Headers every answer carries, whatever route, status or error produced it. Every
// body this service sends is JSON, YAML or Prometheus text, and none may be sniffed
// into something a browser would run.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

async function securityHeaders (app: FastifyInstance): Promise<void> {
  // A callback hook: no promise per answer for one header.
  app.addHook('onSend', (_request, reply, payload, done) => {
    void reply.header('x-content-type-options', 'nosniff')
    done(null, payload)
  })
}

export default fp(securityHeaders, { name: 'security-headers', fastify: '5.x' })
