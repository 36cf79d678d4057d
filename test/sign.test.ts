// The signing use case on a fake clock: the grant-level credential is shared by every
// caller, refreshed while it still has expiresSeconds + the cache margin left, and a form
// or URL never outlives it. The upstream is a recording stand-in (the real STS path is
// covered by test/http/uploads/route.test.ts); the cache is the real one.
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { createCredentialSource } from '../src/credential-source.js'
import { compileGrants } from '../src/grants/compile.js'
import type { Upstream } from '../src/alicloud/upstream/index.js'
import type { AssumeRoleInput } from '../src/alicloud/sts-types.js'
import { createSigner } from '../src/sign.js'
import { signingPolicy } from '../src/policy/signing.js'
import { createDevIssuer } from '../devkit/dev/issuer.js'
import { baseConfig } from './helpers/build.js'

const issuer = createDevIssuer()
const base = baseConfig(issuer, 'http://127.0.0.1:1')
const grant = (base.grants as Array<Record<string, unknown>>)[0]!

function setup (durationSeconds = 3600, expiresSeconds = 600, extra: { signing?: Record<string, unknown>, grant?: Record<string, unknown>, callbackSecrets?: ReadonlyMap<string, Buffer> } = {}) {
  let clock = Date.UTC(2026, 10, 30, 6, 0, 0)
  const config = parseConfig({ ...base, grants: [{ ...grant, durationSeconds, ...extra.grant, signing: { maxBytes: 10, expiresSeconds, ...extra.signing } }] })
  const calls: AssumeRoleInput[] = []
  const upstream: Upstream = {
    async assumeRole (input) {
      calls.push(input)
      return { accessKeyId: `STS.key${calls.length}`, accessKeySecret: 'secret', securityToken: 'token', expiration: new Date(clock + input.durationSeconds * 1000) }
    },
    breakerState: () => 'closed'
  }
  const now = (): number => clock
  const source = createCredentialSource({ upstream, now, minRemainingSeconds: config.cache.minRemainingSeconds, local: { maxEntries: 100 } })
  const signer = createSigner({ grants: compileGrants(config), source, now, ...(extra.callbackSecrets !== undefined ? { callbackSecrets: extra.callbackSecrets } : {}) })
  return { signer, calls, config, advance: (s: number) => { clock += s * 1000 }, now }
}

const caller = (sub: string) => ({ issuer: 'app', subject: sub, claims: { sub } })
const DIR = 'dir111/dir111_secondline1/'

t.test('one credential per grant for every caller; refreshed at expiresSeconds + margin', async (t) => {
  const s = setup()
  const margin = s.config.cache.minRemainingSeconds
  const first = await s.signer.form(caller('alice'), {})
  t.match(first.keyPrefix, new RegExp(`^${DIR}alice/[0-9a-f]{32}/upload$`), 'keys: unique (the default) names the key')
  for (let i = 0; i < 50; i++) await s.signer.url(caller(`u${i}`), { key: `${DIR}u${i}/f`, method: 'PUT' })
  t.equal(s.calls.length, 1, '51 callers, one AssumeRole')
  t.strictSame(s.calls[0], { roleArn: grant.roleArn, roleSessionName: 'sign@uploads', durationSeconds: 3600, policy: signingPolicy(s.config.grants[0]!) })

  // The credential expires 3600 s after it was issued: it serves while 600 + margin remain.
  s.advance(3600 - 600 - margin - 1)
  const late = await s.signer.form(caller('bob'), {})
  t.equal(s.calls.length, 1, 'still cached')
  t.equal(late.fields['x-oss-credential']?.split('/')[0], 'STS.key1')
  t.ok(late.expiration.getTime() + margin * 1000 <= Date.UTC(2026, 10, 30, 7, 0, 0), 'the form ends at least the margin before the credential')
  s.advance(2)
  const fresh = await s.signer.form(caller('bob'), {})
  t.equal(s.calls.length, 2, 'refreshed once less would remain')
  t.equal(fresh.fields['x-oss-credential']?.split('/')[0], 'STS.key2')
  t.equal(fresh.expiration.getTime(), s.now() + 600_000, 'a full expiresSeconds, never silently shorter')
})

