// What start-up leaves for later, done shortly after the server listens so that no
// caller's first request pays for it: the STS SDK (a fifth of the old start-up; a miss
// before then loads it itself, once) and the route schemas (compiled on first use,
// lazy-compilers.ts). A failure is logged here: an SDK that did not load is answered
// like an unreachable STS until a later call loads it, a schema that does not compile
// answers 500 on its route.
import type { FastifyInstance } from 'fastify'
import type { StsClient } from '../alicloud/sts-client.js'
import type { LazyCompilers } from './lazy-compilers.js'

/** How long after listening the warm-up runs: the first readiness probes are answered before it holds the event loop. */
export const WARM_UP_DELAY_MS = 500

export function warmUpOnListen (app: FastifyInstance, client: StsClient | undefined, compilers: LazyCompilers): void {
  let timer: NodeJS.Timeout | undefined
  app.addHook('onListen', async () => {
    timer = setTimeout(() => {
      const failed = compilers.compileAll()
      if (failed > 0) app.log.error({ failed }, 'route schemas did not compile: their routes answer 500')
      client?.warmUp?.().catch((err: unknown) => app.log.warn({ code: (err as { code?: unknown }).code }, 'the STS SDK did not load: AssumeRole fails until it does'))
    }, WARM_UP_DELAY_MS).unref()
  })
  app.addHook('onClose', async () => { clearTimeout(timer) })
}
