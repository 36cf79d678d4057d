import t from 'tap'
import { fillPrefix, hashClaim, isPerCaller, maxFilledLength, mayShareDirectory, parsePrefixTemplate, sameDirectoryRule, usesIssuer, worstCasePrefix } from '../../src/grants/template.js'
import { isSafePrefix, isSafeSegment, SAFE_SEGMENT } from '../../src/core/index.js'

t.test('parsePrefixTemplate accepts templates and splits them into parts', async (t) => {
  const rows: Array<[string, unknown]> = [
    ['dir111/dir111_secondline1/{sub}/', [
      { kind: 'literal', text: 'dir111/dir111_secondline1/' }, { kind: 'claim', claim: 'sub', hash: false }, { kind: 'literal', text: '/' }]],
    ['tenants/{tenant}/{sub:sha256}/', [
      { kind: 'literal', text: 'tenants/' }, { kind: 'claim', claim: 'tenant', hash: false }, { kind: 'literal', text: '/' },
      { kind: 'claim', claim: 'sub', hash: true }, { kind: 'literal', text: '/' }]],
    ['apps/{issuer}/{sub}/', [
      { kind: 'literal', text: 'apps/' }, { kind: 'issuer' }, { kind: 'literal', text: '/' },
      { kind: 'claim', claim: 'sub', hash: false }, { kind: 'literal', text: '/' }]],
    ['{sub}/', [{ kind: 'claim', claim: 'sub', hash: false }, { kind: 'literal', text: '/' }]],
    ['public/', [{ kind: 'literal', text: 'public/' }]],
    ['a.b/c@d/e-f_g/...x/', [{ kind: 'literal', text: 'a.b/c@d/e-f_g/...x/' }]]
  ]
  for (const [source, parts] of rows) {
    t.same(parsePrefixTemplate(source), { source, parts }, source)
  }
})

t.test('parsePrefixTemplate refuses unsafe or unclear templates with a reason', async (t) => {
  const rows: Array<[string, string, RegExp]> = [
    ['empty', '', /empty/],
    ['starts with /', '/users/{sub}/', /start with/],
    ['does not end with /', 'users/{sub}', /end with/],
    ['empty segment', 'users//{sub}/', /empty segment/],
    ['only a slash', '/', /start with/],
    ['dot segment', 'users/./{sub}/', /may not be/],
    ['dot-dot segment', '../{sub}/', /may not be/],
    ['placeholder inside a segment', 'u-{sub}/', /whole segment/],
    ['placeholder followed by text', '{sub}x/', /whole segment/],
    ['two placeholders in a segment', '{a}{b}/', /whole segment/],
    ['nested braces', '{su{b}}/', /whole segment/],
    ['unclosed brace', '{sub/', /whole segment/],
    ['lone closing brace', 'sub}/', /whole segment/],
    ['empty placeholder', '{}/', /not a claim name/],
    ['claim name starting with a digit', '{1sub}/', /not a claim name/],
    ['claim name with a dot', '{a.b}/', /not a claim name/],
    ['unknown modifier', '{sub:md5}/', /unknown modifier/],
    ['empty modifier', '{sub:}/', /unknown modifier/],
    ['issuer with a modifier', '{issuer:sha256}/', /no modifier/],
    ['wildcard *', 'a*/{sub}/', /literal segments/],
    ['wildcard ?', 'a?/{sub}/', /literal segments/],
    ['space', 'a b/{sub}/', /literal segments/],
    ['backslash', 'a\\b/{sub}/', /literal segments/],
    ['dollar', '$a/{sub}/', /literal segments/],
    ['quote', 'a"/{sub}/', /literal segments/],
    ['non-ASCII', 'dossiers/é/{sub}/', /literal segments/],
    ['fullwidth', 'ｕsers/{sub}/', /literal segments/],
    ['literal segment over 128 characters', `${'a'.repeat(129)}/{sub}/`, /literal segments/],
    ['too long once filled', '{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/', /can reach 1032 characters/],
    ['template over 1024 characters', `${'abcdefgh/'.repeat(114)}x/`, /longer than 1024/]
  ]
  for (const [why, source, message] of rows) {
    t.throws(() => parsePrefixTemplate(source), { message }, why)
  }
})