t.test('a credential too short for a full form is never used (fail closed)', async (t) => {
  const s = setup()
  const short: Upstream = { async assumeRole () { return { accessKeyId: 'STS.short', accessKeySecret: 'x', securityToken: 'y', expiration: new Date(s.now() + 1000_000) } }, breakerState: () => 'closed' }
  const source = createCredentialSource({ upstream: short, now: s.now, minRemainingSeconds: s.config.cache.minRemainingSeconds, local: { maxEntries: 10 } })
  const signer = createSigner({ grants: compileGrants(s.config), source, now: s.now })
  await t.rejects(signer.form(caller('alice'), {}), { code: 'STS_VENDING_UPSTREAM_BAD_RESPONSE' })
})

t.test('a grant whose credentials cannot outlive its forms is refused at start', async (t) => {
  // 600 s of form + 1200 s of cache margin + 300 s of usable time
  t.throws(() => setup(2099), /durationSeconds: must be at least .* \(2100\)/)
  t.doesNotThrow(() => setup(2100))
})

const policyOf = (fields: Record<string, string>): { conditions: unknown[] } => JSON.parse(Buffer.from(fields.policy as string, 'base64').toString('utf8'))

t.test('keys: unique (the default): two forms, two keys, each pinned with eq and x-oss-forbid-overwrite', async (t) => {
  const s = setup()
  const a = await s.signer.form(caller('alice'), {})
  const b = await s.signer.form(caller('alice'), { fileName: 'C:\\fakepath\\holiday photo (1).png' })
  t.not(a.fields.key, b.fields.key)
  t.match(a.fields.key, new RegExp(`^${DIR}alice/[0-9a-f]{32}/upload$`))
  t.match(b.fields.key, new RegExp(`^${DIR}alice/[0-9a-f]{32}/holiday_photo_1_.png$`), 'the file name sanitised into one safe segment')
  for (const f of [a, b]) {
    t.equal(f.keyPrefix, f.fields.key)
    t.equal(f.fields['x-oss-forbid-overwrite'], 'true')
    const conditions = policyOf(f.fields).conditions
    t.ok(conditions.some((c) => JSON.stringify(c) === JSON.stringify(['eq', '$key', f.fields.key])), 'the key pinned with eq')
    t.ok(conditions.some((c) => JSON.stringify(c) === JSON.stringify(['eq', '$x-oss-forbid-overwrite', 'true'])), 'no overwrite, pinned')
    t.notOk(conditions.some((c) => Array.isArray(c) && c[0] === 'starts-with'), 'no prefix condition')
  }
  await t.rejects(s.signer.form(caller('alice'), { key: `${DIR}alice/x` }), { code: 'STS_VENDING_KEY_NOT_ALLOWED' }, 'the caller cannot name the key')
  const put = await s.signer.url(caller('alice'), { key: `${DIR}alice/x`, method: 'PUT' })
  t.strictSame(put.headers, { 'Content-Type': 'application/octet-stream', 'x-oss-forbid-overwrite': 'true' }, 'a PUT URL cannot overwrite either')
  t.strictSame((await s.signer.url(caller('alice'), { key: `${DIR}alice/x`, method: 'GET' })).headers, {})
})

t.test('keys: caller keeps the caller\'s keys and refuses path tricks before signing', async (t) => {
  const s = setup(3600, 600, { signing: { keys: 'caller' } })
  const f = await s.signer.form(caller('alice'), {})
  t.equal(f.keyPrefix, `${DIR}alice/`)
  t.notOk('x-oss-forbid-overwrite' in f.fields)
  await t.rejects(s.signer.form(caller('alice'), { fileName: 'a.png' }), { code: 'STS_VENDING_BAD_REQUEST' }, 'fileName belongs to unique keys')
  const refused: Array<[string, string]> = [
    ['a .. segment', `${DIR}alice/../bob/x`],
    ['a . segment', `${DIR}alice/./x`],
    ['an empty segment', `${DIR}alice//x`],
    ['a control character', `${DIR}alice/a\u0000b`],
    ['a tab', `${DIR}alice/a\tb`],
    ['a .. stem before the placeholder', `${DIR}alice/..` + '$' + '{filename}']
  ]
  for (const [desc, key] of refused) await t.rejects(s.signer.form(caller('alice'), { key }), { code: 'STS_VENDING_KEY_NOT_ALLOWED' }, desc)
  t.equal(s.calls.length, 1, 'no refusal reached STS')
})

