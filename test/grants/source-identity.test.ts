import t from 'tap'
import { fillSourceIdentity, parseSourceIdentityTemplate, SOURCE_IDENTITY } from '../../src/grants/source-identity.js'
import { compileGrants } from '../../src/grants/compile.js'
import { parseConfig } from '../../src/config/load.js'

t.test('templates fill from claims and the issuer into STS\'s alphabet', async (t) => {
  const rows: Array<[string, Record<string, unknown>, string | undefined]> = [
    ['{sub}', { sub: 'alice' }, 'alice'],
    ['{sub}@{issuer}', { sub: 'alice' }, 'alice@app'],
    ['u={sub:sha256}', { sub: 'alice' }, 'u=' + '2bd806c97f0e00af1a1fc3328fa763a9'],
    ['{email}', { email: 'alice+x@example.com' }, 'alice+x@example.com'],
    ['{sub}', {}, undefined],
    ['{sub}', { sub: 'a' }, undefined],
    ['{sub}', { sub: 'a b' }, undefined],
    ['{sub}', { sub: 'a/b' }, undefined],
    ['{sub}', { sub: 'x'.repeat(65) }, undefined],
    ['{sub}', { sub: 42 }, undefined],
    ['x{sub}', { sub: '' }, undefined]
  ]
  for (const [source, claims, want] of rows) {
    const got = fillSourceIdentity(parseSourceIdentityTemplate(source), claims, 'app')
    t.equal(got, want, `${source} with ${JSON.stringify(claims)}`)
    if (got !== undefined) t.match(got, SOURCE_IDENTITY)
  }
})

t.test('templates that can never work are refused with a reason', async (t) => {
  const rows: Array<[string, string, RegExp]> = [
    ['empty', '', /empty/],
    ['a space in the literal', 'a {sub}', /literal text/],
    ['a slash in the literal', 'a/{sub}', /literal text/],
    ['unclosed', '{sub', /placeholder/],
    ['stray brace', 'sub}', /placeholder/],
    ['bad claim name', '{1x}', /not a claim name/],
    ['unknown modifier', '{sub:md5}', /unknown modifier/],
    ['issuer modifier', '{issuer:sha256}', /no modifier/],
    ['too long already', 'x'.repeat(40) + '{sub:sha256}', /over STS's 64/]
  ]
  for (const [desc, source, reason] of rows) t.throws(() => parseSourceIdentityTemplate(source), reason, desc)
})

t.test('a bad sourceIdentity is a config error at load naming the grant', async (t) => {
  const config = parseConfig({
    issuers: [{ name: 'app', issuer: 'https://idp.example.com', audience: 'a', jwksUri: 'https://idp.example.com/jwks.json', algorithms: ['RS256'] }],
    grants: [{ name: 'g', issuers: ['app'], roleArn: 'acs:ram::1:role/r', bucket: 'oss-test', region: 'cn-hangzhou', prefix: 'users/{sub}/', actions: ['read'], durationSeconds: 3600, sourceIdentity: 'user {sub}' }]
  })
  t.throws(() => compileGrants(config), { message: /grants\[0\]\.sourceIdentity: .*literal text/ })
})
