// mergeLoads: a bracketed row's slices (bench/run.ts) are one run: counts and
// seconds added, rate and percentiles over all of them.
import t from 'tap'
import { mergeLoads, type LoadResult } from '../../bench/lib/load.js'

function run (latencies: number[], seconds: number, non2xx = 0): LoadResult {
  const sorted = Float64Array.from(latencies).sort()
  return { requests: latencies.length + non2xx, ok: latencies.length, non2xx, errors: 0, seconds, rps: latencies.length / seconds, p50: Number.NaN, p99: Number.NaN, latencies: sorted }
}

t.test('two runs merge into one', async (t) => {
  const a = run(Array.from({ length: 100 }, (_, i) => i + 1), 2)
  const b = run(Array.from({ length: 300 }, () => 1000), 1, 5)
  const m = mergeLoads(a, b)
  t.equal(m.ok, 400)
  t.equal(m.requests, 405)
  t.equal(m.non2xx, 5)
  t.equal(m.seconds, 3)
  t.equal(m.rps, 400 / 3, 'the rate over both runs\' time, not the mean of the two rates')
  t.equal(m.p50, 1000, 'percentiles over both runs\' latencies')
  t.equal(m.latencies.length, 400)
  t.ok(m.latencies.every((v, i) => i === 0 || (m.latencies[i - 1] as number) <= v), 'sorted')
})
