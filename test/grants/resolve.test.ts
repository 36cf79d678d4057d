import t from 'tap'
import type { GrantConfig } from '../../src/config/schema.js'
import { resolveGrant, type VendRequest } from '../../src/grants/resolve.js'
import { compileGrants } from '../../src/grants/compile.js'
import { buildSessionPolicy, serializePolicy } from '../../src/policy/build.js'
import { POLICY_MAX_BYTES } from '../../src/core/index.js'
import { evaluatePolicy } from '../../devkit/policy/evaluate.js'

function grant (g: Partial<GrantConfig> & { name: string }): GrantConfig {
  return {
    issuers: ['corp'],
    roleArn: 'acs:ram::123456789012:role/uploader',
    bucket: 'uploads',
    region: 'cn-hangzhou',
    prefix: 'users/{sub}/',
    actions: ['list', 'read', 'write', 'delete'],
    durationSeconds: 3600,
    ...g
  }
}

function compile (grants: GrantConfig[]): ReturnType<typeof compileGrants> {
  return compileGrants({ issuers: [{ name: 'corp' }, { name: 'partner' }], grants, cache: { minRemainingSeconds: 1200 } })
}

const GRANTS = compile([
  grant({ name: 'home' }),
  grant({ name: 'reports', prefix: 'reports/{tenant}/{sub:sha256}/', actions: ['read'], when: { scope: 'reports:read' } }),
  grant({ name: 'admin', prefix: 'admin/{sub}/', when: { groups: 'admins' } }),
  grant({ name: 'partners', issuers: ['partner', 'corp'], prefix: 'apps/{issuer}/{sub}/', when: { role: 'partner' } })
])

const code = (name: string): { code: string } => ({ code: `STS_VENDING_${name}` })

t.test('one applicable grant is chosen without naming it', async (t) => {
  const r = resolveGrant(GRANTS, 'corp', { sub: 'alice' }, {})
  t.equal(r.grant.name, 'home')
  t.equal(r.grantPrefix, 'users/alice/')
  t.equal(r.prefix, 'users/alice/')
  t.same(r.actions, ['list', 'read', 'write', 'delete'])
  t.equal(r.durationSeconds, 3600)
  t.equal(r.policy, serializePolicy(buildSessionPolicy('uploads', 'users/alice/', ['list', 'read', 'write', 'delete'])))
})

t.test('`when` matching', async (t) => {
  const rows: Array<[string, Record<string, unknown>, string, string | undefined]> = [
    ['scope word in a space-separated string', { sub: 'a', tenant: 't', scope: 'openid reports:read profile' }, 'reports', 'reports'],
    ['scope equal to the word', { sub: 'a', tenant: 't', scope: 'reports:read' }, 'reports', 'reports'],
    ['scope array containing the word', { sub: 'a', tenant: 't', scope: ['reports:read'] }, 'reports', 'reports'],
    ['array claim contains the value', { sub: 'a', groups: ['users', 'admins'] }, 'admin', 'admin'],
    ['string claim equals the value', { sub: 'a', groups: 'admins' }, 'admin', 'admin']
  ]
  for (const [why, claims, name, want] of rows) {
    t.equal(resolveGrant(GRANTS, 'corp', claims, { grant: name }).grant.name, want, why)
  }
  const refused: Array<[string, Record<string, unknown>, string]> = [
    ['a prefix of the scope word is not the word', { sub: 'a', tenant: 't', scope: 'reports:read:all' }, 'reports'],
    ['a substring of a scope word is not the word', { sub: 'a', tenant: 't', scope: 'xreports:read' }, 'reports'],
    ['space-splitting is only for scope', { sub: 'a', groups: 'users admins' }, 'admin'],
    ['absent claim', { sub: 'a' }, 'admin'],
    ['non-string does not match', { sub: 'a', groups: true }, 'admin'],
    ['array of non-strings', { sub: 'a', groups: [['admins']] }, 'admin'],
    ['inherited claim', Object.assign(Object.create({ groups: 'admins' }) as object, { sub: 'a' }), 'admin'],
    ['case differs', { sub: 'a', groups: 'Admins' }, 'admin']
  ]
  for (const [why, claims, name] of refused) {
    t.throws(() => resolveGrant(GRANTS, 'corp', claims, { grant: name }), code('GRANT_NOT_ALLOWED'), why)
  }
})