t.test('sourceIdentity: the grant\'s signing credential carries sign@<grant>', async (t) => {
  const s = setup(3600, 600, { grant: { sourceIdentity: '{sub}' } })
  await s.signer.form(caller('alice'), {})
  t.equal(s.calls[0]?.sourceIdentity, 'sign@uploads')
})

// Issue 25: the grant and directory are memoised on the verified (frozen) caller. The memo
// must never answer one caller with another's directory, never keep a refusal, and never
// apply to a caller object that could change.
t.test('the resolution memo: per frozen caller and (grant, action); refusals decided afresh', async (t) => {
  const base2 = parseConfig({
    ...base,
    grants: [
      { ...grant, signing: { maxBytes: 10, expiresSeconds: 600 } },
      { ...grant, name: 'team', prefix: 'team/{team}/', when: { team: 'red' }, signing: { maxBytes: 10, expiresSeconds: 600, keys: 'caller' } }
    ]
  })
  const upstream: Upstream = {
    async assumeRole (input) { return { accessKeyId: `STS.${input.roleSessionName}`, accessKeySecret: 's', securityToken: 't', expiration: new Date(Date.now() + 3600_000) } },
    breakerState: () => 'closed'
  }
  const source = createCredentialSource({ upstream, now: Date.now, minRemainingSeconds: base2.cache.minRemainingSeconds, local: { maxEntries: 100 } })
  const signer = createSigner({ grants: compileGrants(base2), source, now: Date.now })
  const alice = Object.freeze({ issuer: 'app', subject: 'alice', claims: Object.freeze({ sub: 'alice' }) })
  const bob = Object.freeze({ issuer: 'app', subject: 'bob', claims: Object.freeze({ sub: 'bob', team: 'red' }) })

  await t.rejects(signer.form(bob, {}), { code: 'STS_VENDING_GRANT_AMBIGUOUS' }, 'two grants fit bob: he must name one')
  await t.rejects(signer.form(bob, {}), { code: 'STS_VENDING_GRANT_AMBIGUOUS' }, 'the refusal was not kept')
  t.equal((await signer.form(bob, { grant: 'team' })).keyPrefix, 'team/red/')
  t.match((await signer.form(bob, { grant: 'uploads' })).keyPrefix, new RegExp(`^${DIR}bob/`), 'the same caller, another grant: its own directory')
  t.match((await signer.form(alice, {})).keyPrefix, new RegExp(`^${DIR}alice/`))
  t.equal((await signer.url(bob, { grant: 'team', key: 'team/red/x', method: 'GET' })).key, 'team/red/x', 'read resolved apart from write')
  await t.rejects(signer.form(alice, { grant: 'team' }), { code: 'STS_VENDING_GRANT_NOT_ALLOWED' }, 'alice never gets bob\'s memoised grant')
  await t.rejects(signer.url(alice, { key: 'team/red/x', method: 'GET' }), { code: 'STS_VENDING_KEY_NOT_ALLOWED' }, 'nor his directory')

  // A caller object that is not frozen can change between requests: resolved every time.
  const mutable = { issuer: 'app', subject: 'carol', claims: { sub: 'carol' } as Record<string, unknown> }
  t.match((await signer.form(mutable, {})).keyPrefix, new RegExp(`^${DIR}carol/`))
  mutable.claims = { sub: 'carol', team: 'red' }
  await t.rejects(signer.form(mutable, {}), { code: 'STS_VENDING_GRANT_AMBIGUOUS' }, 'the changed claims were read afresh')
  // Anything but a string as the grant name is resolved, and refused, afresh.
  await t.rejects(signer.form(alice, { grant: ['uploads'] as never }), { code: 'STS_VENDING_GRANT_NOT_ALLOWED' })
})

