// The one credential source on a fake clock: local hit, miss, shared hit, the budgets
// before STS (a refusal never reaches it), the margin check on whatever came back
// (fail closed), and signing's shift. The upstream, the shared level and the gate are
// recording stand-ins; the local cache is the real one, built by the source.
import t from 'tap'
import { createCredentialSource, type OrderSpec } from '../src/credential-source.js'
import type { Upstream } from '../src/alicloud/upstream/index.js'
import type { AssumeRoleInput, StsCredentials } from '../src/alicloud/sts-types.js'
import type { SharedCache } from '../src/redis/shared-cache.js'
import type { UpstreamGate } from '../src/redis/budget.js'
import { CallerBudgetExhausted } from '../src/errors.js'

const MARGIN = 1200
const ROLE = 'acs:ram::1234567890123456:role/uploads'

interface Rig {
  clock: { now: number }
  calls: Array<{ input: AssumeRoleInput, withinMs: number | undefined }>
  takes: string[]
  /** Seconds of validity STS hands out from now. */
  valid: { seconds: number }
  source: ReturnType<typeof createCredentialSource>
}

function rig (o: { shared?: SharedCache, gate?: Partial<UpstreamGate>, maxEntries?: number } = {}): Rig {
  const clock = { now: Date.UTC(2026, 10, 30, 8, 0, 0) }
  const calls: Rig['calls'] = []
  const takes: string[] = []
  const valid = { seconds: 3600 }
  const upstream: Upstream = {
    async assumeRole (input, call) {
      calls.push({ input, withinMs: call?.withinMs })
      return { accessKeyId: `STS.${calls.length}`, accessKeySecret: 's', securityToken: 't', expiration: new Date(clock.now + valid.seconds * 1000) }
    },
    breakerState: () => 'closed'
  }
  const gate: UpstreamGate = {
    take: o.gate?.take ?? (async (id) => { takes.push(`caller:${id}`); takes.push('fleet') }),
    takeFleet: o.gate?.takeFleet ?? (async () => { takes.push('fleet') })
  }
  const source = createCredentialSource({ upstream, now: () => clock.now, minRemainingSeconds: MARGIN, local: { maxEntries: o.maxEntries ?? 10 }, shared: o.shared, gate })
  return { clock, calls, takes, valid, source }
}

const assume = { roleArn: ROLE, policy: '{"Version":"1"}', durationSeconds: 3600, roleSessionName: 'alice@app' }
const forCaller: OrderSpec = { key: 'k1', assume, budget: { callerId: 'app\nalice' } }

t.test('a miss: the caller\'s budget, then one AssumeRole with exactly what was ordered; then a local hit', async (t) => {
  const r = rig()
  const order = r.source.order(forCaller)
  const first = await r.source.obtain(order)
  t.equal(first.fromCache, false)
  t.strictSame(r.calls.map((c) => c.input), [{ roleArn: ROLE, roleSessionName: 'alice@app', durationSeconds: 3600, policy: '{"Version":"1"}' }])
  t.same(r.takes, ['caller:app\nalice', 'fleet'])
  r.clock.now += 1000
  const second = await r.source.obtain(order)
  t.equal(second.fromCache, true)
  t.equal(second.credentials, first.credentials, 'the same credentials')
  t.equal(r.calls.length, 1, 'a hit calls nothing')
  t.same(r.takes, ['caller:app\nalice', 'fleet'], 'a hit takes no budget')
  t.equal(r.source.size, 1)
  const withExternal = r.source.order({ ...forCaller, key: 'k2', assume: { ...assume, externalId: 'ext-1' } })
  await r.source.obtain(withExternal)
  t.equal(r.calls[1]?.input.externalId, 'ext-1', 'the ExternalId is passed when there is one')
})

t.test('an entry is served until the margin, then fetched again', async (t) => {
  const r = rig()
  const order = r.source.order(forCaller)
  await r.source.obtain(order)
  r.clock.now += (3600 - MARGIN) * 1000
  t.equal((await r.source.obtain(order)).fromCache, true, 'exactly the margin left: still served')
  r.clock.now += 1
  t.equal((await r.source.obtain(order)).fromCache, false, 'less than the margin: fetched again')
  t.equal(r.calls.length, 2)
})

t.test('concurrent misses for one key make one call; maxEntries 0 turns caching and coalescing off', async (t) => {
  const r = rig()
  const order = r.source.order(forCaller)
  const all = await Promise.all([r.source.obtain(order), r.source.obtain(order), r.source.obtain(order)])
  t.equal(r.calls.length, 1)
  t.same(all.map((a) => a.credentials.accessKeyId), ['STS.1', 'STS.1', 'STS.1'])
  const naive = rig({ maxEntries: 0 })
  const o = naive.source.order(forCaller)
  await naive.source.obtain(o)
  await naive.source.obtain(o)
  t.equal(naive.calls.length, 2)
})

