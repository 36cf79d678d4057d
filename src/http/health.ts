// Liveness never depends on STS or the identity provider: a pod whose upstream is
// down must not be restarted for it. Readiness reports the lifecycle checks.
import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'

export const Liveness = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false })
export const Ready = Type.Object({ status: Type.Literal('ready') }, { additionalProperties: false })
export const NotReady = Type.Object({ status: Type.Literal('not ready'), failing: Type.Array(Type.String()) }, { additionalProperties: false })

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/healthz', {
    logLevel: 'warn',
    schema: { response: { 200: Liveness } }
  }, async (_request, reply) => {
    void reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })

  app.get('/readyz', {
    logLevel: 'warn',
    schema: { response: { 200: Ready, 503: NotReady } }
  }, async (_request, reply) => {
    void reply.header('cache-control', 'no-store')
    const failing = app.lifecycle.notReady()
    if (failing.length === 0) return { status: 'ready' }
    return reply.code(503).send({ status: 'not ready', failing })
  })
}