t.test('a hit within one second hands the same frozen answer to a frozen caller; a new second, credential or request signs afresh', async (t) => {
  const s = setup(3600, 600, { signing: { keys: 'caller' } })
  const alice = Object.freeze({ issuer: 'app', subject: 'alice', claims: Object.freeze({ sub: 'alice' }) })
  const put = { key: `${DIR}alice/x`, method: 'PUT' } as const
  await s.signer.form(alice, {})
  const form = s.signer.formCached(alice, {})
  const url = s.signer.urlCached(alice, put)
  t.ok(Object.isFrozen(form) && Object.isFrozen(form?.fields), 'a kept form is frozen, its fields too')
  t.ok(Object.isFrozen(url) && Object.isFrozen(url?.headers), 'a kept URL is frozen, its headers too')
  t.equal(s.signer.formCached(alice, {}), form, 'the same second: the same form')
  t.equal(s.signer.urlCached(alice, { ...put }), url, 'an equal request: the same URL')
  t.strictSame(form, await s.signer.form(alice, {}), 'what signing afresh gives at the same clock')
  t.strictSame(url, { ...(await s.signer.url(alice, put)), fromCache: true })
  t.not(s.signer.urlCached(alice, { ...put, method: 'GET' }), url, 'another request: its own answer')
  t.not(s.signer.formCached(alice, { key: `${DIR}alice/y` }), form)
  t.throws(() => s.signer.formCached(alice, { key: `${DIR}bob/x` }), { code: 'STS_VENDING_KEY_NOT_ALLOWED' }, 'each refusal is still made per request')
  t.throws(() => s.signer.formCached(alice, { maxBytes: 11 }), { code: 'STS_VENDING_SIZE_NOT_ALLOWED' })
  const again = s.signer.formCached(alice, {})
  t.strictSame(again, form, 'asked again after another request: the same answer, signed afresh or kept')
  s.advance(0.999)
  t.equal(s.signer.formCached(alice, {}), again, 'still the same second (signed at whole seconds)')
  s.advance(0.001)
  const later = s.signer.formCached(alice, {})
  t.not(later, again, 'the next second: signed afresh')
  t.equal(later?.expiration.getTime(), (form?.expiration.getTime() ?? 0) + 1000)
  t.equal(s.signer.formCached(alice, {}), later)
  // Past the refresh point the grant's credential is loaded anew: nothing signed with the old one is handed out.
  s.advance(3600 - 600 - s.config.cache.minRemainingSeconds)
  await s.signer.form(alice, {})
  t.equal(s.calls.length, 2)
  const renewed = s.signer.formCached(alice, {})
  t.equal(renewed?.fields['x-oss-credential']?.split('/')[0], 'STS.key2', 'the new credential')
  t.equal(s.signer.formCached(alice, {}), renewed)
  const open = { issuer: 'app', subject: 'alice', claims: { sub: 'alice' } }
  t.not(s.signer.formCached(open, {}), s.signer.formCached(open, {}), 'a caller that is not frozen is signed for afresh')
  t.notOk(Object.isFrozen(s.signer.formCached(open, {})))
  const thawed = Object.freeze({ issuer: 'app', subject: 'alice', claims: { sub: 'alice' } })
  t.not(s.signer.formCached(thawed, {}), s.signer.formCached(thawed, {}), 'nor one whose claims are not frozen')
})

t.test('a kept answer is never handed out with another credential, even within its second', async (t) => {
  const s = setup(3600, 600, { signing: { keys: 'caller' } })
  const alice = Object.freeze({ issuer: 'app', subject: 'alice', claims: Object.freeze({ sub: 'alice' }) })
  // Loaded at half a second, the credential's refresh point falls within a second too.
  s.advance(0.5)
  await s.signer.form(alice, {})
  s.advance(3600 - 600 - s.config.cache.minRemainingSeconds - 0.2)
  const old = s.signer.formCached(alice, {})
  t.equal(old?.fields['x-oss-credential']?.split('/')[0], 'STS.key1')
  s.advance(0.3) // past the refresh point, in the same second
  t.equal(s.signer.formCached(alice, {}), undefined, 'the credential must be loaded again')
  await s.signer.form(alice, {})
  const renewed = s.signer.formCached(alice, {})
  t.equal(renewed?.expiration.getTime(), old?.expiration.getTime(), 'the same second')
  t.equal(renewed?.fields['x-oss-credential']?.split('/')[0], 'STS.key2', 'signed with the new credential, not the kept answer')
})