t.test('SAFE_SEGMENT and isSafeSegment', async (t) => {
  t.equal(SAFE_SEGMENT.source, '^[A-Za-z0-9_.@-]{1,128}$')
  t.ok(isSafeSegment('alice.smith@example.com'))
  t.ok(isSafeSegment('...'), 'three dots is a name, not a path step')
  t.ok(isSafeSegment('a'.repeat(128)))
  t.notOk(isSafeSegment('a'.repeat(129)))
  t.notOk(isSafeSegment('.'))
  t.notOk(isSafeSegment('..'))
  t.notOk(isSafeSegment(42))
  t.notOk(isSafeSegment('alice\n'), 'no trailing newline slips past $')
})

t.test('isSafePrefix', async (t) => {
  const good = ['a/', 'users/alice/', 'users/alice/photos/2024/', `${'a'.repeat(128)}/`]
  for (const p of good) t.ok(isSafePrefix(p), p)
  const bad: Array<[string, unknown]> = [
    ['empty', ''], ['just /', '/'], ['no trailing /', 'users/alice'], ['leading /', '/users/alice/'],
    ['double /', 'users//alice/'], ['dot segment', 'users/./alice/'], ['dot-dot segment', 'users/../alice/'],
    ['wildcard', 'users/*/'], ['question mark', 'users/?/'], ['backslash', 'users\\alice/'],
    ['over 1024', `${'abcdefgh/'.repeat(114)}ab/`], ['number', 5], ['undefined', undefined]
  ]
  for (const [why, p] of bad) t.notOk(isSafePrefix(p), why)
})

// Checklist B 21-24: every hostile value of a plain {claim} is refused, never escaped.
const HOSTILE: Array<[string, unknown]> = [
  ['star', '*'], ['star inside', 'al*ce'], ['question mark', 'al?ce'], ['dollar', '$alice'], ['policy variable', '$' + '{ram:sub}'],
  ['open brace', '{'], ['close brace', 'alice}'], ['slash', 'a/b'], ['leading slash', '/alice'], ['trailing slash', 'alice/'],
  ['backslash', 'a\\b'], ['dot', '.'], ['dot-dot', '..'], ['dot-dot path', '../bob'], ['double quote', 'al"ice'],
  ['single quote', "al'ice"], ['backtick', 'al`ice'], ['newline', 'alice\n'], ['carriage return', 'alice\r'], ['tab', 'al\tice'],
  ['NUL', 'alice\u0000'], ['DEL', 'alice\u007f'], ['U+2028 line separator', 'alice\u2028'], ['U+2029', 'alice\u2029'],
  ['zero-width space', 'alice\u200b'], ['BOM', '\ufeffalice'], ['fullwidth a', 'ａlice'], ['fullwidth solidus', 'a／b'],
  ['Cyrillic a lookalike', 'аlice'], ['Greek capital alpha', 'ΑLICE'], ['NFC é', 'jos\u00e9'], ['NFD e + combining acute', 'jose\u0301'],
  ['emoji', 'alice🙂'], ['lone surrogate', 'alice\ud800'], ['space', 'al ice'], ['percent-encoded slash', 'a%2Fb'],
  ['percent-encoded dots', '%2e%2e'], ['colon', 'system:serviceaccount'], ['pipe', 'auth0|5f7c'], ['plus', 'a+b'], ['hash', 'a#b'],
  ['tilde', '~alice'], ['comma', 'a,b'], ['semicolon', 'a;b'], ['angle bracket', '<alice>'], ['ampersand', 'a&b'], ['equals', 'a=b'],
  ['empty string', ''], ['129 characters', 'a'.repeat(129)], ['number', 42], ['boolean', true], ['null', null],
  ['array', ['alice']], ['object', { toString: () => 'alice' }], ['missing', undefined]
]

t.test('fillPrefix refuses every hostile claim value for {claim}', async (t) => {
  const tpl = parsePrefixTemplate('users/{sub}/')
  for (const [why, value] of HOSTILE) {
    const claims = value === undefined ? {} : { sub: value }
    t.equal(fillPrefix(tpl, claims, 'corp'), undefined, why)
  }
})

