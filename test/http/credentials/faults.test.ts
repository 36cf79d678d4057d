// Checklist C: upstream faults against the STS emulator, with fake backoff sleeps
// (recorded, not waited) and a fake service clock where expiry matters.
import { setLag, sampled } from '../../helpers/event-loop.js' // first: it replaces the event-loop monitor
import t from 'tap'
import { build, type BuildOptions } from '../../helpers/build.js'

function faultHarness (extra: (c: Record<string, any>) => Record<string, any> = (c) => c, deps: BuildOptions['deps'] = {}): BuildOptions & { sleeps: number[] } {
  const sleeps: number[] = []
  return {
    sleeps,
    // These tests are about retries and the breaker: one caller asks again and again, which
    // the per-caller upstream budget (test/cache/upstream-budget.test.ts) would cut short.
    config: (c) => extra({ ...c, rateLimit: { ...(c.rateLimit as Record<string, unknown> | undefined), upstreamPerCaller: { max: 0 } } }),
    deps: { sleep: async (ms: number) => { sleeps.push(ms) }, random: () => 1, ...deps }
  }
}

t.test('5xx twice then recovery: three attempts with capped exponential backoff', async (t) => {
  const o = faultHarness()
  const h = await build(t, o)
  h.emulator.inject({ kind: 'server-error', count: 2, status: 503 })
  const res = await h.vend(h.token())
  t.equal(res.statusCode, 200)
  t.equal(h.emulator.callCount, 3, 'three attempts in all')
  t.same(o.sleeps, [10, 20], 'full-jitter upper bounds base·2^n (random()=1): 10 ms then 20 ms')
})

t.test('5xx that persists: 503 with Retry-After after maxAttempts, nothing cached', async (t) => {
  const o = faultHarness()
  const h = await build(t, o)
  h.emulator.inject({ kind: 'server-error', status: 500 })
  const token = h.token()
  const res = await h.vend(token)
  t.equal(res.statusCode, 503)
  t.equal(res.json.code, 'STS_VENDING_UPSTREAM_UNAVAILABLE')
  t.ok(Number(res.headers['retry-after']) >= 1, 'Retry-After')
  t.notMatch(JSON.stringify(res.json), /InternalError|ServiceUnavailable|request id/i, 'no upstream text')
  t.equal(h.emulator.callCount, 3)
  h.emulator.clearFaults()
  t.equal((await h.vend(token)).statusCode, 200, 'the next request calls STS again: failures are not cached')
  t.equal(h.emulator.callCount, 4)
})

t.test('throttling: the hint is honoured, and the caller gets 503 + Retry-After', async (t) => {
  const o = faultHarness((c) => ({ ...c, sts: { ...c.sts, deadlineMs: 3000 } }))
  const h = await build(t, o)
  h.emulator.inject({ kind: 'throttle', count: 1, retryAfterSeconds: 1 })
  t.equal((await h.vend(h.token({ sub: 'a1' }))).statusCode, 200, 'one throttle, then success')
  t.equal(h.emulator.callCount, 2)
  t.ok((o.sleeps[0] ?? 0) >= 1000, `waited at least the hinted second before retrying (${o.sleeps[0]} ms)`)

  h.emulator.inject({ kind: 'throttle', retryAfterSeconds: 2 })
  const before = h.emulator.callCount
  const res = await h.vend(h.token({ sub: 'a2' }))
  t.equal(res.statusCode, 503)
  t.equal(res.json.code, 'STS_VENDING_UPSTREAM_THROTTLED')
  t.ok(Number(res.headers['retry-after']) >= 2, 'Retry-After carries the hint')
  t.ok(h.emulator.callCount - before <= 3, 'no retry storm')
})

t.test('non-retryable refusals: one attempt, 500, not cached', async (t) => {
  for (const code of ['NoPermission', 'InvalidParameter.PolicyGrammar', 'EntityNotExist.Role']) {
    const o = faultHarness()
    const h = await build(t, o)
    h.emulator.inject({ kind: 'reject', code, status: code === 'NoPermission' ? 403 : 400 })
    const token = h.token()
    const res = await h.vend(token)
    t.equal(res.statusCode, 500, `${code}: 500`)
    t.equal(res.json.code, 'STS_VENDING_UPSTREAM_REJECTED')
    t.notMatch(res.json.message, new RegExp(code.replace('.', '\\.')), 'upstream code not passed through')
    t.equal(h.emulator.callCount, 1, `${code}: no retry`)
    t.same(o.sleeps, [])
    t.ok(h.logs.some((l) => l.includes('"level":50') && l.includes(code)), `${code}: logged loudly with the upstream code`)
    h.emulator.clearFaults()
    t.equal((await h.vend(token)).statusCode, 200, `${code}: next request tries again`)
  }
})

