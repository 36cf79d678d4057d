// Checklist B 30: for every string, either it is refused, or the session policy is
// well-formed, within 2048 bytes, and confines the credentials to the directory. The
// oracles below are written independently of the code under test (no shared regex).
import t from 'tap'
import fc from 'fast-check'
import type { Action, GrantConfig } from '../../src/config/schema.js'
import { resolveGrant } from '../../src/grants/resolve.js'
import { compileGrants } from '../../src/grants/compile.js'
import { fillPrefix, parsePrefixTemplate } from '../../src/grants/template.js'
import { buildSessionPolicy, serializePolicy } from '../../src/policy/build.js'
import { POLICY_MAX_BYTES } from '../../src/core/index.js'
import { compilePolicy, type AccessRequest } from '../../devkit/policy/evaluate.js'

const RUNS = 10_000
const BUCKET = 'b'.repeat(60) + '-up'
const ALL: Action[] = ['list', 'read', 'write', 'delete']

const NEAR_MISS_UNIT = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'Aaz09'.split('')) },
  { weight: 4, arbitrary: fc.constantFrom('.', '_', '@', '/', '*', '?', '-') }
)
const GENERATORS: Array<[string, fc.Arbitrary<string>]> = [
  ['binary', fc.string({ unit: 'binary', maxLength: 140 })],
  ['grapheme', fc.string({ unit: 'grapheme', maxLength: 140 })],
  ['near-miss [A-Za-z0-9._@/*?-]', fc.oneof(
    fc.string({ unit: NEAR_MISS_UNIT, maxLength: 16 }),
    fc.string({ unit: NEAR_MISS_UNIT, minLength: 120, maxLength: 140 })
  )]
]

function oracleSegment (s: string): boolean {
  if (s.length < 1 || s.length > 128 || s === '.' || s === '..') return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 46 || c === 64 || c === 45
    if (!ok) return false
  }
  return true
}

function wellFormed (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1)
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false
      i++
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false
    }
  }
  return true
}

function oracleDirectory (s: string): boolean {
  return s.length <= 1024 && s.endsWith('/') && s.slice(0, -1).split('/').every(oracleSegment)
}

/** Keys inside and outside `prefix` (sibling, parent, lookalikes, literal `..`), from an arbitrary `k`. */
function candidateKeys (prefix: string, k: string): string[] {
  const bare = prefix.slice(0, -1)
  const parent = bare.slice(0, bare.lastIndexOf('/') + 1)
  return [...new Set([
    prefix + k, `${prefix}../x`, `${bare}-with-suffix/x`, `${bare}${k}`, bare, parent, `${parent}${k}`, k,
    `/${prefix}x`, prefix.toUpperCase() + 'x', prefix.replace(/[a-z]/, '\uff41') + 'x'
  ])]
}

/** The document as the checklist states it, written out here rather than taken from build.ts. */
function expectedDoc (prefix: string, actions: readonly Action[]): unknown {
  const object = [
    ...(actions.includes('read') ? ['oss:GetObject'] : []),
    ...(actions.includes('write') ? ['oss:PutObject', 'oss:AbortMultipartUpload', 'oss:ListParts'] : []),
    ...(actions.includes('delete') ? ['oss:DeleteObject'] : [])
  ]
  return {
    Version: '1',
    Statement: [
      ...(object.length > 0 ? [{ Effect: 'Allow', Action: object, Resource: [`acs:oss:*:*:${BUCKET}/${prefix}*`] }] : []),
      ...(actions.includes('list')
        ? [{ Effect: 'Allow', Action: ['oss:ListObjects'], Resource: [`acs:oss:*:*:${BUCKET}`], Condition: { StringLike: { 'oss:Prefix': [`${prefix}*`] } } }]
        : [])
    ]
  }
}

/** Throws (with the failing case) unless the policy confines the credentials to `prefix`. */
function assertConfined (text: string, prefix: string, k: string, actions: readonly Action[]): void {
  if (Buffer.byteLength(text, 'utf8') > POLICY_MAX_BYTES) throw new Error(`policy over ${POLICY_MAX_BYTES} bytes`)
  const doc: unknown = JSON.parse(text)
  if (JSON.stringify(doc) !== JSON.stringify(expectedDoc(prefix, actions))) throw new Error(`unexpected policy ${text}`)
  const evaluate = compilePolicy(doc)
  const check = (req: AccessRequest, want: string): void => {
    const got = evaluate(req)
    if (got !== want) throw new Error(`${JSON.stringify(req)}: ${got}, want ${want}`)
  }
  let i = 0
  for (const key of candidateKeys(prefix, k)) {
    const inside = key.startsWith(prefix)
    // Alternate the action and the two forms of a resource (abstract, real region/account).
    const [action, grant] = i % 2 === 0 ? ['oss:GetObject', 'read'] as const : ['oss:PutObject', 'write'] as const
    const resource = i++ % 4 < 2 ? `acs:oss:*:*:${BUCKET}/${key}` : `acs:oss:cn-hangzhou:1234567890:${BUCKET}/${key}`
    check({ action, resource }, inside && actions.includes(grant) ? 'allow' : 'implicit-deny')
    check({ action: 'oss:ListObjects', resource: `acs:oss:*:*:${BUCKET}`, context: { 'oss:Prefix': key } },
      inside && actions.includes('list') ? 'allow' : 'implicit-deny')
  }
  check({ action: 'oss:ListObjects', resource: `acs:oss:*:*:${BUCKET}` }, 'implicit-deny')
  check({ action: 'oss:GetObject', resource: `acs:oss:*:*:other-bucket/${prefix}x` }, 'implicit-deny')
  check({ action: 'oss:PutObjectAcl', resource: `acs:oss:*:*:${BUCKET}/${prefix}x` }, 'implicit-deny')
  check({ action: 'oss:PutBucketPolicy', resource: `acs:oss:*:*:${BUCKET}` }, 'implicit-deny')
}

