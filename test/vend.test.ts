// The use case alone, without HTTP: a recording upstream stands in for STS (the
// client itself is tested against the emulator in test/alicloud/), a fake clock for time.
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { createVender } from '../src/vend.js'
import { createCredentialSource } from '../src/credential-source.js'
import { compileGrants } from '../src/grants/compile.js'
import type { Upstream } from '../src/alicloud/upstream/index.js'
import type { AssumeRoleInput, StsCredentials } from '../src/alicloud/sts-types.js'
import type { Caller } from '../src/auth/caller.js'

const ROLE = 'acs:ram::1234567890123456:role/uploads'

function setup (opts: { validSeconds?: number, gate?: boolean, grant?: Record<string, unknown> } = {}): { vender: ReturnType<typeof createVender>, calls: AssumeRoleInput[], gateTakes: string[], clock: { now: number } } {
  const clock = { now: Date.UTC(2026, 10, 30, 8, 0, 0) }
  const config = parseConfig({
    issuers: [{ name: 'app', issuer: 'https://idp.example.com', audience: 'sts-vending', jwksUri: 'https://idp.example.com/jwks.json', algorithms: ['RS256'] }],
    grants: [{ name: 'uploads', issuers: ['app'], roleArn: ROLE, bucket: 'oss-test', region: 'cn-hangzhou', prefix: 'users/{sub}/', actions: ['list', 'read', 'write'], durationSeconds: 3600, ...opts.grant }]
  })
  const calls: AssumeRoleInput[] = []
  const gateTakes: string[] = []
  let serial = 0
  const upstream: Upstream = {
    async assumeRole (input): Promise<StsCredentials> {
      calls.push(input)
      serial++
      return { accessKeyId: `STS.id${serial}`, accessKeySecret: `s${serial}`, securityToken: `t${serial}`, expiration: new Date(clock.now + (opts.validSeconds ?? input.durationSeconds) * 1000) }
    },
    breakerState: () => 'closed'
  }
  const gate = opts.gate === true ? { take: async (id: string) => { gateTakes.push(id) }, takeFleet: async () => { gateTakes.push('fleet') } } : undefined
  const source = createCredentialSource({ upstream, now: () => clock.now, minRemainingSeconds: config.cache.minRemainingSeconds, local: { maxEntries: 100 }, gate })
  const vender = createVender({ grants: compileGrants(config), source })
  return { vender, calls, gateTakes, clock }
}

const alice: Caller = { issuer: 'app', subject: 'alice', claims: { sub: 'alice' } }
const bob: Caller = { issuer: 'app', subject: 'bob', claims: { sub: 'bob' } }

t.test('a caller gets credentials for their own directory; the session policy says so', async (t) => {
  const { vender, calls } = setup()
  const issued = await vender.vend(alice, {})
  t.match(issued, { bucket: 'oss-test', region: 'cn-hangzhou', prefix: 'users/alice/', grant: 'uploads', fromCache: false, endpoint: 'https://oss-cn-hangzhou.aliyuncs.com' })
  t.equal(calls.length, 1)
  t.equal(calls[0]?.roleArn, ROLE)
  const policy = JSON.parse(calls[0]?.policy ?? '{}') as { Statement: Array<{ Resource: string[] }> }
  const resources = policy.Statement.flatMap((s) => s.Resource)
  t.ok(resources.includes('acs:oss:*:*:oss-test/users/alice/*'), 'objects under the directory')
  t.notOk(resources.some((r) => r.includes('bob')), 'nothing of anyone else')
})

t.test('the second request of a caller is a cache hit; another caller or another narrowing is not', async (t) => {
  const { vender, calls } = setup()
  await vender.vend(alice, {})
  t.equal((await vender.vend(alice, {})).fromCache, true)
  t.equal(calls.length, 1)
  const other = await vender.vend(bob, {})
  t.equal(other.prefix, 'users/bob/')
  t.equal(other.fromCache, false)
  const narrowed = await vender.vend(alice, { prefix: 'users/alice/photos/', actions: ['write'] })
  t.same([narrowed.prefix, narrowed.actions, narrowed.fromCache], ['users/alice/photos/', ['write'], false])
  t.equal(calls.length, 3, 'each distinct session policy is its own AssumeRole')
})