t.test('STS hangs: the request ends at the deadline with 504', async (t) => {
  const o = faultHarness((c) => ({ ...c, sts: { ...c.sts, timeoutMs: 300, deadlineMs: 500 } }))
  const h = await build(t, o)
  h.emulator.inject({ kind: 'hang' })
  const started = Date.now()
  const res = await h.vend(h.token())
  const elapsed = Date.now() - started
  t.equal(res.statusCode, 504)
  t.equal(res.json.code, 'STS_VENDING_UPSTREAM_TIMEOUT')
  t.ok(Number(res.headers['retry-after']) >= 1)
  // Three 300 ms attempts fit maxAttempts, not the 500 ms deadline: the deadline cut them
  // short (counted by the emulator, not timed, so that a busy machine cannot fail it).
  t.ok(h.emulator.callCount <= 2, `bounded by the deadline: ${h.emulator.callCount} of 3 attempts (${elapsed} ms)`)
})

t.test('a hang, then a request that meets 2×5xx then success: 504, then 200, and the circuit stays closed', async (t) => {
  // Issue 16 item 1: with per-attempt counting, the hang's three timed-out attempts and the
  // next request's two 5xx opened the circuit on the default settings. Real STS timeouts
  // (the hang costs three 1 s attempts); the backoff sleeps are fake.
  const o = faultHarness((c) => ({ ...c, sts: { ...c.sts, timeoutMs: 1000, deadlineMs: 5000 } }))
  const h = await build(t, o)
  h.emulator.inject({ kind: 'hang', count: 3 })
  h.emulator.inject({ kind: 'server-error', count: 2, status: 503 })
  const hung = await h.vend(h.token({ sub: 'first' }))
  t.equal(hung.statusCode, 504, 'the hang is answered 504')
  t.equal(hung.json.code, 'STS_VENDING_UPSTREAM_TIMEOUT')
  t.equal(h.emulator.callCount, 3, 'three timed-out attempts')

  const recovered = await h.vend(h.token({ sub: 'second' }))
  t.equal(recovered.statusCode, 200, 'success on the third attempt, not 503')
  t.equal(h.emulator.callCount, 6)
  const after = await Promise.all(['u1', 'u2', 'u3'].map(async (sub) => await h.vend(h.token({ sub }))))
  t.same(after.map((r) => r.statusCode), [200, 200, 200], 'new callers are served: the circuit stayed closed')
  const metrics = await h.app.inject('/metrics')
  t.match(metrics.body, /^stsv_sts_circuit_state 0$/m, 'the gauge says closed')
})

t.test('a real outage opens the circuit within minimumRequests failed requests, then fails fast with 503 + Retry-After', async (t) => {
  let clock = Date.now()
  // Default breaker settings; a budget large enough that it never decides for the breaker.
  const o = faultHarness((c) => ({ ...c, sts: { ...c.sts, maxCallsPerSecond: 100 } }), { now: () => clock })
  const h = await build(t, o)
  h.emulator.inject({ kind: 'server-error', status: 500 })
  const token = h.token()
  const seen: string[] = []
  for (let i = 0; i < 40 && !seen.includes('STS_VENDING_CIRCUIT_OPEN'); i++) {
    const res = await h.vend(token)
    t.equal(res.statusCode, 503)
    seen.push(res.json.code)
    clock += 100
  }
  t.equal(seen.filter((c) => c === 'STS_VENDING_UPSTREAM_UNAVAILABLE').length, 10, 'ten failed requests (minimumRequests), each with its own answer')
  t.equal(seen.at(-1), 'STS_VENDING_CIRCUIT_OPEN', 'then the circuit is open')
  t.equal(h.emulator.callCount, 30, 'ten requests, three attempts each')

  // Failing fast, read from what the request did rather than from the wall clock (a busy
  // machine is slow anyway): no upstream call and no backoff sleep.
  const slept = o.sleeps.length
  t.equal((await h.vend(token)).json.code, 'STS_VENDING_CIRCUIT_OPEN')
  const open = await Promise.all(Array.from({ length: 20 }, async (_v, i) => await h.vend(h.token({ sub: `other${i}` }))))
  t.ok(open.every((r) => r.statusCode === 503 && r.json.code === 'STS_VENDING_CIRCUIT_OPEN' && Number(r.headers['retry-after']) === 2), '503 CIRCUIT_OPEN, Retry-After = the open period (2 s)')
  t.equal(h.emulator.callCount, 30, 'no upstream call while open')
  t.equal(o.sleeps.length, slept, 'and no backoff: 21 refusals without waiting')
  const metrics = await h.app.inject('/metrics')
  t.match(metrics.body, /^stsv_sts_circuit_state 2$/m, 'the gauge says open')
})

