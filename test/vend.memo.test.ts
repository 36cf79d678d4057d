// The vender's memo of derivations (grant, policy, session name, cache key) per verified
// token: it must never answer one caller, token or request with another's derivation,
// never keep a refusal, and never skip the cache's margin or the upstream budget.
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { createVender, derivationKey, DERIVATIONS_PER_TOKEN, type Issued } from '../src/vend.js'
import { createCredentialSource } from '../src/credential-source.js'
import { compileGrants } from '../src/grants/compile.js'
import type { Upstream } from '../src/alicloud/upstream/index.js'
import type { AssumeRoleInput } from '../src/alicloud/sts-types.js'
import type { Caller } from '../src/auth/caller.js'
import type { VendRequest } from '../src/grants/resolve.js'

const config = parseConfig({
  sts: { endpoint: 'http://127.0.0.1:9' },
  issuers: [
    { name: 'corp', issuer: 'https://corp.example/', audience: 'sts', secretEnv: 'CORP_SECRET', algorithms: ['HS256'] },
    { name: 'partner', issuer: 'https://partner.example/', audience: 'sts', secretEnv: 'PARTNER_SECRET', algorithms: ['HS256'] }
  ],
  grants: [
    { name: 'home', issuers: ['corp', 'partner'], roleArn: 'acs:ram::1234567890123456:role/up', bucket: 'bkt', region: 'cn-hangzhou', prefix: 'u/{issuer}/{sub}/', actions: ['list', 'read', 'write'], durationSeconds: 3600 },
    { name: 'team', issuers: ['corp'], roleArn: 'acs:ram::1234567890123456:role/team', bucket: 'bkt', region: 'cn-hangzhou', prefix: 't/{team}/', actions: ['read'], durationSeconds: 3600, when: { groups: 'team' } }
  ],
  cache: { minRemainingSeconds: 1200 }
})

interface Rig { vend: (caller: Caller, req: VendRequest) => Promise<Issued>, cached: (caller: Caller, req: VendRequest) => Issued | undefined, calls: AssumeRoleInput[], clock: { now: number }, expiresInMs: { value: number } }

function rig (o: { budget?: (id: string) => void } = {}): Rig {
  const clock = { now: Date.parse('2026-01-01T00:00:00Z') }
  const expiresInMs = { value: 3600_000 }
  const calls: AssumeRoleInput[] = []
  // The seam the app fills with the resilient upstream; here it records what vend asked for.
  const upstream: Upstream = {
    async assumeRole (input) {
      calls.push(input)
      return { accessKeyId: `STS.${calls.length}`, accessKeySecret: 's', securityToken: 'tok', expiration: new Date(clock.now + expiresInMs.value) }
    },
    breakerState: () => 'closed'
  }
  const gate = o.budget !== undefined ? { take: async (id: string) => { o.budget?.(id) } } : undefined
  const source = createCredentialSource({ upstream, now: () => clock.now, minRemainingSeconds: 1200, local: { maxEntries: 100 }, gate: gate as never })
  const vender = createVender({ grants: compileGrants(config), source })
  return { vend: async (c, r) => await vender.vend(c, r), cached: (c, r) => vender.cached(c, r), calls, clock, expiresInMs }
}

const frozen = (claims: Record<string, unknown>): Record<string, unknown> => Object.freeze(claims)
const caller = (issuer: string, claims: Record<string, unknown>, subject = String(claims.sub)): Caller => ({ issuer, subject, claims })

/** What a vender that has never seen anything answers: the oracle for every memoised answer. */
async function fresh (c: Caller, req: VendRequest): Promise<unknown> {
  try {
    const issued = await rig().vend({ ...c, claims: { ...c.claims } }, req)
    return shape(issued)
  } catch (err) {
    return (err as { code?: string }).code
  }
}
function shape (i: Issued): unknown {
  return { grant: i.grant, prefix: i.prefix, actions: [...i.actions], durationSeconds: i.durationSeconds, roleSessionName: i.roleSessionName, bucket: i.bucket }
}
async function answer (r: Rig, c: Caller, req: VendRequest): Promise<unknown> {
  try {
    return shape(await r.vend(c, req))
  } catch (err) {
    return (err as { code?: string }).code
  }
}