t.test('sourceIdentity: the AssumeRole for alice carries SourceIdentity=alice, and it is part of the cache key', async (t) => {
  const { vender, calls } = setup({ grant: { sourceIdentity: '{sub}' } })
  await vender.vend(alice, {})
  t.equal(calls[0]?.sourceIdentity, 'alice')
  await vender.vend(bob, {})
  t.equal(calls[1]?.sourceIdentity, 'bob')
  t.equal((await vender.vend(alice, {})).fromCache, true, 'the same caller hits the cache')

  const templated = setup({ grant: { sourceIdentity: 'app.{sub:sha256}@{issuer}' } })
  await templated.vender.vend(alice, {})
  t.match(templated.calls[0]?.sourceIdentity, /^app\.[0-9a-f]{32}@app$/)

  const plain = setup()
  await plain.vender.vend(alice, {})
  t.equal(plain.calls[0]?.sourceIdentity, undefined, 'no SourceIdentity unless the grant names one')
})

t.test('sourceIdentity: a claim that cannot make one is refused before STS is called', async (t) => {
  const { vender, calls } = setup({ grant: { sourceIdentity: '{email}' } })
  await t.rejects(vender.vend(alice, {}), { code: 'STS_VENDING_CLAIM_NOT_USABLE' }, 'claim missing')
  const spaced: Caller = { issuer: 'app', subject: 'carol', claims: { sub: 'carol', email: 'carol smith' } }
  await t.rejects(vender.vend(spaced, {}), { code: 'STS_VENDING_CLAIM_NOT_USABLE' }, 'a space is outside STS\'s alphabet')
  const long: Caller = { issuer: 'app', subject: 'dave', claims: { sub: 'dave', email: 'd'.repeat(65) } }
  await t.rejects(vender.vend(long, {}), { code: 'STS_VENDING_CLAIM_NOT_USABLE' }, 'over 64 characters')
  t.equal(calls.length, 0)
})

t.test('refusals happen before the upstream is touched', async (t) => {
  const cases: Array<[string, Parameters<ReturnType<typeof createVender>['vend']>[1], string]> = [
    ['a prefix outside the directory', { prefix: 'users/bob/' }, 'STS_VENDING_PREFIX_NOT_ALLOWED'],
    ['an action the grant lacks', { actions: ['delete'] }, 'STS_VENDING_ACTIONS_NOT_ALLOWED'],
    ['a duration beyond the grant', { durationSeconds: 7200 }, 'STS_VENDING_DURATION_NOT_ALLOWED'],
    ['a duration that could never be served above the margin', { durationSeconds: 1200 }, 'STS_VENDING_DURATION_NOT_ALLOWED'],
    ['a grant that does not exist', { grant: 'nope' }, 'STS_VENDING_GRANT_NOT_ALLOWED']
  ]
  for (const [desc, req, code] of cases) {
    const { vender, calls } = setup()
    await t.rejects(vender.vend(alice, req), { code }, desc)
    t.equal(calls.length, 0, `${desc}: no AssumeRole`)
  }
})

t.test('fail closed: credentials that come back below the margin are never handed out', async (t) => {
  const { vender } = setup({ validSeconds: 600 })
  await t.rejects(vender.vend(alice, {}), { code: 'STS_VENDING_UPSTREAM_BAD_RESPONSE' })
})

t.test('the upstream gate (per-caller and fleet budgets) is consulted on misses only', async (t) => {
  const { vender, gateTakes } = setup({ gate: true })
  await vender.vend(alice, {})
  await vender.vend(alice, {})
  await vender.vend(alice, {})
  await vender.vend(bob, {})
  t.same(gateTakes, ['app\nalice', 'app\nbob'])
})

t.test('the session name is valid for STS and tells callers apart', async (t) => {
  const { vender } = setup()
  const a = await vender.vend(alice, {})
  const b = await vender.vend(bob, {})
  for (const name of [a.roleSessionName, b.roleSessionName]) t.match(name, /^[A-Za-z0-9.@_-]{2,64}$/)
  t.not(a.roleSessionName, b.roleSessionName)
})