t.test('every string as {sub}: refused, or a policy confined to users/<sub>/', async (t) => {
  const tpl = parsePrefixTemplate('dir111/dir111_secondline1/{sub}/')
  for (const [name, str] of GENERATORS) {
    let accepted = 0
    fc.assert(fc.property(str, fc.string({ maxLength: 12 }), (s, k) => {
      const prefix = fillPrefix(tpl, { sub: s }, 'corp')
      if (prefix === undefined) {
        if (oracleSegment(s)) throw new Error(`a safe value was refused: ${JSON.stringify(s)}`)
        return
      }
      if (!oracleSegment(s)) throw new Error(`an unsafe value was accepted: ${JSON.stringify(s)}`)
      if (prefix !== `dir111/dir111_secondline1/${s}/`) throw new Error('the value was altered')
      accepted++
      assertConfined(serializePolicy(buildSessionPolicy(BUCKET, prefix, ALL)), prefix, k, ALL)
    }), { numRuns: RUNS })
    t.pass(`${name}: ${RUNS} runs, ${accepted} accepted`)
    if (name.startsWith('near-miss')) t.ok(accepted > RUNS / 20, 'the accepting branch is exercised')
  }
})

t.test('every string as {sub:sha256}: refused, or one 32-hex directory', async (t) => {
  const tpl = parsePrefixTemplate('u/{sub:sha256}/')
  for (const [name, str] of GENERATORS) {
    fc.assert(fc.property(str, (s) => {
      const prefix = fillPrefix(tpl, { sub: s }, 'corp')
      const usable = s.length > 0 && s.length <= 1024 && wellFormed(s)
      if (prefix === undefined) {
        if (usable) throw new Error(`refused ${JSON.stringify(s)}`)
        return
      }
      if (!usable || !/^u\/[0-9a-f]{32}\/$/.test(prefix)) throw new Error(`bad prefix ${prefix} for ${JSON.stringify(s)}`)
    }), { numRuns: RUNS })
    t.pass(`${name}: ${RUNS} runs`)
  }
  fc.assert(fc.property(fc.string({ unit: 'grapheme', minLength: 1 }), fc.string({ unit: 'grapheme', minLength: 1 }), (a, b) => {
    fc.pre(a !== b)
    return fillPrefix(tpl, { sub: a }, 'x') !== fillPrefix(tpl, { sub: b }, 'x')
  }), { numRuns: RUNS })
  t.pass('distinct subjects, distinct directories')
})

function grant (g: Partial<GrantConfig>): GrantConfig {
  return {
    name: 'home',
    issuers: ['corp'],
    roleArn: 'acs:ram::1:role/r',
    bucket: BUCKET,
    region: 'cn-hangzhou',
    prefix: 'users/{sub}/',
    actions: ALL,
    durationSeconds: 3600,
    ...g
  }
}

t.test('every string as the requested prefix: refused, or narrowed inside the directory', async (t) => {
  const grants = compileGrants({ issuers: [{ name: 'corp' }], grants: [grant({})], cache: { minRemainingSeconds: 1200 } })
  const grantPrefix = 'users/alice/'
  for (const [name, str] of GENERATORS) {
    let accepted = 0
    const asked = fc.oneof(str, str.map((s) => grantPrefix + s), str.map((s) => `users/al${s}`), str.map((s) => `${grantPrefix}${s}/`))
    fc.assert(fc.property(asked, fc.string({ maxLength: 12 }), fc.subarray(ALL, { minLength: 1 }), (p, k, actions) => {
      const want = oracleDirectory(p) && p.startsWith(grantPrefix)
      let r
      try {
        r = resolveGrant(grants, 'corp', { sub: 'alice' }, { prefix: p, actions })
      } catch (err) {
        if ((err as { code?: string }).code !== 'STS_VENDING_PREFIX_NOT_ALLOWED') throw err
        if (want) throw new Error(`refused ${JSON.stringify(p)}`)
        return
      }
      if (!want) throw new Error(`accepted ${JSON.stringify(p)}`)
      if (r.prefix !== p || r.grantPrefix !== grantPrefix) throw new Error('the prefix was altered')
      accepted++
      // The candidate keys include the parent directories, so the caller's directory
      // outside the narrowed one is checked too.
      assertConfined(r.policy, r.prefix, k, r.actions)
    }), { numRuns: RUNS })
    t.pass(`${name}: ${RUNS} runs, ${accepted} accepted`)
    t.ok(accepted > 0, 'the accepting branch is exercised')
  }
})
