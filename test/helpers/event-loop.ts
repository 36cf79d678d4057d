// An injected event-loop monitor for the load-shedding tests. @fastify/under-pressure
// reads the lag from perf_hooks.monitorEventLoopDelay's histogram (mean less the
// resolution) once per sampleInterval. Blocking the real loop made those tests depend on
// where the block fell in a sample window and on the machine's load; this replaces
// under-pressure's monitor with one whose lag the test sets, and tells the test when the
// shedder has read it. Import it before anything that loads @fastify/under-pressure (it
// takes the monitor at load): the first import of the test file. Every app in that file
// then sees no lag unless the test sets one, so a busy machine cannot shed its requests.
import perfHooks from 'node:perf_hooks'

const real = perfHooks.monitorEventLoopDelay
let lagMs = 0
const monitors = new Set<{ reads: number }>()
let onRead: Array<() => void> = []

function fakeMonitor (options?: perfHooks.EventLoopMonitorOptions): perfHooks.IntervalHistogram {
  if (!(new Error().stack ?? '').includes('under-pressure')) return real(options)
  const resolution = options?.resolution ?? 10
  const ns = (): number => (lagMs + resolution) * 1e6
  const state = { reads: 0 }
  monitors.add(state)
  return {
    get mean () { return ns() },
    get min () { return ns() },
    get max () { return ns() },
    get stddev () { return 0 },
    get count () { return 1 },
    get exceeds () { return 0 },
    get percentiles () { return new Map([[100, ns()]]) },
    percentile: () => ns(),
    // under-pressure resets right after each read.
    reset: () => { state.reads++; const r = onRead; onRead = []; for (const f of r) f() },
    enable: () => true,
    disable: () => true
  } as unknown as perfHooks.IntervalHistogram
}

Object.assign(perfHooks, { monitorEventLoopDelay: fakeMonitor })

/** From now on the monitor reports `ms` of lag (0: none). */
export function setLag (ms: number): void { lagMs = ms }

/**
 * Resolves once every live shedder has read the monitor again. Each reads it every
 * sampleInterval (the same for all), so one that has not moved while another moved
 * three times belongs to an app that was closed.
 */
export async function sampled (): Promise<void> {
  const start = new Map([...monitors].map((m) => [m, m.reads]))
  await new Promise<void>((resolve) => {
    const check = (): void => {
      const moved = [...start].map(([m, reads]) => m.reads - reads)
      const most = Math.max(0, ...moved)
      if (most > 0 && moved.every((n) => n > 0 || most >= 3)) {
        for (const [m, reads] of start) if (m.reads === reads) monitors.delete(m)
        resolve()
      } else onRead.push(check)
    }
    check()
  })
}
