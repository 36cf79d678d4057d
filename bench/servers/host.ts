// A child process that runs servers under test, started one by one by the parent's
// calls: `{ kind, init }` answers `{ port }`, `cpu` the process's CPU time so far (µs). The real run gives every server a host
// of its own; the smoke test puts them all in one (one TypeScript load instead of
// eight), which is fine for checking the plumbing and would not be for measuring.
import { serve } from '../lib/child.js'

export interface Running { port: number, close: () => Promise<void> }

type Start = (init: never) => Promise<Running>
// Loaded on demand: the floor's process should not hold the service's modules.
const starters: Record<string, () => Promise<{ start: Start }>> = {
  floor: async () => await import('./floor.js'),
  verify: async () => await import('./verify.js'),
  service: async () => await import('./service.js')
}

serve(async () => {
  const running: Running[] = []
  return {
    info: {},
    async handle (body) {
      // CPU time of this process: per request, the one figure a busy machine barely moves.
      if (body === 'cpu') {
        const { user, system } = process.cpuUsage()
        return user + system
      }
      // A full collection before a timed row (hosts run with --expose-gc), so that no row
      // pays for the garbage of the row before it on the same server.
      if (body === 'gc') {
        globalThis.gc?.()
        return null
      }
      const { kind, init } = body as { kind: string, init: never }
      const load = starters[kind]
      if (load === undefined) throw new Error(`unknown server kind ${kind}`)
      const s = await (await load()).start(init)
      running.push(s)
      return { port: s.port }
    },
    async close () {
      await Promise.allSettled(running.map(async (s) => { await s.close() }))
    }
  }
})
