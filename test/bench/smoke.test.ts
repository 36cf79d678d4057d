// The benchmark on tiny numbers, so that it cannot rot between the runs that fill
// BENCHMARKS.md. Structure and accounting only, never timing: a slow CI machine must
// not fail this, a broken row must.
import t from 'tap'
import { runBench } from '../../bench/run.js'

// Child processes load TypeScript through the test runner's loader: slower than the real run.
t.setTimeout(240_000)

t.test('npm run bench -- --smoke: every row, finite numbers, the cache saves STS calls', async (t) => {
  // One more round for the bracketed rows than for the rest, as the full run has, and
  // two groups of turns per round (the smoke run's 0.3 s as four 0.075 s slices a side).
  const result = await runBench({ smoke: true, params: { bracketedRounds: 2, sliceSeconds: 0.075 } })
  const byId = new Map(result.rows.map((r) => [r.id, r]))
  const timed = ['1', '2a', '2b', '3a', '3b', '3c', '2c', '3d', '3e', '7', '2d', '3f', '2e', '3g', '7b', '7c']
  t.same(result.rows.map((r) => r.id), [...timed, '4', '5a', '5b', '6a', '6b', '6c'])

  for (const id of [...timed, '4', '5a', '5b']) {
    const row = byId.get(id)
    for (const k of ['rps', 'p50', 'p99', 'cpuPerRequest', 'stsPerRequest'] as const) {
      t.ok(Number.isFinite(row?.[k]), `row ${id}: ${k} is a finite number (${String(row?.[k])})`)
    }
    t.ok((row?.requests ?? 0) > 0, `row ${id}: requests were answered`)
  }
  for (const id of [...timed, '4', '5a']) {
    t.equal(byId.get(id)?.non2xx, 0, `row ${id}: every request answered 2xx`)
  }
  t.equal(byId.get('7')?.signingAssumeRoles, 1, `row 7: ${result.params.signCallers} distinct callers signing cost one AssumeRole`)
  for (const id of ['3a', '3b', '3c', '3d', '3e', '7', '3f', '3g', '7b', '7c']) {
    const vs = byId.get(id)?.vsBaseline
    t.ok(vs !== undefined && [vs.rps, vs.p99, vs.cpu].every(Number.isFinite), `row ${id}: ratios to its baseline`)
  }

  for (const id of ['3a', '3b', '3c', '3d', '3e', '3f', '3g']) t.equal(byId.get(id)?.stsPerRequest, 0, `row ${id}: a warm cache never calls STS`)
  for (const id of ['3f', '3g', '7b', '7c']) t.match(byId.get(id)?.note, /interleaved with it in 0\.075 s turns in each round\): (met|missed) \(median \d\.\d{3}×; per round \d+\.\d\d×, \d+\.\d\d×\)/, `row ${id} says whether its target is met, with the unrounded median and each round`)
  for (const id of timed) t.equal(byId.get(id)?.rounds, ['3f', '3g', '7b', '7c'].includes(id) ? 2 : 1, `row ${id}: as many rounds as asked for its kind`)
  for (const id of ['4', '5a', '5b']) t.equal(byId.get(id)?.rounds, 1, `row ${id}: one round, with its own fresh callers`)
  const miss = byId.get('4')?.stsPerRequest ?? Number.NaN
  const naive = byId.get('5a')?.stsPerRequest ?? Number.NaN
  t.ok(miss < naive, `STS calls per request: cached ${miss} < naive ${naive}`)
  t.ok(miss >= 1 / result.params.requestsPerCaller - 1e-9, 'each new caller costs at least one AssumeRole')
  t.equal(naive, 1, 'without the cache, one AssumeRole per request')

  for (const id of ['6a', '6b']) {
    const m = byId.get(id)?.memory
    t.ok(m !== undefined && Number.isFinite(m.heapBytesPerEntry) && m.heapBytesPerEntry > 0, `row ${id}: heap per entry measured`)
    t.ok(m !== undefined && Number.isFinite(m.rssBytesPerEntry), `row ${id}: RSS per entry measured`)
  }
  t.ok(Number.isFinite(byId.get('6c')?.startupMs) && (byId.get('6c')?.startupMs ?? 0) > 0, 'start-up time measured')

  for (const id of byId.keys()) t.match(result.table, new RegExp(`^\\| ${id} \\|`, 'm'), `the table has row ${id}`)
})
