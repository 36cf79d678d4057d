// The token bucket is one function (core/token-bucket.ts) and its Lua transcription
// (redis/budget.ts): the same sequences of (time, take) run through takeToken and
// through the script on a real redis-server must give the same answer at every take
// and leave the same state. The script takes the time from ARGV only for this test (the
// service runs it on Redis's clock), so both see the same times, steps back included.
// Then the local buckets (fake time) and the gate's order and fallbacks.
import t from 'tap'
import fc from 'fast-check'
import { takeToken, type BucketState } from '../../src/core/index.js'
import { createLocalBuckets, createRedisBuckets, createUpstreamGate, type Buckets } from '../../src/redis/budget.js'
import { startRedis } from '../helpers/redis.js'
import { withRetryAfter } from '../../src/errors.js'

t.test('the Lua script and takeToken agree, take by take, on a real Redis', async (t) => {
  const server = await startRedis(t)
  let clock = 0
  const lua = createRedisBuckets(server.admin, { nowForTest: () => clock })
  let run = 0
  const bucket = fc.record({
    capacity: fc.integer({ min: 1, max: 50 }),
    // Whole, fractional and awkward rates: 10 per minute is 0.1666… per second.
    rate: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.constantFrom(10 / 60, 1 / 3, 0.5, 2.5, 1000 / 7)),
    start: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
    // Time between takes: bursts at one instant, short and long pauses, clocks stepping back.
    steps: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2_000 }), fc.integer({ min: 2_000, max: 600_000 }), fc.integer({ min: -5_000, max: -1 })), { minLength: 1, maxLength: 60 })
  })
  await fc.assert(fc.asyncProperty(bucket, async ({ capacity, rate, start, steps }) => {
    const name = `diff:${run++}`
    let state: BucketState | undefined
    clock = start
    for (const step of steps) {
      clock += step
      const pure = takeToken(state, clock, capacity, rate)
      state = pure.state
      const got = await lua.take(name, capacity, rate)
      if (got.ok !== pure.ok || got.retryAfterMs !== pure.retryAfterMs) {
        throw new Error(`at ${clock}: Lua ${JSON.stringify(got)}, takeToken ${JSON.stringify(pure)}`)
      }
      const [tokens, at] = await server.admin.hmget(name, 'tokens', 'at')
      if (Number(tokens) !== state.tokens || Number(at) !== state.at) {
        throw new Error(`at ${clock}: Lua stored ${String(tokens)}@${String(at)}, takeToken ${state.tokens}@${state.at}`)
      }
    }
  }), { numRuns: 150 })
  t.pass('150 sequences of up to 60 takes agree')

  // Without the override the script reads Redis's own clock: a fresh bucket is full.
  const real = createRedisBuckets(server.admin)
  t.same(await real.take('real', 2, 1), { ok: true, retryAfterMs: 0 })
  t.same(await real.take('real', 2, 1), { ok: true, retryAfterMs: 0 })
  t.equal((await real.take('real', 2, 1)).ok, false, 'the third take within a second is refused')
})

t.test('a bucket state outside its range is reset, not obeyed', async (t) => {
  const server = await startRedis(t)
  const real = createRedisBuckets(server.admin)
  const poisons: Array<[string, () => Promise<unknown>]> = [
    ['tokens far below zero', async () => await server.admin.hset('b1', 'tokens', '-200000000000', 'at', String(Date.now()))],
    ['tokens above capacity', async () => await server.admin.hset('b2', 'tokens', '1e300', 'at', String(Date.now()))],
    ['NaN', async () => await server.admin.hset('b3', 'tokens', 'nan', 'at', 'nan')],
    ['a string instead of a hash', async () => await server.admin.set('b4', 'garbage')],
    ['a list', async () => await server.admin.rpush('b5', 'x')]
  ]
  for (const [i, [desc, poison]] of poisons.entries()) {
    await poison()
    await server.admin.persist(`b${i + 1}`)
    const r = await real.take(`b${i + 1}`, 5, 5)
    t.same(r, { ok: true, retryAfterMs: 0 }, `${desc}: a full bucket again`)
    t.ok(await server.admin.pttl(`b${i + 1}`) > 0, `${desc}: with a TTL`)
  }
  const s = takeToken({ tokens: -1e12, at: 0 }, 1000, 5, 5)
  t.same([s.ok, s.state], [true, { tokens: 4, at: 1000 }], 'takeToken resets the same states')
  t.same(takeToken({ tokens: Number.NaN, at: Number.NaN }, 1000, 5, 5).state, { tokens: 4, at: 1000 })
})

