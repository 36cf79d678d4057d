// Issue 16 item 2: each caller (issuer + subject) has a small budget of upstream calls,
// counted on cache misses only, so that one caller sending many distinct prefixes
// cannot spend the instance's (or, with Redis, the fleet's) AssumeRole budget.
import t from 'tap'
import { build } from '../helpers/build.js'
import { startFleet } from '../fleet/fleet.js'

const DIR = 'dir111/dir111_secondline1'

t.test('one caller sending 60 distinct prefixes while 20 new users arrive: the 20 all get 200', async (t) => {
  let clock = Date.now()
  // Defaults: rateLimit.upstreamPerCaller 10 per minute, sts.maxCallsPerSecond 20.
  const h = await build(t, { config: (c) => ({ ...c, rateLimit: { max: 1000, timeWindowMs: 60_000 } }), deps: { now: () => clock } })
  const greedy = h.token({ sub: 'greedy' })
  const users: number[] = []
  const greedyCodes: Record<number, number> = {}
  let prefix = 0
  // Each round is 50 ms (one token of the instance's 20/s): the greedy caller asks for
  // three new prefixes, then a new user arrives. Without the per-caller budget the
  // greedy caller empties the instance's bucket and the users get 503.
  for (let round = 0; round < 20; round++) {
    for (let k = 0; k < 3; k++) {
      const r = await h.vend(greedy, { prefix: `${DIR}/greedy/p${prefix++}/` })
      greedyCodes[r.statusCode] = (greedyCodes[r.statusCode] ?? 0) + 1
      if (r.statusCode === 429) {
        t.equal(r.json.code, 'STS_VENDING_CALLER_BUDGET_EXHAUSTED')
        t.ok(Number(r.headers['retry-after']) >= 1, 'Retry-After')
      }
    }
    users.push((await h.vend(h.token({ sub: `newcomer-${round}` }))).statusCode)
    clock += 50
  }
  t.same(users, Array(20).fill(200), 'every new user got credentials')
  t.same(greedyCodes, { 200: 10, 429: 50 }, 'the greedy caller got its 10 and 429 for the rest')
  t.equal(h.emulator.callCount, 30, 'STS saw 10 + 20 calls')
  t.match((await h.app.inject('/metrics')).body, /stsv_caller_budget_rejections_total 50/)
})

t.test('hits never count: the same prefix 50 times is one upstream call and never 429', async (t) => {
  const h = await build(t, { config: (c) => ({ ...c, rateLimit: { max: 1000, timeWindowMs: 60_000, upstreamPerCaller: { max: 2, timeWindowMs: 60_000 } } }) })
  const tok = h.token({ sub: 'steady' })
  for (let i = 0; i < 50; i++) t.equal((await h.vend(tok, { prefix: `${DIR}/steady/a/` })).statusCode, 200)
  t.equal((await h.vend(tok, { prefix: `${DIR}/steady/b/` })).statusCode, 200, 'a second miss is within the budget')
  t.equal((await h.vend(tok, { prefix: `${DIR}/steady/c/` })).statusCode, 429, 'the third miss is over it')
  t.equal((await h.vend(tok, { prefix: `${DIR}/steady/a/` })).statusCode, 200, 'issued credentials keep being served')
  t.equal(h.emulator.callCount, 2)
})

t.test('the budget refills over its window (fake time)', async (t) => {
  let clock = Date.now()
  const h = await build(t, { config: (c) => ({ ...c, rateLimit: { max: 1000, timeWindowMs: 60_000, upstreamPerCaller: { max: 2, timeWindowMs: 60_000 } } }), deps: { now: () => clock } })
  const tok = h.token({ sub: 'patient' })
  t.equal((await h.vend(tok, { prefix: `${DIR}/patient/1/` })).statusCode, 200)
  t.equal((await h.vend(tok, { prefix: `${DIR}/patient/2/` })).statusCode, 200)
  const refused = await h.vend(tok, { prefix: `${DIR}/patient/3/` })
  t.equal(refused.statusCode, 429)
  t.equal(Number(refused.headers['retry-after']), 30, 'one token every 30 s')
  clock += 30_000
  t.equal((await h.vend(tok, { prefix: `${DIR}/patient/3/` })).statusCode, 200, 'after Retry-After it passes')
})

t.test('max 0 turns the budget off', async (t) => {
  const h = await build(t, { config: (c) => ({ ...c, rateLimit: { max: 1000, timeWindowMs: 60_000, upstreamPerCaller: { max: 0 } } }) })
  const tok = h.token({ sub: 'unbounded' })
  for (let i = 0; i < 15; i++) t.equal((await h.vend(tok, { prefix: `${DIR}/unbounded/${i}/` })).statusCode, 200)
})

t.test('with Redis the budget is fleet-wide: spreading over three replicas buys nothing', async (t) => {
  const f = await startFleet(t)
  const greedy = f.token({ sub: 'greedy' })
  const codes: number[] = []
  for (let i = 0; i < 30; i++) codes.push((await f.vend(greedy, { prefix: `${DIR}/greedy/p${i}/` })).statusCode)
  t.equal(codes.filter((c) => c === 200).length, 10, '10 in all, not 10 per replica')
  t.equal(codes.filter((c) => c === 429).length, 20)
  for (let i = 0; i < 20; i++) t.equal((await f.vend(f.token({ sub: `newcomer-${i}` }))).statusCode, 200)
  t.equal(f.emulator.callCount, 30)
})