t.test('one answer is kept per caller and kind: the latest', async (t) => {
  const s = setup(3600, 600, { signing: { keys: 'caller' } })
  const alice = Object.freeze({ issuer: 'app', subject: 'alice', claims: Object.freeze({ sub: 'alice' }) })
  await s.signer.form(alice, {})
  const ask = (i: number) => s.signer.urlCached(alice, { key: `${DIR}alice/f${i}`, method: 'GET' })
  const first = ask(0)
  t.equal(ask(0), first, 'kept')
  const form = s.signer.formCached(alice, {})
  t.equal(ask(0), first, 'a form is kept beside it')
  t.equal(s.signer.formCached(alice, {}), form)
  const second = ask(1)
  t.equal(ask(1), second)
  t.not(ask(0), first, 'another request took its place')
})

t.test('forms that draw a random value are never handed out twice: unique keys, callback tickets', async (t) => {
  const unique = setup()
  const alice = Object.freeze({ issuer: 'app', subject: 'alice', claims: Object.freeze({ sub: 'alice' }) })
  await unique.signer.form(alice, {})
  const a = unique.signer.formCached(alice, {})
  const b = unique.signer.formCached(alice, {})
  t.not(a?.fields.key, b?.fields.key, 'two forms, two keys, in the same second')
  t.notOk(Object.isFrozen(a))
  t.equal(unique.signer.urlCached(alice, { key: `${DIR}alice/x`, method: 'PUT' }), unique.signer.urlCached(alice, { key: `${DIR}alice/x`, method: 'PUT' }), 'a URL names its key: kept')

  const callback = { url: 'https://sts.example.com/uploads/callback', forwardUrl: 'https://app.example.com/uploaded', forwardSecretEnv: 'FORWARD_SECRET' }
  const s = setup(3600, 600, { signing: { keys: 'caller', callback }, callbackSecrets: new Map([[grant.name as string, Buffer.alloc(32, 7)]]) })
  await s.signer.form(alice, {})
  const c = s.signer.formCached(alice, {})
  const d = s.signer.formCached(alice, {})
  t.ok(c?.fields.callback !== undefined && d?.fields.callback !== undefined, 'both carry the callback')
  t.not(c?.fields.callback, d?.fields.callback, 'each with its own ticket (its own nonce)')
  t.notOk(Object.isFrozen(c))
})

t.test('formCached / urlCached: the signature form and url give, without a promise, once the credential is cached', async (t) => {
  const s = setup()
  const margin = s.config.cache.minRemainingSeconds
  t.equal(s.signer.formCached(caller('alice'), {}), undefined, 'no credential yet: form must load it')
  t.equal(s.signer.urlCached(caller('alice'), { key: `${DIR}alice/x`, method: 'PUT' }), undefined)
  t.equal(s.calls.length, 0, 'and nothing was loaded')
  t.throws(() => s.signer.formCached(caller('alice'), { key: `${DIR}alice/x` }), { code: 'STS_VENDING_KEY_NOT_ALLOWED' }, 'a refusal comes first, credential or not')
  t.throws(() => s.signer.urlCached(caller('alice'), { key: `${DIR}bob/x`, method: 'PUT' }), { code: 'STS_VENDING_KEY_NOT_ALLOWED' })
  const loaded = await s.signer.url(caller('alice'), { key: `${DIR}alice/x`, method: 'PUT' })
  const url = s.signer.urlCached(caller('alice'), { key: `${DIR}alice/x`, method: 'PUT' })
  t.notOk(url instanceof Promise, 'an answer, not a promise')
  t.strictSame(url, { ...loaded, fromCache: true }, 'what url answers on a hit, at the same clock')
  const form = s.signer.formCached(caller('bob'), {})
  t.match(form, { fromCache: true, keyPrefix: new RegExp(`^${DIR}bob/[0-9a-f]{32}/upload$`) })
  t.equal(form?.fields['x-oss-credential']?.split('/')[0], 'STS.key1')
  s.advance(3600 - 600 - margin + 1)
  t.equal(s.signer.formCached(caller('bob'), {}), undefined, 'past the refresh point: form must load again')
  t.equal(s.calls.length, 1)
})