t.test('grant selection refusals', async (t) => {
  const rows: Array<[string, string, Record<string, unknown>, VendRequest, string]> = [
    ['a grant that does not exist', 'corp', { sub: 'a' }, { grant: 'nope' }, 'GRANT_NOT_ALLOWED'],
    ['a grant that exists but is not yours', 'corp', { sub: 'a' }, { grant: 'admin' }, 'GRANT_NOT_ALLOWED'],
    ['a grant of another issuer', 'partner', { sub: 'a' }, { grant: 'home' }, 'GRANT_NOT_ALLOWED'],
    ['an unknown issuer', 'evil', { sub: 'a' }, {}, 'GRANT_NOT_ALLOWED'],
    ['no grant applies', 'partner', { sub: 'a' }, {}, 'GRANT_NOT_ALLOWED'],
    ['several grants apply', 'corp', { sub: 'a', groups: ['admins'] }, {}, 'GRANT_AMBIGUOUS'],
    ['grant name of the wrong type', 'corp', { sub: 'a' }, { grant: ['home'] as unknown as string }, 'GRANT_NOT_ALLOWED'],
    ['grant name differing in case', 'corp', { sub: 'a' }, { grant: 'Home' }, 'GRANT_NOT_ALLOWED']
  ]
  for (const [why, issuer, claims, req, name] of rows) {
    t.throws(() => resolveGrant(GRANTS, issuer, claims, req), code(name), why)
  }
  // "does not exist" and "not yours" must be indistinguishable.
  const messages = ['nope', 'admin'].map((g) => {
    try {
      resolveGrant(GRANTS, 'corp', { sub: 'a' }, { grant: g })
    } catch (err) {
      return [(err as { code: string }).code, (err as Error).message, (err as { statusCode: number }).statusCode]
    }
    return undefined
  })
  t.same(messages[0], messages[1])
  t.equal(resolveGrant(GRANTS, 'corp', { sub: 'a', groups: ['admins'] }, { grant: 'admin' }).grantPrefix, 'admin/a/')
})

t.test('an unusable claim gives ClaimNotUsable', async (t) => {
  const rows: Array<[string, Record<string, unknown>]> = [
    ['missing sub', {}], ['wildcard', { sub: 'a*' }], ['slash', { sub: 'a/b' }], ['dot-dot', { sub: '..' }],
    ['quote', { sub: 'a"b' }], ['NUL', { sub: 'a\u0000' }], ['fullwidth', { sub: 'ａ' }], ['number', { sub: 7 }]
  ]
  for (const [why, claims] of rows) {
    t.throws(() => resolveGrant(GRANTS, 'corp', claims, {}), code('CLAIM_NOT_USABLE'), why)
  }
  t.throws(() => resolveGrant(GRANTS, 'corp', { sub: 'a', scope: 'reports:read' }, { grant: 'reports' }), code('CLAIM_NOT_USABLE'),
    'missing tenant for a hashed template')
})

t.test('the same sub through two issuers lands in different directories', async (t) => {
  const a = resolveGrant(GRANTS, 'corp', { sub: 'alice', role: 'partner' }, { grant: 'partners' })
  const b = resolveGrant(GRANTS, 'partner', { sub: 'alice', role: 'partner' }, {})
  t.equal(a.prefix, 'apps/corp/alice/')
  t.equal(b.prefix, 'apps/partner/alice/')
  t.equal(evaluatePolicy(b.policy, { action: 'oss:GetObject', resource: 'acs:oss:*:*:uploads/apps/corp/alice/x' }), 'implicit-deny')
})

