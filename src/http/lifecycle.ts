// Readiness and shutdown state. `/readyz` is the AND of the registered checks and of
// "not closing"; once close() starts, every new request except liveness gets 503 with
// `Connection: close`, while requests already in flight run to completion.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ShuttingDown } from '../errors.js'

export interface Lifecycle {
  readonly closing: boolean
  /** Register a readiness condition, e.g. "the JWKS keys are loaded". */
  addReadinessCheck (name: string, check: () => boolean): void
  /** Names of the checks that currently fail (empty when ready). */
  notReady (): string[]
}

declare module 'fastify' {
  interface FastifyInstance { lifecycle: Lifecycle }
}

// Probes answer for themselves: liveness stays 200, readiness reports "closing".
const PROBES = new Set(['/healthz', '/readyz'])

async function lifecycle (app: FastifyInstance): Promise<void> {
  let closing = false
  const checks = new Map<string, () => boolean>()
  const state: Lifecycle = {
    get closing () { return closing },
    addReadinessCheck (name, check) { checks.set(name, check) },
    notReady () {
      const failing = [...checks].filter(([, check]) => !check()).map(([name]) => name)
      return closing ? ['closing', ...failing] : failing
    }
  }
  app.decorate('lifecycle', state)
  app.addHook('preClose', async () => { closing = true })
  // Node closes idle keep-alive sockets only at the moment close() starts; a socket
  // that becomes idle later would hold the shutdown until keepAliveTimeout. Answers
  // sent while closing therefore end their connection.
  // Callback hooks: they run on every request, and a promise each is not free (issue 25).
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close')
    done(null, payload)
  })
  app.addHook('onRequest', (request, reply, done) => {
    if (!closing || PROBES.has(request.url.split('?', 1)[0] ?? '')) {
      done()
      return
    }
    void reply.header('connection', 'close')
    done(new ShuttingDown())
  })
}

export default fp(lifecycle, { name: 'lifecycle', fastify: '5.x' })
