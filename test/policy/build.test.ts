import t from 'tap'
import { ACTIONS, type Action } from '../../src/config/schema.js'
import { fillPrefix, parsePrefixTemplate } from '../../src/grants/template.js'
import { ACTION_MAP, buildSessionPolicy, policyBytes, serializePolicy } from '../../src/policy/build.js'
import { POLICY_MAX_BYTES } from '../../src/core/index.js'
import { worstCasePolicyBytes } from '../../src/grants/compile.js'
import { evaluatePolicy } from '../../devkit/policy/evaluate.js'

const ALL: Action[] = ['list', 'read', 'write', 'delete']

function subsets (): Action[][] {
  const out: Action[][] = []
  for (let mask = 1; mask < 16; mask++) out.push(ACTIONS.filter((_, i) => (mask & (1 << i)) !== 0))
  return out
}

t.test('the exact document for every action', async (t) => {
  t.same(JSON.parse(serializePolicy(buildSessionPolicy('uploads', 'users/alice/', ALL))), {
    Version: '1',
    Statement: [
      {
        Effect: 'Allow',
        Action: ['oss:GetObject', 'oss:PutObject', 'oss:AbortMultipartUpload', 'oss:ListParts', 'oss:DeleteObject'],
        Resource: ['acs:oss:*:*:uploads/users/alice/*']
      },
      {
        Effect: 'Allow',
        Action: ['oss:ListObjects'],
        Resource: ['acs:oss:*:*:uploads'],
        Condition: { StringLike: { 'oss:Prefix': ['users/alice/*'] } }
      }
    ]
  })
})

t.test('ACTION_MAP', async (t) => {
  t.same(ACTION_MAP, {
    list: ['oss:ListObjects'],
    read: ['oss:GetObject'],
    write: ['oss:PutObject', 'oss:AbortMultipartUpload', 'oss:ListParts'],
    delete: ['oss:DeleteObject']
  })
  t.ok(Object.isFrozen(ACTION_MAP) && Object.isFrozen(ACTION_MAP.write), 'nobody can widen it at run time')
})

t.test('for every subset of actions: exact Resource set, one final wildcard, list condition', async (t) => {
  const prefix = 'users/alice/'
  for (const actions of subsets()) {
    const doc = buildSessionPolicy('uploads', prefix, actions)
    const label = actions.join(',')
    const object = doc.Statement.filter((s) => s.Resource.some((r) => r.includes('/')))
    const list = doc.Statement.filter((s) => s.Action.includes('oss:ListObjects'))
    t.ok(doc.Statement.every((s) => s.Effect === 'Allow'), `${label}: only Allow`)
    t.equal(doc.Statement.length, object.length + list.length, `${label}: no other statement`)

    const wantObject = actions.filter((a) => a !== 'list').flatMap((a) => ACTION_MAP[a])
    if (wantObject.length === 0) {
      t.equal(object.length, 0, `${label}: no object statement`)
    } else {
      t.equal(object.length, 1, `${label}: one object statement`)
      const s = object[0]!
      t.same(new Set(s.Resource), new Set(['acs:oss:*:*:uploads/users/alice/*']), `${label}: Resource set is exact`)
      t.same(s.Action, wantObject, `${label}: object actions`)
      t.equal(s.Condition, undefined)
      for (const r of s.Resource) {
        const key = r.slice('acs:oss:*:*:uploads/'.length)
        t.equal(key.split('*').length - 1, 1, `${label}: exactly one * in the key pattern`)
        t.ok(key.endsWith('*'), `${label}: and it is last`)
        t.notOk(key.includes('?'), `${label}: no ?`)
      }
    }
    if (actions.includes('list')) {
      t.equal(list.length, 1, `${label}: one list statement`)
      t.same(list[0], {
        Effect: 'Allow',
        Action: ['oss:ListObjects'],
        Resource: ['acs:oss:*:*:uploads'],
        Condition: { StringLike: { 'oss:Prefix': ['users/alice/*'] } }
      }, `${label}: list is confined by oss:Prefix`)
    } else {
      t.equal(list.length, 0, `${label}: no list statement`)
    }
  }
})

t.test('the caller `al` cannot reach `alice` (checklist B 25)', async (t) => {
  const doc = buildSessionPolicy('uploads', 'users/al/', ALL)
  const get = (key: string): string => evaluatePolicy(doc, { action: 'oss:GetObject', resource: `acs:oss:cn-hangzhou:123:uploads/${key}` })
  const list = (p: string): string => evaluatePolicy(doc, { action: 'oss:ListObjects', resource: 'acs:oss:cn-hangzhou:123:uploads', context: { 'oss:Prefix': p } })
  t.equal(get('users/al/x'), 'allow')
  t.equal(get('users/alice/x'), 'implicit-deny')
  t.equal(get('users/al'), 'implicit-deny')
  t.equal(get('users/al-x/y'), 'implicit-deny')
  t.equal(list('users/al/'), 'allow')
  t.equal(list('users/al/sub/'), 'allow')
  t.equal(list('users/al'), 'implicit-deny')
  t.equal(list('users/alice/'), 'implicit-deny')
  t.equal(list('users/'), 'implicit-deny')
  t.equal(evaluatePolicy(doc, { action: 'oss:ListObjects', resource: 'acs:oss:*:*:uploads' }), 'implicit-deny', 'listing without a prefix')
  t.equal(evaluatePolicy(doc, { action: 'oss:GetObject', resource: 'acs:oss:*:*:other/users/al/x' }), 'implicit-deny', 'another bucket')
  t.equal(evaluatePolicy(doc, { action: 'oss:PutBucketAcl', resource: 'acs:oss:*:*:uploads' }), 'implicit-deny', 'a bucket admin action')
})