t.test('after the open period one probe goes through; failed probes double the open period; a successful one closes it', async (t) => {
  let clock = Date.now()
  const o = faultHarness((c) => ({ ...c, sts: { ...c.sts, maxCallsPerSecond: 100, breaker: { minimumRequests: 4, openMs: 2000, maxOpenMs: 6000 } } }), { now: () => clock })
  const h = await build(t, o)
  h.emulator.inject({ kind: 'server-error', status: 500 })
  const token = h.token()
  for (let i = 0; i < 4; i++) t.equal((await h.vend(token)).json.code, 'STS_VENDING_UPSTREAM_UNAVAILABLE')
  const retryAfter = async (): Promise<number> => {
    const res = await h.vend(token)
    t.equal(res.json.code, 'STS_VENDING_CIRCUIT_OPEN')
    return Number(res.headers['retry-after'])
  }
  t.equal(await retryAfter(), 2, 'open for openMs')

  const periods: number[] = []
  for (const wait of [2000, 4000, 6000]) {
    clock += wait - 1
    t.equal(await retryAfter(), 1, 'still open a millisecond before the end')
    clock += 1
    const calls = h.emulator.callCount
    const probe = await h.vend(token)
    t.equal(probe.json.code, 'STS_VENDING_UPSTREAM_UNAVAILABLE', 'the probe fails with its own answer')
    t.equal(h.emulator.callCount, calls + 1, 'the probe is one attempt')
    periods.push(await retryAfter())
  }
  t.same(periods, [4, 6, 6], 'the open period doubled up to maxOpenMs')

  clock += 6000
  h.emulator.clearFaults()
  // The probe is held at the emulator for a second: "meanwhile" starts once the probe has
  // arrived there (its own record, not a guessed sleep), long before it is answered.
  h.emulator.inject({ kind: 'slow', delayMs: 1000, count: 1 })
  const calls = h.emulator.callCount
  const probe = h.vend(token)
  while (h.emulator.callCount === calls) await new Promise((resolve) => setImmediate(resolve))
  const meanwhile = await h.vend(h.token({ sub: 'bob' }))
  t.equal(meanwhile.json.code, 'STS_VENDING_CIRCUIT_OPEN', 'others are refused while the probe is out')
  t.equal(Number(meanwhile.headers['retry-after']), 1)
  t.equal((await probe).statusCode, 200, 'the probe succeeds')
  t.equal(h.emulator.callCount, calls + 1, 'exactly one probe')
  t.equal((await h.vend(h.token({ sub: 'bob' }))).statusCode, 200, 'closed again')

  h.emulator.inject({ kind: 'server-error', status: 500 })
  for (let i = 0; i < 3; i++) t.equal((await h.vend(h.token({ sub: `later${i}` }))).json.code, 'STS_VENDING_UPSTREAM_UNAVAILABLE')
  const again = await h.vend(h.token({ sub: 'later' }))
  t.equal(again.json.code, 'STS_VENDING_CIRCUIT_OPEN')
  t.equal(Number(again.headers['retry-after']), 2, 'a new outage starts with the short open period again')
})