t.test('prefix narrowing', async (t) => {
  const claims = { sub: 'alice' }
  t.equal(resolveGrant(GRANTS, 'corp', claims, { prefix: 'users/alice/' }).prefix, 'users/alice/', 'the whole directory')
  const narrow = resolveGrant(GRANTS, 'corp', claims, { prefix: 'users/alice/photos/2024/' })
  t.equal(narrow.prefix, 'users/alice/photos/2024/')
  t.equal(narrow.grantPrefix, 'users/alice/')
  t.equal(evaluatePolicy(narrow.policy, { action: 'oss:PutObject', resource: 'acs:oss:*:*:uploads/users/alice/photos/2024/a.jpg' }), 'allow')
  t.equal(evaluatePolicy(narrow.policy, { action: 'oss:PutObject', resource: 'acs:oss:*:*:uploads/users/alice/notes.txt' }), 'implicit-deny')

  const rows: Array<[string, Record<string, unknown>, unknown]> = [
    ['a sibling that shares the letters (al vs alice)', { sub: 'al' }, 'users/alice/'],
    ['the directory without its slash', claims, 'users/alice'],
    ['a sibling with a suffix', claims, 'users/alice-x/'],
    ['the parent', claims, 'users/'],
    ['the bucket root', claims, ''],
    ['another user', claims, 'users/bob/'],
    ['dot-dot out of the directory', claims, 'users/alice/../bob/'],
    ['dot segment', claims, 'users/alice/./x/'],
    ['double slash', claims, 'users/alice//x/'],
    ['leading slash', claims, '/users/alice/x/'],
    ['no trailing slash', claims, 'users/alice/x'],
    ['wildcard', claims, 'users/alice/*/'],
    ['question mark', claims, 'users/alice/?/'],
    ['backslash', claims, 'users/alice/a\\b/'],
    ['quote', claims, 'users/alice/"/'],
    ['non-ASCII', claims, 'users/alice/é/'],
    ['fullwidth lookalike of the directory', claims, 'users/ａlice/x/'],
    ['different case', claims, 'Users/alice/x/'],
    ['a segment over 128 characters', claims, `users/alice/${'a'.repeat(129)}/`],
    ['over 1024 characters', claims, `users/alice/${'abcdefgh/'.repeat(113)}`],
    ['not a string', claims, ['users/alice/']],
    ['null', claims, null]
  ]
  for (const [why, c, prefix] of rows) {
    t.throws(() => resolveGrant(GRANTS, 'corp', c, { prefix: prefix as string }), code('PREFIX_NOT_ALLOWED'), why)
  }
})

t.test('a requested prefix that would push the policy over 2048 bytes is refused', async (t) => {
  const claims = { sub: 'alice' }
  // Find the longest accepted prefix: everything up to it is accepted, one more segment is not.
  let prefix = 'users/alice/'
  let last = prefix
  for (;;) {
    const next = prefix + 'abcdefghij/'
    if (next.length > 1024) break
    let ok = true
    try {
      const r = resolveGrant(GRANTS, 'corp', claims, { prefix: next })
      t.ok(Buffer.byteLength(r.policy) <= POLICY_MAX_BYTES)
      last = next
    } catch (err) {
      t.equal((err as { code: string }).code, 'STS_VENDING_PREFIX_NOT_ALLOWED')
      ok = false
    }
    prefix = next
    if (!ok) break
  }
  t.ok(last.length > 700 && last.length < 1024, `longest accepted ${last.length}`)
  const bytes = Buffer.byteLength(serializePolicy(buildSessionPolicy('uploads', prefix, ['list', 'read', 'write', 'delete'])))
  t.ok(bytes > POLICY_MAX_BYTES, 'the refused one really was too big')
  t.doesNotThrow(() => resolveGrant(GRANTS, 'corp', claims, { prefix, actions: ['read'] }), 'fewer actions, smaller policy')
})

t.test('actions narrowing', async (t) => {
  const claims = { sub: 'alice' }
  t.same(resolveGrant(GRANTS, 'corp', claims, { actions: ['write', 'list'] }).actions, ['list', 'write'], 'canonical order')
  t.same(resolveGrant(GRANTS, 'corp', claims, { actions: ['read', 'read'] }).actions, ['read'], 'duplicates folded')
  const r = resolveGrant(GRANTS, 'corp', claims, { actions: ['read'] })
  t.equal(evaluatePolicy(r.policy, { action: 'oss:PutObject', resource: 'acs:oss:*:*:uploads/users/alice/x' }), 'implicit-deny')
  const rows: Array<[string, Record<string, unknown>, VendRequest, unknown]> = [
    ['empty list', claims, {}, []],
    ['an action the grant lacks', { sub: 'a', tenant: 't', scope: 'reports:read' }, { grant: 'reports' }, ['write']],
    ['one of them not granted', { sub: 'a', tenant: 't', scope: 'reports:read' }, { grant: 'reports' }, ['read', 'delete']],
    ['an unknown action', claims, {}, ['admin']],
    ['a raw OSS action', claims, {}, ['oss:*']],
    ['not an array', claims, {}, 'read'],
    ['a non-string entry', claims, {}, [1]]
  ]
  for (const [why, c, req, actions] of rows) {
    t.throws(() => resolveGrant(GRANTS, 'corp', c, { ...req, actions: actions as VendRequest['actions'] }), code('ACTIONS_NOT_ALLOWED'), why)
  }
})