t.test('a shared hit: no budget, no AssumeRole, and the entry is local from then on', async (t) => {
  const keys: string[] = []
  let clock = 0
  const stored: StsCredentials = { accessKeyId: 'STS.shared', accessKeySecret: 's', securityToken: 't', expiration: new Date(0) }
  const shared: SharedCache = {
    async getOrLoad (key) {
      keys.push(key)
      return { credentials: { ...stored, expiration: new Date(clock + 3600_000) }, fromCache: true }
    }
  }
  const r = rig({ shared })
  clock = r.clock.now
  const order = r.source.order(forCaller)
  const got = await r.source.obtain(order)
  t.same([got.credentials.accessKeyId, got.fromCache], ['STS.shared', true])
  t.same(keys, ['k1'], 'the shared level is asked under the same key')
  t.equal(r.calls.length, 0)
  t.same(r.takes, [])
  await r.source.obtain(order)
  t.same(keys, ['k1'], 'the second request is a local hit')
})

t.test('a shared miss: the shared level runs the fetch, which takes the budget and passes the deadline left', async (t) => {
  const shared: SharedCache = {
    async getOrLoad (_key, fetch) {
      return { credentials: await fetch(() => 1234), fromCache: false }
    }
  }
  const r = rig({ shared })
  const got = await r.source.obtain(r.source.order(forCaller))
  t.equal(got.fromCache, false)
  t.same(r.calls.map((c) => c.withinMs), [1234])
  t.same(r.takes, ['caller:app\nalice', 'fleet'])
})

t.test('a refused budget never reaches STS, and nothing is remembered', async (t) => {
  let refuse = true
  const r = rig({ gate: { take: async () => { if (refuse) throw new CallerBudgetExhausted() } } })
  const order = r.source.order(forCaller)
  await t.rejects(r.source.obtain(order), { code: 'STS_VENDING_CALLER_BUDGET_EXHAUSTED' })
  t.equal(r.calls.length, 0, 'no AssumeRole')
  refuse = false
  t.equal((await r.source.obtain(order)).fromCache, false, 'the next request tries again')
  t.equal(r.calls.length, 1)
})

t.test('the margin check fails closed on whatever came back (STS or another replica), and stores nothing', async (t) => {
  const r = rig()
  r.valid.seconds = MARGIN - 1
  const order = r.source.order(forCaller)
  await t.rejects(r.source.obtain(order), { code: 'STS_VENDING_UPSTREAM_BAD_RESPONSE' })
  await t.rejects(r.source.obtain(order), { code: 'STS_VENDING_UPSTREAM_BAD_RESPONSE' })
  t.equal(r.calls.length, 2, 'nothing below the margin was kept')
  t.equal(r.source.size, 0)

  let now = 0
  const shared: SharedCache = {
    async getOrLoad () {
      return { credentials: { accessKeyId: 'STS.stale', accessKeySecret: 's', securityToken: 't', expiration: new Date(now + 60_000) }, fromCache: true }
    }
  }
  const s = rig({ shared })
  now = s.clock.now
  await t.rejects(s.source.obtain(s.source.order(forCaller)), { code: 'STS_VENDING_UPSTREAM_BAD_RESPONSE' }, 'a shared entry below the margin')
})

t.test('signing: the fleet\'s budget alone, and the Expiration moved earlier before any level stores it', async (t) => {
  const written: StsCredentials[] = []
  const shared: SharedCache = {
    async getOrLoad (_key, fetch) {
      const c = await fetch(() => 5000)
      written.push(c)
      return { credentials: c, fromCache: false }
    }
  }
  const r = rig({ shared })
  const issuedAt = r.clock.now
  const order = r.source.order({ key: 'sign:x', assume: { ...assume, roleSessionName: 'sign@uploads' }, budget: 'fleet', shiftSeconds: 600 })
  const got = await r.source.obtain(order)
  t.same(r.takes, ['fleet'], 'no caller\'s budget')
  t.equal(got.credentials.expiration.getTime(), issuedAt + (3600 - 600) * 1000, 'shifted by expiresSeconds')
  t.equal(written[0]?.expiration.getTime(), issuedAt + (3600 - 600) * 1000, 'the shared level stores the shifted Expiration')
  // Served while expiresSeconds + margin are left of the real credential, not longer.
  r.clock.now = issuedAt + (3600 - 600 - MARGIN) * 1000
  t.equal((await r.source.obtain(order)).fromCache, true)
  r.clock.now += 1
  t.equal((await r.source.obtain(order)).fromCache, false)
  t.equal(r.calls.length, 2)

  // A credential too short to outlive a form by the margin is refused.
  const short = rig()
  short.valid.seconds = 600 + MARGIN - 1
  await t.rejects(short.source.obtain(short.source.order({ key: 'sign:y', assume, budget: 'fleet', shiftSeconds: 600 })), { code: 'STS_VENDING_UPSTREAM_BAD_RESPONSE' })
})