t.test('STS down with a warm cache: served while above the margin, never below', async (t) => {
  let clock = Date.now()
  const o = faultHarness((c) => c, { now: () => clock })
  const h = await build(t, o)
  const token = h.token({}, { expiresInSeconds: 7200 })
  const first = await h.vend(token)
  t.equal(first.statusCode, 200)
  const expiration = Date.parse(first.json.expiration)
  h.emulator.inject({ kind: 'server-error' })

  clock = expiration - 1200_000 - 1000 // 1 s above the margin
  const warm = await h.vend(token)
  t.equal(warm.statusCode, 200, 'cached credentials still served during the outage')
  t.equal(warm.json.accessKeyId, first.json.accessKeyId)
  t.ok(Date.parse(warm.json.expiration) - clock >= 1200_000, 'Expiration ≥ now + margin')

  clock = expiration - 1200_000 + 1000 // 1 s below the margin
  const cold = await h.vend(token)
  t.equal(cold.statusCode, 503, 'below the margin: refused, not served stale')
  t.equal(cold.json.code, 'STS_VENDING_UPSTREAM_UNAVAILABLE')

  h.emulator.clearFaults()
  clock = Date.now()
  const after = await h.vend(token)
  t.equal(after.statusCode, 200, 'first success after the outage')
  t.not(after.json.accessKeyId, first.json.accessKeyId, 'new credentials')
  const calls = h.emulator.callCount
  t.equal((await h.vend(token)).statusCode, 200)
  t.equal(h.emulator.callCount, calls, 'and they fill the cache again')
})

t.test('per-instance STS budget: the excess gets 503 from us, not throttling from STS', async (t) => {
  const clock = Date.now()
  const o = faultHarness((c) => ({ ...c, sts: { ...c.sts, maxCallsPerSecond: 5 } }), { now: () => clock })
  const h = await build(t, o)
  const res = await Promise.all(Array.from({ length: 20 }, async (_v, i) => h.vend(h.token({ sub: `user${i}` }))))
  const ok = res.filter((r) => r.statusCode === 200)
  const refused = res.filter((r) => r.statusCode === 503)
  t.equal(ok.length, 5, 'the budget (5 calls) was spent')
  t.equal(refused.length, 15)
  t.ok(refused.every((r) => r.json.code === 'STS_VENDING_STS_BUDGET_EXHAUSTED' && Number(r.headers['retry-after']) >= 1))
  t.equal(h.emulator.callCount, 5, 'STS saw exactly the budget')
  t.ok(h.emulator.calls.every((c) => c.outcome === 'ok'), 'and never throttled')
})

t.test('event-loop lag sheds /credentials with 503, the probes keep answering', async (t) => {
  const h = await build(t, { config: (c) => ({ ...c, server: { maxEventLoopDelayMs: 50 } }) })
  const token = h.token()
  t.equal((await h.vend(token)).statusCode, 200)
  setLag(600)
  t.teardown(() => { setLag(0) })
  await sampled()
  const shed = await h.vend(token)
  t.equal(shed.statusCode, 503)
  t.equal(shed.json.code, 'STS_VENDING_OVERLOADED')
  t.ok(Number(shed.headers['retry-after']) >= 1)
  t.equal((await h.app.inject('/healthz')).statusCode, 200, 'liveness is not shed')
})

t.test('1000 concurrent first requests for one key: one AssumeRole; 500 new callers: the budget holds', async (t) => {
  const clock = Date.now()
  const o = faultHarness((c) => ({ ...c, rateLimit: { max: 100_000, timeWindowMs: 60_000 }, sts: { ...c.sts, maxCallsPerSecond: 20, timeoutMs: 10_000, deadlineMs: 20_000 } }), { now: () => clock })
  const h = await build(t, o)
  const token = h.token({ sub: 'popular' })
  const same = await Promise.all(Array.from({ length: 1000 }, async () => h.vend(token)))
  t.ok(same.every((r) => r.statusCode === 200), '1000 × 200')
  t.equal(new Set(same.map((r) => r.json.accessKeyId)).size, 1, 'identical credentials')
  t.equal(h.emulator.callCount, 1, 'exactly one AssumeRole')

  const crowd = await Promise.all(Array.from({ length: 500 }, async (_v, i) => h.vend(h.token({ sub: `crowd${i}` }))))
  const ok = crowd.filter((r) => r.statusCode === 200).length
  // A keep-alive socket the emulator closed while idle can reset on reuse (as with real
  // STS); its retry also spends budget, so a few of the 19 may become 503s.
  t.ok(ok >= 15 && ok <= 19, `the rest of this second's budget (20 - 1) was issued (${ok})`)
  t.ok(crowd.filter((r) => r.statusCode !== 200).every((r) => r.statusCode === 503), 'the excess gets 503 from us')
  t.ok(crowd.filter((r) => r.json?.code === 'STS_VENDING_STS_BUDGET_EXHAUSTED').length >= 480, 'almost all of it for the budget')
  t.ok(h.emulator.callCount <= 20, `STS saw at most the budget (${h.emulator.callCount})`)
  t.ok(h.emulator.calls.every((c) => c.outcome === 'ok'), 'STS never throttled')
})
