// An injected event-loop monitor for the load-shedding tests. @fastify/under-pressure
// reads the lag from perf_hooks.monitorEventLoopDelay's histogram (mean less the
// resolution) once per sampleInterval. Blocking the real loop made those tests depend on
// where the block fell in a sample window and on the machine's load; this replaces the
// monitor with one whose lag the test sets, and tells it when the shedder has read it.
// Import it before anything that loads @fastify/under-pressure (it takes the monitor at
// load): the first import of the test file. Every app in that file then sees no lag
// unless the test sets one, so a busy machine cannot shed its requests either.
import perfHooks from 'node:perf_hooks'

let lagMs = 0
let readers: Array<() => void> = []

function fakeMonitor (options?: { resolution?: number }): perfHooks.IntervalHistogram {
  const resolution = options?.resolution ?? 10
  const ns = (): number => (lagMs + resolution) * 1e6
  return {
    get mean () { return ns() },
    get min () { return ns() },
    get max () { return ns() },
    get stddev () { return 0 },
    get count () { return 1 },
    get exceeds () { return 0 },
    get percentiles () { return new Map([[100, ns()]]) },
    percentile: () => ns(),
    // under-pressure resets right after each read: the lag set before it was seen.
    reset: () => { const r = readers; readers = []; for (const resolve of r) resolve() },
    enable: () => true,
    disable: () => true
  } as unknown as perfHooks.IntervalHistogram
}

Object.assign(perfHooks, { monitorEventLoopDelay: fakeMonitor })

/** From now on the monitor reports `ms` of lag (0: none). */
export function setLag (ms: number): void { lagMs = ms }

/** Resolves once the shedder has read the monitor again (it samples every sampleInterval). */
export async function sampled (): Promise<void> {
  await new Promise<void>((resolve) => { readers.push(resolve) })
}