t.test('fillPrefix splices safe values whole', async (t) => {
  const tpl = parsePrefixTemplate('dir111/dir111_secondline1/{sub}/')
  t.equal(fillPrefix(tpl, { sub: 'alice' }, 'corp'), 'dir111/dir111_secondline1/alice/')
  t.equal(fillPrefix(tpl, { sub: 'a.b@c-d_e' }, 'corp'), 'dir111/dir111_secondline1/a.b@c-d_e/')
  const longest = 'z'.repeat(128)
  t.equal(fillPrefix(tpl, { sub: longest }, 'corp'), `dir111/dir111_secondline1/${longest}/`)
  const two = parsePrefixTemplate('tenants/{tenant}/{sub}/')
  t.equal(fillPrefix(two, { tenant: 'acme', sub: 'alice' }, 'corp'), 'tenants/acme/alice/')
  t.equal(fillPrefix(two, { tenant: 'ac/me', sub: 'alice' }, 'corp'), undefined, 'any unsafe claim refuses the whole prefix')
  t.equal(fillPrefix(two, { sub: 'alice' }, 'corp'), undefined, 'a missing claim refuses')
})

t.test('fillPrefix reads only own claims, never the prototype', async (t) => {
  const tpl = parsePrefixTemplate('users/{constructor}/')
  t.equal(fillPrefix(tpl, {}, 'corp'), undefined)
  const proto = parsePrefixTemplate('users/{__proto__}/')
  t.equal(fillPrefix(proto, {}, 'corp'), undefined)
  const own = JSON.parse('{"__proto__":"alice"}') as Record<string, unknown>
  t.equal(fillPrefix(proto, own, 'corp'), 'users/alice/', 'an own __proto__ claim (from JSON) is an ordinary value')
  const inherited = Object.create({ sub: 'alice' }) as Record<string, unknown>
  t.equal(fillPrefix(parsePrefixTemplate('users/{sub}/'), inherited, 'corp'), undefined)
})

t.test('{claim:sha256} hashes any well-formed string', async (t) => {
  t.equal(hashClaim('abc'), 'ba7816bf8f01cfea414140de5dae2223', 'SHA-256("abc"), first 32 hex (FIPS 180-2 vector)')
  const tpl = parsePrefixTemplate('users/{sub:sha256}/')
  for (const [why, value] of HOSTILE) {
    const out = fillPrefix(tpl, value === undefined ? {} : { sub: value }, 'corp')
    const usable = typeof value === 'string' && value !== '' && !/\p{Cs}/u.test(value)
    if (usable) t.match(out, /^users\/[0-9a-f]{32}\/$/, `${why}: hashed`)
    else t.equal(out, undefined, `${why}: refused`)
  }
  t.not(hashClaim('jos\u00e9'), hashClaim('jose\u0301'), 'NFC and NFD are different subjects, never merged')
  t.equal(hashClaim('x'.repeat(1024))?.length, 32)
  t.equal(hashClaim('x'.repeat(1025)), undefined, 'over 1024 characters')
  t.equal(hashClaim('\ud800'), undefined, 'lone surrogate would hash like U+FFFD')
  t.match(hashClaim('\ufffd'), /^[0-9a-f]{32}$/)
  t.match(hashClaim('\ud83d\ude42'), /^[0-9a-f]{32}$/, 'a surrogate pair is fine')
})

t.test('{issuer} keeps the same subject of two issuers apart', async (t) => {
  const tpl = parsePrefixTemplate('apps/{issuer}/{sub}/')
  const a = fillPrefix(tpl, { sub: 'alice' }, 'corp')
  const b = fillPrefix(tpl, { sub: 'alice' }, 'partner')
  t.equal(a, 'apps/corp/alice/')
  t.equal(b, 'apps/partner/alice/')
  t.not(a, b)
  t.notOk(b?.startsWith(a ?? '-'), 'neither directory is inside the other')
  t.equal(fillPrefix(tpl, { sub: 'alice' }, '../x'), undefined, 'an unsafe issuer name fails closed')
  t.ok(usesIssuer(tpl))
  t.notOk(usesIssuer(parsePrefixTemplate('users/{sub}/')))
})

