// Ready means warm (issue 25). What start-up leaves for later is done as soon as the
// server listens, and `/readyz` answers 503 (`failing: ["warm-up"]`) until it is: the STS
// SDK (a fifth of the old start-up; loaded once), every route schema (compiled on first
// use otherwise, lazy-compilers.ts) and, through their own readiness checks, the JWKS
// of every jwksUri issuer (auth/keys.ts). Nothing of it runs after ready, so a pod that
// reports ready never holds its first callers' event loop for a compile or an import
// (before this, that blocking pushed the loop past `server.maxEventLoopDelayMs` and the
// first callers got 503 OVERLOADED). `/healthz` answers from the moment the server
// listens: the schemas compile one per event-loop turn, so the probes get in between.
//
// A failure is logged and still ends the warm-up: an SDK that did not load is answered
// like an unreachable STS until a later call loads it, a schema that does not compile
// answers 500 on its route. An app that never listens (app.inject() in tests) has no
// warm-up to wait for.
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { StsClient } from '../alicloud/sts-client.js'
import type { LazyCompilers } from './lazy-compilers.js'

export interface WarmUp {
  /** Resolves when the warm-up has ended (done or failed); undefined until the server listens. */
  readonly done: Promise<void> | undefined
}

export function warmUpOnListen (app: FastifyInstance, client: StsClient | undefined, compilers: LazyCompilers): WarmUp {
  let warm = false
  let done: Promise<void> | undefined
  app.lifecycle.addReadinessCheck('warm-up', () => warm || !app.server.listening)

  async function warmUp (): Promise<void> {
    // The SDK's import runs beside the compiles (its file reads are asynchronous).
    const sdk = client?.warmUp?.().catch((err: unknown) => {
      app.log.warn({ code: (err as { code?: unknown }).code }, 'the STS SDK did not load: AssumeRole fails until it does')
    })
    let failed = 0
    while (!app.lifecycle.closing) {
      const compiled = compilers.compileNext()
      if (compiled === undefined) break
      if (!compiled) failed++
      await nextTurn()
    }
    if (failed > 0) app.log.error({ failed }, 'route schemas did not compile: their routes answer 500')
    await sdk
    warm = true
  }

  app.addHook('onListen', (done_) => {
    done = warmUp().catch((err: unknown) => {
      warm = true // never held not-ready by a bug in the warm-up itself; logged
      app.log.error({ err }, 'warm-up failed')
    })
    done_()
  })
  return { get done () { return done } }
}