t.test('duration narrowing', async (t) => {
  const claims = { sub: 'alice' }
  // The shortest is the cache margin (1200) + MIN_USABLE_SECONDS (300), above STS's 900.
  t.equal(resolveGrant(GRANTS, 'corp', claims, { durationSeconds: 1500 }).durationSeconds, 1500)
  t.equal(resolveGrant(GRANTS, 'corp', claims, { durationSeconds: 3600 }).durationSeconds, 3600)
  const rows: Array<[string, unknown]> = [
    ['below the STS minimum', 899], ['within the cache margin', 1499], ['above the grant', 3601], ['zero', 0], ['negative', -1], ['fractional', 1000.5],
    ['NaN', Number.NaN], ['Infinity', Number.POSITIVE_INFINITY], ['a numeric string', '1000'], ['null', null]
  ]
  for (const [why, d] of rows) {
    t.throws(() => resolveGrant(GRANTS, 'corp', claims, { durationSeconds: d as number }),
      { ...code('DURATION_NOT_ALLOWED'), message: /; this grant allows 1500 to 3600 seconds$/ }, why)
  }
  const low = compileGrants({ issuers: [{ name: 'corp' }], grants: [grant({ name: 'home' })], cache: { minRemainingSeconds: 0 } })
  t.throws(() => resolveGrant(low, 'corp', claims, { durationSeconds: 600 }), { message: /this grant allows 900 to 3600 seconds$/ }, 'never below STS\'s own minimum')
})

t.test('refusals say what is allowed, from config and grant data only', async (t) => {
  const alice = { sub: 'alice' }
  t.throws(() => resolveGrant(GRANTS, 'corp', alice, { prefix: 'users/bob/' }),
    { ...code('PREFIX_NOT_ALLOWED'), message: 'The requested prefix is outside the directory of this grant; your directory is users/alice/' })
  t.throws(() => resolveGrant(GRANTS, 'corp', { sub: 'alice', scope: 'reports:read', tenant: 't1' }, { grant: 'reports', actions: ['write'] }),
    { ...code('ACTIONS_NOT_ALLOWED'), message: /; this grant allows read$/ })
  t.throws(() => resolveGrant(GRANTS, 'corp', alice, { actions: [] }), { message: /; this grant allows list, read, write, delete$/ })
  const unknown = /; no grant of that name is available to this caller; the grants available to this caller are: home$/
  t.throws(() => resolveGrant(GRANTS, 'corp', alice, { grant: 'nope' }), { ...code('GRANT_NOT_ALLOWED'), message: unknown }, 'an unknown name')
  t.throws(() => resolveGrant(GRANTS, 'corp', alice, { grant: 'admin' }), { ...code('GRANT_NOT_ALLOWED'), message: unknown }, 'a name that is not this caller\'s')
  t.throws(() => resolveGrant(GRANTS, 'partner', alice, {}), { ...code('GRANT_NOT_ALLOWED'), message: /; no grant is available to this caller$/ })
  t.throws(() => resolveGrant(GRANTS, 'corp', { sub: 'a', groups: ['admins'] }, {}), { ...code('GRANT_AMBIGUOUS'), message: /; one of: home, admin$/ })
  t.throws(() => resolveGrant(GRANTS, 'corp', { sub: 'a/b' }, {}),
    { ...code('CLAIM_NOT_USABLE'), message: /the claim "sub" is missing or holds characters .*; a grant prefix can use it hashed, as \{sub:sha256\}$/ })
  t.throws(() => resolveGrant(GRANTS, 'corp', { sub: 'a', scope: 'reports:read' }, { grant: 'reports' }),
    { ...code('CLAIM_NOT_USABLE'), message: /the claim "tenant" is missing/ })
  t.doesNotThrow(() => resolveGrant(GRANTS, 'corp', { sub: 'a', tenant: 't', scope: 'reports:read' }, { grant: 'reports' }), 'with the claim, it resolves')
  for (const secretish of ['a/b-SECRET-VALUE', 'x'.repeat(300)]) {
    try {
      resolveGrant(GRANTS, 'corp', { sub: secretish }, {})
      t.fail('refused')
    } catch (err) {
      t.notOk((err as Error).message.includes(secretish), 'the claim value is never repeated')
    }
  }
})

t.test('compileGrants refuses a bad template', async (t) => {
  t.throws(() => compile([grant({ name: 'x', prefix: 'u-{sub}/' })]), { name: 'ConfigError', message: /grants\[0\]\.prefix: .*whole segment/ })
})