t.test('a repeated request of one token is served from the memo', async (t) => {
  const r = rig()
  const alice = caller('corp', frozen({ sub: 'alice' }))
  const a = await r.vend(alice, {})
  const b = await r.vend(alice, {})
  t.equal(b.actions, a.actions, 'the same derivation object (no second resolution)')
  t.ok(b.fromCache, 'and the cache answered')
  t.equal(r.calls.length, 1, 'one AssumeRole')
})

t.test('no request that differs in any field is answered from another\'s memo', async (t) => {
  const aliceClaims = frozen({ sub: 'alice', groups: ['team'], team: 'red' })
  const alice = caller('corp', aliceClaims)
  // Each row is asked after the base request of `alice` has been memoised; the answer
  // must be what a vender that never saw the base request gives.
  const base: VendRequest = { grant: 'home' }
  const rows: Array<[string, Caller, VendRequest]> = [
    ['the same request', alice, base],
    ['another subject on the same claims object', caller('corp', aliceClaims, 'bob'), base],
    ['another issuer on the same claims object', caller('partner', aliceClaims), base],
    ['another token of another caller', caller('corp', frozen({ sub: 'bob' })), base],
    ['another token, same claims content', caller('corp', frozen({ sub: 'alice', groups: ['team'], team: 'red' })), base],
    ['another token whose claims change the directory', caller('corp', frozen({ sub: 'alice', groups: ['team'], team: 'blue' })), { grant: 'team' }],
    ['no grant named: two apply to alice (refused)', alice, {}],
    ['another named grant', alice, { grant: 'team' }],
    ['a grant that does not exist', alice, { grant: 'nope' }],
    ['a narrower prefix', alice, { ...base, prefix: 'u/corp/alice/photos/' }],
    ['a prefix outside the directory', alice, { ...base, prefix: 'u/corp/bob/' }],
    ['fewer actions', alice, { ...base, actions: ['read'] }],
    ['the same actions in another order', alice, { ...base, actions: ['write', 'list', 'read'] }],
    ['an action outside the grant', alice, { ...base, actions: ['delete'] }],
    ['a shorter duration', alice, { ...base, durationSeconds: 2400 }],
    ['a duration under the margin', alice, { ...base, durationSeconds: 900 }],
    ['a duration over the grant', alice, { ...base, durationSeconds: 7200 }],
    ['grant null (not the same as absent)', alice, { grant: null as never }],
    ['durationSeconds -0', alice, { ...base, durationSeconds: -0 }],
    ['durationSeconds as a string', alice, { ...base, durationSeconds: '3600' as never }],
    ['actions as a string', alice, { ...base, actions: 'read' as never }],
    ['actions holding a non-string', alice, { ...base, actions: [1] as never }],
    ['an unknown field only (ignored, as by resolveGrant)', alice, { ...base, other: 1 } as never]
  ]
  const r = rig()
  t.same(await answer(r, alice, base), await fresh(alice, base), 'the base request')
  for (const [why, c, req] of rows) {
    t.same(await answer(r, c, req), await fresh(c, req), why)
  }
  // And in the other order: each row memoised first, then the base request.
  for (const [why, c, req] of rows) {
    const r2 = rig()
    await answer(r2, c, req)
    await answer(r2, c, req)
    t.same(await answer(r2, alice, base), await fresh(alice, base), `the base request after: ${why}`)
  }
})

t.test('a refusal is never memoised: a token that succeeded is refused for a request outside its grant every time', async (t) => {
  const r = rig()
  const alice = caller('corp', frozen({ sub: 'alice' }))
  await r.vend(alice, {})
  for (let i = 0; i < 3; i++) {
    await t.rejects(r.vend(alice, { prefix: 'u/corp/bob/' }), { code: 'STS_VENDING_PREFIX_NOT_ALLOWED' })
    await t.rejects(r.vend(alice, { actions: ['delete'] }), { code: 'STS_VENDING_ACTIONS_NOT_ALLOWED' })
  }
  t.equal(r.calls.length, 1)
})

t.test('claims that are not frozen are derived afresh each time (they could change)', async (t) => {
  const r = rig()
  const claims: Record<string, unknown> = { sub: 'alice', groups: ['team'], team: 'red' }
  const c = caller('corp', claims)
  t.equal((await r.vend(c, { grant: 'team' })).prefix, 't/red/')
  claims.team = 'blue'
  t.equal((await r.vend(c, { grant: 'team' })).prefix, 't/blue/')
  claims.groups = []
  await t.rejects(r.vend(c, { grant: 'team' }), { code: 'STS_VENDING_GRANT_NOT_ALLOWED' })
})

