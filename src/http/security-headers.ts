// Headers every answer carries, whatever route, status or error produced it. Every
// body this service sends is JSON, YAML or Prometheus text, and none may be sniffed
// into something a browser would run.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

async function securityHeaders (app: FastifyInstance): Promise<void> {
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('x-content-type-options', 'nosniff')
  })
}

export default fp(securityHeaders, { name: 'security-headers', fastify: '5.x' })