t.test('the largest valid claim gives a policy within 2048 bytes that round-trips (checklist B 23, 27)', async (t) => {
  const bucket = 'b'.repeat(63)
  const tpl = parsePrefixTemplate('dir111/dir111_secondline1/{sub}/')
  const sub = 'Az09_.@-'.repeat(16)
  t.equal(sub.length, 128)
  const prefix = fillPrefix(tpl, { sub }, 'corp')
  t.equal(prefix, `dir111/dir111_secondline1/${sub}/`)
  const doc = buildSessionPolicy(bucket, prefix!, ALL)
  const text = serializePolicy(doc)
  t.ok(Buffer.byteLength(text, 'utf8') <= POLICY_MAX_BYTES, `${Buffer.byteLength(text)} bytes`)
  t.equal(policyBytes(doc), Buffer.byteLength(text, 'utf8'))
  t.equal(worstCasePolicyBytes(bucket, tpl, ALL), Buffer.byteLength(text, 'utf8'), 'the worst case is exact')
  t.same(JSON.parse(text), {
    Version: '1',
    Statement: [
      {
        Effect: 'Allow',
        Action: ['oss:GetObject', 'oss:PutObject', 'oss:AbortMultipartUpload', 'oss:ListParts', 'oss:DeleteObject'],
        Resource: [`acs:oss:*:*:${bucket}/dir111/dir111_secondline1/${sub}/*`]
      },
      {
        Effect: 'Allow',
        Action: ['oss:ListObjects'],
        Resource: [`acs:oss:*:*:${bucket}`],
        Condition: { StringLike: { 'oss:Prefix': [`dir111/dir111_secondline1/${sub}/*`] } }
      }
    ]
  })
  t.notOk(/\\/.test(text), 'nothing needed escaping')
})

t.test('worstCasePolicyBytes', async (t) => {
  const small = worstCasePolicyBytes('uploads', parsePrefixTemplate('u/{sub:sha256}/'), ['read'])
  const big = worstCasePolicyBytes('uploads', parsePrefixTemplate('u/{sub}/'), ['read'])
  t.equal(big - small, 128 - 32)
  t.ok(worstCasePolicyBytes('uploads', parsePrefixTemplate('u/{sub}/'), ALL) > big, 'more actions, more bytes')
  const many = parsePrefixTemplate('{a}/{b}/{c}/{d}/{e}/{f}/{g}/')
  t.ok(worstCasePolicyBytes('uploads', many, ALL) > POLICY_MAX_BYTES, 'a template config validation must refuse')
})

t.test('serializePolicy is compact JSON', async (t) => {
  const doc = buildSessionPolicy('uploads', 'users/alice/', ['read'])
  const text = serializePolicy(doc)
  t.equal(text, JSON.stringify(doc))
  t.notOk(/\s/.test(text))
})

t.test('buildSessionPolicy fails closed on anything it was not promised', async (t) => {
  const prefixes: Array<[string, unknown]> = [
    ['empty', ''], ['wildcard', 'users/*/'], ['trailing wildcard', 'users/alice*/'], ['question mark', 'users/al?ce/'],
    ['no trailing slash', 'users/alice'], ['leading slash', '/users/alice/'], ['dot-dot', 'users/../'], ['double slash', 'users//'],
    ['quote', 'users/"/'], ['backslash', 'users\\/'], ['space', 'a b/'], ['non-ASCII', 'é/'], ['newline', 'a\n/'],
    ['U+2028', 'a\u2028/'], ['NUL', 'a\u0000/'], ['dollar', '$' + '{x}/'], ['not a string', 5]
  ]
  for (const [why, p] of prefixes) {
    t.throws(() => buildSessionPolicy('uploads', p as string, ALL), { message: /prefix/ }, `prefix: ${why}`)
  }
  const buckets: Array<[string, unknown]> = [
    ['wildcard', 'up*'], ['question mark', 'up?s'], ['upper case', 'Uploads'], ['slash', 'up/loads'], ['colon', 'up:loads'],
    ['too short', 'ab'], ['too long', 'a'.repeat(64)], ['leading dash', '-uploads'], ['trailing dash', 'uploads-'],
    ['dot', 'up.loads'], ['empty', ''], ['not a string', null]
  ]
  for (const [why, b] of buckets) {
    t.throws(() => buildSessionPolicy(b as string, 'users/alice/', ALL), { message: /bucket/ }, `bucket: ${why}`)
  }
  t.throws(() => buildSessionPolicy('uploads', 'users/alice/', []), { message: /no actions/ })
  t.throws(() => buildSessionPolicy('uploads', 'users/alice/', ['admin' as Action]), { message: /unknown action/ })
  t.throws(() => buildSessionPolicy('uploads', 'users/alice/', 'read' as unknown as Action[]), { message: /unknown action/ })
})