t.test('Retry-After never above 60 s, whatever a budget says', async (t) => {
  const gate = createUpstreamGate({
    perCaller: { max: 0, timeWindowMs: 60_000 },
    fleetPerSecond: 10,
    local: createLocalBuckets({ now: Date.now, maxBuckets: 10 }),
    shared: { take: async () => ({ ok: false, retryAfterMs: 200_000_000_001_000 }) },
    callerName: (id) => id
  })
  await t.rejects(gate.take('c'), { code: 'STS_VENDING_STS_BUDGET_EXHAUSTED', retryAfterSeconds: 60 })
  t.equal(withRetryAfter(new Error('x'), Number.POSITIVE_INFINITY).retryAfterSeconds, 60)
  t.equal(withRetryAfter(new Error('x'), Number.NaN).retryAfterSeconds, 60)
  t.equal(withRetryAfter(new Error('x'), 0.2).retryAfterSeconds, 1)
})

t.test('takeToken: full at first, refills at the rate, never above capacity, a step back adds nothing', async (t) => {
  let s = takeToken(undefined, 1000, 2, 1)
  t.same([s.ok, s.state], [true, { tokens: 1, at: 1000 }])
  s = takeToken(s.state, 1000, 2, 1)
  t.same([s.ok, s.state.tokens], [true, 0])
  s = takeToken(s.state, 1250, 2, 1)
  t.same([s.ok, s.retryAfterMs], [false, 750], 'a quarter token: 750 ms until the next')
  s = takeToken(s.state, 2000, 2, 1)
  t.same([s.ok, s.state.tokens], [true, 0])
  s = takeToken(s.state, 500, 2, 1)
  t.same([s.ok, s.state], [false, { tokens: 0, at: 500 }], 'stepping back refills nothing')
  s = takeToken(s.state, 1500, 2, 1)
  t.equal(s.ok, true, 'time counts again from the stepped-back reading')
  s = takeToken(s.state, 1_000_000, 2, 1)
  t.equal(s.state.tokens, 1, 'never more than capacity')
})

t.test('the local buckets: one per name, on the injected clock', async (t) => {
  let clock = 0
  const local = createLocalBuckets({ now: () => clock, maxBuckets: 10 })
  t.same(await local.take('a', 1, 2), { ok: true, retryAfterMs: 0 })
  t.same(await local.take('a', 1, 2), { ok: false, retryAfterMs: 500 })
  t.same(await local.take('b', 1, 2), { ok: true, retryAfterMs: 0 }, 'another name, another bucket')
  clock += 500
  t.same(await local.take('a', 1, 2), { ok: true, retryAfterMs: 0 })
})

t.test('the gate: the caller\'s budget first (429), then the fleet\'s (503); Redis failing falls back to local', async (t) => {
  const events: string[] = []
  let failing = false
  let fleetTakes = 0
  const shared: Buckets = {
    async take (name, capacity, rate) {
      if (failing) throw new Error('redis down')
      if (name === 'fleet-budget') fleetTakes++
      return await local.take(`shared:${name}`, capacity, rate)
    }
  }
  const local = createLocalBuckets({ now: () => 0, maxBuckets: 10 })
  const gate = createUpstreamGate({
    perCaller: { max: 2, timeWindowMs: 60_000 },
    fleetPerSecond: 3,
    local: createLocalBuckets({ now: () => 0, maxBuckets: 10 }),
    shared,
    callerName: (id) => `u:${id}`,
    events: { callerRefused: () => events.push('caller'), fleetRefused: () => events.push('fleet'), error: () => events.push('error') }
  })
  await gate.take('alice')
  await gate.take('alice')
  await t.rejects(gate.take('alice'), { code: 'STS_VENDING_CALLER_BUDGET_EXHAUSTED' })
  t.equal(fleetTakes, 2, 'a refused caller does not spend the fleet\'s budget')
  await gate.takeFleet()
  await t.rejects(gate.take('bob'), { code: 'STS_VENDING_STS_BUDGET_EXHAUSTED' })
  t.same(events, ['caller', 'fleet'])
  failing = true
  await gate.take('carol')
  await gate.take('carol')
  await t.rejects(gate.take('carol'), { code: 'STS_VENDING_CALLER_BUDGET_EXHAUSTED' }, 'the local caller bucket holds while Redis fails')
  t.ok(events.includes('error'))
})
