// Liveness never depends on STS or the identity provider: a pod whose upstream is
// down must not be restarted for it. Readiness reports the lifecycle checks.
import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'

export const Liveness = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false })
export const Ready = Type.Object({ status: Type.Literal('ready') }, { additionalProperties: false })
export const NotReady = Type.Object({ status: Type.Literal('not ready'), failing: Type.Array(Type.String()) }, { additionalProperties: false })

// The probes answer with bodies written here (the schemas document them and are held
// to openapi.yaml): the first probe, which start-up waits for, then needs no response
// serialiser compiled (http/lazy-compilers.ts).
const JSON_TYPE = 'application/json; charset=utf-8'
const LIVE = JSON.stringify({ status: 'ok' })
const READY = JSON.stringify({ status: 'ready' })

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/healthz', {
    logLevel: 'warn',
    schema: { response: { 200: Liveness } }
  }, async (_request, reply) => {
    return reply.header('cache-control', 'no-store').type(JSON_TYPE).send(LIVE)
  })

  app.get('/readyz', {
    logLevel: 'warn',
    schema: { response: { 200: Ready, 503: NotReady } }
  }, async (_request, reply) => {
    void reply.header('cache-control', 'no-store').type(JSON_TYPE)
    const failing = app.lifecycle.notReady()
    if (failing.length === 0) return reply.send(READY)
    return reply.code(503).send(JSON.stringify({ status: 'not ready', failing }))
  })
}