t.test('more distinct requests than the bound per token: each still answered as asked', async (t) => {
  const r = rig()
  const alice = caller('corp', frozen({ sub: 'alice' }))
  const requests: VendRequest[] = Array.from({ length: DERIVATIONS_PER_TOKEN * 2 + 1 }, (_, i) => ({ prefix: `u/corp/alice/d${i}/` }))
  for (let round = 0; round < 2; round++) {
    for (const req of requests) t.equal((await r.vend(alice, req)).prefix, req.prefix)
  }
  t.equal(r.calls.length, requests.length, 'one AssumeRole per distinct request, none after')
})

t.test('the margin is checked on every hit, and the budget is taken on every miss, memo or not', async (t) => {
  const taken: string[] = []
  const r = rig({ budget: (id) => taken.push(id) })
  const alice = caller('corp', frozen({ sub: 'alice' }))
  await r.vend(alice, {})
  await r.vend(alice, {})
  t.same(taken, ['corp\nalice'], 'a hit takes no budget')
  // 41 minutes later a 60-minute credential has less than the 20-minute margin left.
  r.clock.now += 41 * 60_000
  t.equal((await r.vend(alice, {})).fromCache, false, 'below the margin: fetched again')
  t.same(taken, ['corp\nalice', 'corp\nalice'], 'and the miss took the budget')
  // An upstream answer already below the margin is refused, on every request.
  const short = rig()
  short.expiresInMs.value = 10 * 60_000
  for (let i = 0; i < 2; i++) await t.rejects(short.vend(alice, {}), { code: 'STS_VENDING_UPSTREAM_BAD_RESPONSE' })
})

t.test('derivationKey: one-to-one over the values the route admits, undefined for anything else', async (t) => {
  const c = caller('corp', frozen({ sub: 'a' }))
  const keys = [
    derivationKey(c, {}),
    derivationKey(caller('corp', frozen({ sub: 'a' }), 'a\n'), {}),
    derivationKey(caller('corp\n', frozen({ sub: 'a' })), {}),
    derivationKey(c, { grant: 'home' }),
    derivationKey(c, { prefix: 'home' }),
    derivationKey(c, { prefix: 'x","y' }),
    derivationKey(c, { actions: ['read'] }),
    derivationKey(c, { actions: ['read', 'write'] }),
    derivationKey(c, { actions: ['read,write'] as never }),
    derivationKey(c, { durationSeconds: 900 })
  ]
  t.equal(new Set(keys).size, keys.length, 'all distinct')
  t.equal(derivationKey(c, { grant: undefined }), derivationKey(c, {}), 'an absent field is an absent field')
  for (const req of [{ grant: null }, { prefix: 1 }, { durationSeconds: 1.5 }, { durationSeconds: Number.NaN }, { durationSeconds: -0 }, { actions: [null] }, { actions: {} }]) {
    t.equal(derivationKey(c, req as never), undefined, JSON.stringify(req))
  }
})

t.test('cached(): the hit vend would give, without a promise; undefined where vend would load', async (t) => {
  const r = rig()
  const alice = Object.freeze(caller('corp', frozen({ sub: 'alice' })))
  t.equal(r.cached(alice, {}), undefined, 'nothing loaded yet: vend must')
  t.equal(r.calls.length, 0, 'and cached() called no one')
  const loaded = await r.vend(alice, {})
  const hit = r.cached(alice, {})
  t.notOk(hit instanceof Promise, 'an answer, not a promise')
  t.equal(hit, await r.vend(alice, {}), 'the same frozen Issued vend hands out on a hit')
  t.equal(hit?.fromCache, true)
  t.equal(hit?.accessKeyId, loaded.accessKeyId)
  t.throws(() => r.cached(alice, { prefix: 'u/corp/bob/' }), { code: 'STS_VENDING_PREFIX_NOT_ALLOWED' }, 'a refusal is thrown as vend rejects it')
  r.clock.now += (3600 - 1200) * 1000 + 1
  t.equal(r.cached(alice, {}), undefined, 'below the margin: vend must load again')
  t.equal(r.calls.length, 1)
})
