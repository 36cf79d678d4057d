import t from 'tap'
import fc from 'fast-check'
import { roleSessionName, SESSION_NAME } from '../../src/policy/session-name.js'

const RUNS = 10_000
// Independent of the module's own regex: what STS documents for RoleSessionName.
const VALID = /^[A-Za-z0-9.@_-]{2,64}$/

t.test('safe, short subjects are used as they are, after the issuer', async (t) => {
  const rows: Array<[string, string | undefined, string]> = [
    ['alice', 'corp', 'corp.alice'],
    ['alice', undefined, 'alice'],
    ['alice.smith@example.com', 'corp', 'corp.alice.smith@example.com'],
    ['a', 'corp', 'corp.a'],
    ['ab', undefined, 'ab'],
    ['x'.repeat(59), 'corp', `corp.${'x'.repeat(59)}`]
  ]
  for (const [sub, iss, want] of rows) t.equal(roleSessionName(sub, iss), want, `${String(iss)} / ${sub}`)
  t.equal(SESSION_NAME.source, VALID.source)
})

t.test('other subjects keep a readable head and a hash', async (t) => {
  const rows: Array<[string, string, string | undefined, RegExp]> = [
    ['Auth0 subject', 'auth0|5f7c8ec7c33c6c004bbafe82', 'corp', /^corp\.auth0_5f7c8ec7c33c6c004bbafe82-[0-9a-f]{12}$/],
    ['Kubernetes service account', 'system:serviceaccount:ns:name', 'k8s', /^k8s\.system_serviceaccount_ns_name-[0-9a-f]{12}$/],
    ['one character, no issuer', 'a', undefined, /^a-[0-9a-f]{12}$/],
    ['empty subject', '', 'corp', /^corp\.x-[0-9a-f]{12}$/],
    ['empty subject, no issuer', '', undefined, /^x-[0-9a-f]{12}$/],
    ['only unsafe characters', '\u0000\u2028"*', 'corp', /^corp\._-[0-9a-f]{12}$/],
    ['too long', 'y'.repeat(200), 'corp', /^corp\.y{46}-[0-9a-f]{12}$/],
    ['non-ASCII', 'josé', 'corp', /^corp\.jos_-[0-9a-f]{12}$/],
    ['looks like a hashed name', 'bob-0123456789ab', 'corp', /^corp\.bob-0123456789ab-[0-9a-f]{12}$/],
    ['an unsafe issuer name', 'alice', 'we ird.issuer', /^we_ird_issuer\.alice-[0-9a-f]{12}$/],
    ['a long issuer name', 'alice', 'i'.repeat(63), /^i{20}\.alice-[0-9a-f]{12}$/]
  ]
  for (const [why, sub, iss, want] of rows) {
    const name = roleSessionName(sub, iss)
    t.match(name, want, why)
    t.match(name, VALID, `${why}: valid`)
  }
})

t.test('distinct subjects stay distinct', async (t) => {
  const names = ['auth0|abc', 'auth0:abc', 'auth0_abc', 'auth0/abc', 'jos\u00e9', 'jose\u0301', '\ud800', '\udc00', '\ufffd']
    .map((s) => roleSessionName(s, 'corp'))
  t.equal(new Set(names).size, names.length, 'look-alikes and lone surrogates get different hashes')
  t.not(roleSessionName('bob-0123456789ab', 'corp'), roleSessionName('bob', 'corp'))
  t.not(roleSessionName('alice', 'corp'), roleSessionName('alice', 'partner'))
  t.not(roleSessionName('alice'), roleSessionName('alice', 'corp'))
})

const ISSUERS = fc.option(fc.oneof(fc.constantFrom('corp', 'k8s', 'a'.repeat(63)), fc.string()), { nil: undefined })

t.test('every string gives a valid RoleSessionName (checklist B 29)', async (t) => {
  for (const unit of ['binary', 'grapheme'] as const) {
    fc.assert(fc.property(fc.string({ unit, maxLength: 200 }), ISSUERS, (sub, iss) => VALID.test(roleSessionName(sub, iss))), { numRuns: RUNS })
    t.pass(`${unit}: ${RUNS} runs`)
  }
  fc.assert(fc.property(fc.string({ unit: fc.constantFrom('a', '0', '.', '@', '_', '-', 'f'), maxLength: 80 }), ISSUERS,
    (sub, iss) => VALID.test(roleSessionName(sub, iss))), { numRuns: RUNS })
  t.pass(`near-miss: ${RUNS} runs`)
})

t.test('distinct (issuer, subject) pairs give distinct names', async (t) => {
  const sub = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: fc.constantFrom('a', '0', '-', '.', '|'), maxLength: 70 }))
  fc.assert(fc.property(sub, sub, ISSUERS, (a, b, iss) => {
    fc.pre(a !== b)
    return roleSessionName(a, iss) !== roleSessionName(b, iss)
  }), { numRuns: RUNS })
  t.pass(`${RUNS} runs`)
})
