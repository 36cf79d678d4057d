// The one credential source on a fake clock: local hit, miss, shared hit, the budgets
// before STS (a refusal never reaches it), the margin check on whatever came back
// (fail closed), and signing's shift. The upstream, the shared level and the gate are
// recording stand-ins; the local cache is the real one, built by the source.
import t from 'tap'
import { createCredentialSource, KEYS_PER_CALLER, type OrderSpec } from '../src/credential-source.js'
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

function rig (o: { shared?: SharedCache, gate?: Partial<UpstreamGate>, maxEntries?: number, denyName?: (id: string) => string } = {}): Rig {
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
  const source = createCredentialSource({ upstream, now: () => clock.now, minRemainingSeconds: MARGIN, local: { maxEntries: o.maxEntries ?? 10 }, shared: o.shared, gate, denyName: o.denyName ?? ((id) => id) })
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
    async forget () {},
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
    async forget () {},
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
    async forget () {},
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
    async forget () {},
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

/** Forget one caller of issuer `app`, by its deny-list name (the rig names a caller by its id unless told otherwise). */
async function forget (r: Rig, subject: string): Promise<number> {
  return await r.source.forgetNamed(new Set([`app\n${subject}`]))
}

/** A shared level in a Map, as Redis would hold it: what is stored, what forget deletes. */
function mapShared (): { shared: SharedCache, held: Map<string, StsCredentials>, forgotten: string[] } {
  const held = new Map<string, StsCredentials>()
  const forgotten: string[] = []
  const shared: SharedCache = {
    async forget (key) { forgotten.push(key); held.delete(key) },
    async getOrLoad (key, fetch) {
      const hit = held.get(key)
      if (hit !== undefined) return { credentials: hit, fromCache: true }
      const c = await fetch(() => 5000)
      held.set(key, c)
      return { credentials: c, fromCache: false }
    }
  }
  return { shared, held, forgotten }
}

t.test('forgetNamed: a caller\'s credentials leave both levels, others\' and signing\'s stay; the next order is one fresh AssumeRole', async (t) => {
  const m = mapShared()
  const r = rig({ shared: m.shared })
  const alice = r.source.order(forCaller)
  const alice2 = r.source.order({ ...forCaller, key: 'k1b', assume: { ...assume, durationSeconds: 1800 } })
  const bob = r.source.order({ key: 'k2', assume: { ...assume, roleSessionName: 'bob@app' }, budget: { callerId: 'app\nbob' } })
  const signing = r.source.order({ key: 'sign:g', assume, budget: 'fleet', shiftSeconds: 600 })
  const before = await r.source.obtain(alice)
  for (const o of [alice2, bob, signing]) await r.source.obtain(o)
  t.equal(r.calls.length, 4)
  t.equal(r.source.size, 4)

  t.equal(await forget(r, 'alice'), 2, 'both of alice\'s keys')
  t.same(m.forgotten.sort(), ['k1', 'k1b'], 'deleted at the shared level')
  t.same([...m.held.keys()].sort(), ['k2', 'sign:g'], 'bob\'s and the grant\'s signing credential stay shared')
  t.equal(r.source.size, 2, 'and local')
  t.equal((await r.source.obtain(bob)).fromCache, true)
  t.equal((await r.source.obtain(signing)).fromCache, true)
  t.equal(r.calls.length, 4)

  const after = await r.source.obtain(alice)
  t.equal(after.fromCache, false, 'alice: a miss')
  t.equal(r.calls.length, 5, 'one fresh AssumeRole')
  t.not(after.credentials.accessKeyId, before.credentials.accessKeyId, 'not the credentials from before')
  t.equal(await forget(r, 'nobody'), 0, 'an unknown caller: nothing')
})

t.test('forgetNamed: callers matched by their deny-list name', async (t) => {
  const m = mapShared()
  const r = rig({ shared: m.shared, denyName: (id) => `d:${id.replace('\n', '/')}` })
  await r.source.obtain(r.source.order(forCaller))
  await r.source.obtain(r.source.order({ key: 'k2', assume, budget: { callerId: 'app\nbob' } }))
  t.equal(await r.source.forgetNamed(new Set(['d:app/alice', 'd:app/carol'])), 1)
  t.same([...m.held.keys()], ['k2'])
  t.equal(r.source.size, 1)
})

t.test('forgotten while loading: that request is answered, but nothing stays at either level', async (t) => {
  const m = mapShared()
  let release = (): void => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const slow: SharedCache = {
    forget: m.shared.forget,
    async getOrLoad (key, fetch) {
      await gate
      return await m.shared.getOrLoad(key, fetch)
    }
  }
  const r = rig({ shared: slow })
  const order = r.source.order(forCaller)
  const pending = r.source.obtain(order)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(await forget(r, 'alice'), 1, 'the key on its way is known')
  release()
  t.equal((await pending).fromCache, false, 'the request in flight is answered')
  t.equal(r.source.size, 0, 'not kept locally')
  t.same([...m.held.keys()], [], 'and deleted again at the shared level once written')
  t.equal((await r.source.obtain(order)).fromCache, false)
  t.equal(r.calls.length, 2)
})

t.test('without a shared level: forgetNamed drops the local entries', async (t) => {
  const r = rig()
  const order = r.source.order(forCaller)
  await r.source.obtain(order)
  t.equal(await forget(r, 'alice'), 1)
  t.equal((await r.source.obtain(order)).fromCache, false)
  t.equal(r.calls.length, 2)
})

t.test('the caller index\'s bound keeps every local entry findable: a key it lets go leaves the local cache too', async (t) => {
  const r = rig({ maxEntries: 100 })
  for (let i = 0; i <= KEYS_PER_CALLER; i++) await r.source.obtain(r.source.order({ ...forCaller, key: `k${i}` }))
  t.equal(r.source.size, KEYS_PER_CALLER, 'one key over the bound: the oldest local entry went with it')
  t.equal((await r.source.obtain(r.source.order({ ...forCaller, key: 'k0' }))).fromCache, false, 'k0 was dropped')
  t.equal(await forget(r, 'alice'), KEYS_PER_CALLER)
  t.equal(r.source.size, 0, 'every local entry of the caller found and dropped')
})

t.test('an entry that expires leaves the index with it; one evicted while usable stays findable', async (t) => {
  const r = rig({ maxEntries: 1 })
  await r.source.obtain(r.source.order(forCaller))
  r.clock.now += (3600 - MARGIN) * 1000 + 1
  await r.source.obtain(r.source.order({ key: 'k2', assume, budget: { callerId: 'app\nbob' } }))
  t.equal(await forget(r, 'alice'), 0, 'alice\'s expired entry, evicted for bob\'s, took her out of the index')
  await r.source.obtain(r.source.order(forCaller))
  t.equal(await forget(r, 'bob'), 1, 'bob\'s entry, evicted for room while usable, is still known (the shared level may hold it)')
})
