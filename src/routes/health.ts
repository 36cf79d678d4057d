// Liveness never depends on STS or the identity provider: a pod whose upstream is
// down must not be restarted for it. Readiness reports the lifecycle checks.
import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'

const Status = Type.Object({ status: Type.String(), failing: Type.Optional(Type.Array(Type.String())) }, { additionalProperties: false })

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/healthz', {
    logLevel: 'warn',
    schema: { response: { 200: Status } }
  }, async (_request, reply) => {
    void reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })

  app.get('/readyz', {
    logLevel: 'warn',
    schema: { response: { 200: Status, 503: Status } }
  }, async (_request, reply) => {
    void reply.header('cache-control', 'no-store')
    const failing = app.lifecycle.notReady()
    if (failing.length === 0) return { status: 'ready' }
    return reply.code(503).send({ status: 'not ready', failing })
  })
}