t.test('maxFilledLength and worstCasePrefix', async (t) => {
  t.equal(maxFilledLength(parsePrefixTemplate('users/{sub}/')), 6 + 128 + 1)
  t.equal(maxFilledLength(parsePrefixTemplate('users/{sub:sha256}/')), 6 + 32 + 1)
  t.equal(maxFilledLength(parsePrefixTemplate('apps/{issuer}/{sub}/')), 5 + 63 + 1 + 128 + 1)
  t.equal(maxFilledLength(parsePrefixTemplate('public/')), 7)
  const tpl = parsePrefixTemplate('t/{tenant}/{sub:sha256}/')
  t.ok(isSafePrefix(worstCasePrefix(tpl)))
  t.equal(worstCasePrefix(tpl).length, maxFilledLength(tpl))
  const real = fillPrefix(tpl, { tenant: 'x'.repeat(128), sub: 'anything' }, 'corp')
  t.equal(real?.length, maxFilledLength(tpl), 'the bound is reached by a real value')
})

t.test('mayShareDirectory', async (t) => {
  const p = parsePrefixTemplate
  const rows: Array<[string, string, string, string, string, boolean]> = [
    ['same template, no issuer', 'users/{sub}/', 'a', 'users/{sub}/', 'b', true],
    ['same template with issuer', 'apps/{issuer}/{sub}/', 'a', 'apps/{issuer}/{sub}/', 'b', false],
    ['same issuer placeholder, same issuer', 'apps/{issuer}/{sub}/', 'a', 'apps/{issuer}/{sub}/', 'a', true],
    ['distinct literals', 'users/{sub}/', 'a', 'partners/{sub}/', 'b', false],
    ['claim at the top may equal a literal', '{sub}/', 'a', 'partners/{sub}/', 'b', true],
    ['nested: shared dir above a claim', 'users/', 'a', 'users/{sub}/', 'b', true],
    ['hash vs hash', 'u/{sub:sha256}/', 'a', 'u/{sub:sha256}/', 'b', true],
    ['hash never equals a non-hex literal', 'u/{sub:sha256}/', 'a', 'u/alice/', 'b', false],
    ['hash may equal a 32-hex literal', 'u/{sub:sha256}/', 'a', `u/${'ab'.repeat(16)}/`, 'b', true],
    ['issuer name vs literal', 'apps/{issuer}/{sub}/', 'corp', 'apps/corp/{sub}/', 'partner', true],
    ['issuer name vs other literal', 'apps/{issuer}/{sub}/', 'corp', 'apps/other/{sub}/', 'partner', false]
  ]
  for (const [why, a, ia, b, ib, want] of rows) {
    t.equal(mayShareDirectory(p(a), ia, p(b), ib), want, why)
    t.equal(mayShareDirectory(p(b), ib, p(a), ia), want, `${why} (swapped)`)
  }
  t.ok(isPerCaller(p('users/{sub:sha256}/')))
  t.notOk(isPerCaller(p('apps/{issuer}/')))
})

t.test('sameDirectoryRule: one directory per caller under both templates', async (t) => {
  const p = parsePrefixTemplate
  const rows: Array<[string, string, string, string, string, boolean]> = [
    ['identical', 'users/{sub}/', 'a', 'users/{sub}/', 'a', true],
    ['{issuer} spelled out', 'apps/{issuer}/{sub}/', 'corp', 'apps/corp/{sub}/', 'corp', true],
    ['other claim', 'home/{sub}/', 'a', 'home/{preferred_username}/', 'a', false],
    ['hashed vs plain', 'u/{sub}/', 'a', 'u/{sub:sha256}/', 'a', false],
    ['deeper', 'u/{sub}/', 'a', 'u/{sub}/x/', 'a', false],
    ['other literal', 'u/{sub}/', 'a', 'v/{sub}/', 'a', false],
    ['{issuer} for two issuers', 'apps/{issuer}/{sub}/', 'corp', 'apps/{issuer}/{sub}/', 'partner', false]
  ]
  for (const [why, a, ia, b, ib, want] of rows) {
    t.equal(sameDirectoryRule(p(a), ia, p(b), ib), want, why)
    t.equal(sameDirectoryRule(p(b), ib, p(a), ia), want, `${why} (swapped)`)
  }
})
