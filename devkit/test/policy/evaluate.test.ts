import t from 'tap'
import { evaluatePolicy, isAllowedByAll, resourceMatches, wildcardMatch, type AccessRequest } from '../../policy/evaluate.js'

t.test('wildcardMatch', async (t) => {
  const rows: Array<[string, string, boolean, boolean?]> = [
    ['abc', 'abc', true], ['abc', 'abd', false], ['abc', 'ab', false], ['ab', 'abc', false],
    ['*', '', true], ['*', 'a/b/c', true], ['a*', 'a', true], ['a*', 'a/b', true], ['a*', 'b', false],
    ['a*c', 'abbbc', true], ['a*c', 'abbbd', false], ['a?c', 'abc', true], ['a?c', 'ac', false], ['a?c', 'abbc', false],
    ['*a*b*', 'xxaxxbxx', true], ['*a*b*', 'xxbxxaxx', false], ['a**', 'a', true], ['?', '', false],
    ['users/al/*', 'users/alice/x', false], ['users/al/*', 'users/al/', true],
    ['ABC', 'abc', false], ['ABC', 'abc', true, true], ['oss:Get*', 'OSS:GETOBJECT', true, true]
  ]
  for (const [p, v, want, ci] of rows) t.equal(wildcardMatch(p, v, ci === true), want, `${p} ~ ${v}${ci === true ? ' (any case)' : ''}`)
  const start = performance.now()
  t.notOk(wildcardMatch(`${'*a'.repeat(30)}b`, 'a'.repeat(5000)), 'pathological pattern')
  t.ok(performance.now() - start < 1000, 'no exponential backtracking')
})

t.test('resourceMatches field by field', async (t) => {
  const rows: Array<[string, string, string, boolean]> = [
    ['any region and account', 'acs:oss:*:*:b/k/*', 'acs:oss:cn-hangzhou:123456:b/k/x', true],
    ['the abstract form', 'acs:oss:*:*:b/k/*', 'acs:oss:*:*:b/k/x', true],
    ['a key with colons stays in the key', 'acs:oss:*:*:b/k/*', 'acs:oss:r:1:b/k/a:b:c', true],
    ['a region * cannot swallow into another bucket', 'acs:oss:*:*:b/k/*', 'acs:oss:r:1:evil/x:b/k/y', false],
    ['a region * cannot span fields', 'acs:oss:*:*:b', 'acs:oss:r:1:2:b', false],
    ['bucket names are case-sensitive', 'acs:oss:*:*:b/k/*', 'acs:oss:*:*:B/k/x', false],
    ['keys are case-sensitive', 'acs:oss:*:*:b/k/*', 'acs:oss:*:*:b/K/x', false],
    ['a pinned region', 'acs:oss:cn-beijing:*:b/*', 'acs:oss:cn-hangzhou:1:b/x', false],
    ['whole-string star', '*', 'acs:oss:r:1:b/x', true],
    ['another service', 'acs:oss:*:*:*', 'acs:ecs:r:1:instance/i-1', false],
    ['service compares in any case', 'acs:OSS:*:*:b', 'acs:oss:r:1:b', true],
    ['a malformed request resource', 'acs:oss:*:*:b', 'b', false]
  ]
  for (const [why, p, r, want] of rows) t.equal(resourceMatches(p, r), want, why)
})

const doc = (...Statement: unknown[]): unknown => ({ Version: '1', Statement })
const allowGet = { Effect: 'Allow', Action: ['oss:GetObject'], Resource: ['acs:oss:*:*:b/d/*'] }
const get = (key: string): AccessRequest => ({ action: 'oss:GetObject', resource: `acs:oss:*:*:b/${key}` })

t.test('allow, explicit deny, implicit deny', async (t) => {
  const rows: Array<[string, unknown, AccessRequest, string]> = [
    ['allowed', doc(allowGet), get('d/x'), 'allow'],
    ['outside the resource', doc(allowGet), get('e/x'), 'implicit-deny'],
    ['another action', doc(allowGet), { action: 'oss:PutObject', resource: 'acs:oss:*:*:b/d/x' }, 'implicit-deny'],
    ['action names ignore case', doc(allowGet), { action: 'OSS:getobject', resource: 'acs:oss:*:*:b/d/x' }, 'allow'],
    ['action wildcard', doc({ ...allowGet, Action: 'oss:Get*' }), get('d/x'), 'allow'],
    ['single-string Action and Resource', doc({ Effect: 'Allow', Action: 'oss:GetObject', Resource: 'acs:oss:*:*:b/d/*' }), get('d/x'), 'allow'],
    ['deny wins over allow', doc(allowGet, { Effect: 'Deny', Action: 'oss:*', Resource: 'acs:oss:*:*:b/d/secret/*' }), get('d/secret/x'), 'deny'],
    ['deny elsewhere does not matter', doc(allowGet, { Effect: 'Deny', Action: 'oss:*', Resource: 'acs:oss:*:*:b/d/secret/*' }), get('d/x'), 'allow'],
    ['deny alone', doc({ Effect: 'Deny', Action: '*', Resource: '*' }), get('d/x'), 'deny'],
    ['NotAction allows the rest', doc({ Effect: 'Allow', NotAction: 'oss:DeleteObject', Resource: '*' }), get('d/x'), 'allow'],
    ['NotAction excludes', doc({ Effect: 'Allow', NotAction: 'oss:Get*', Resource: '*' }), get('d/x'), 'implicit-deny'],
    ['NotResource', doc({ Effect: 'Deny', Action: '*', NotResource: 'acs:oss:*:*:b/d/*' }, { Effect: 'Allow', Action: '*', Resource: '*' }), get('e/x'), 'deny'],
    ['NotResource inside', doc({ Effect: 'Deny', Action: '*', NotResource: 'acs:oss:*:*:b/d/*' }, { Effect: 'Allow', Action: '*', Resource: '*' }), get('d/x'), 'allow'],
    ['a policy as JSON text', JSON.stringify(doc(allowGet)), get('d/x'), 'allow'],
    ['no statements', doc(), get('d/x'), 'implicit-deny']
  ]
  for (const [why, d, req, want] of rows) t.equal(evaluatePolicy(d, req), want, why)
})

t.test('conditions', async (t) => {
  const list = (op: string, values: unknown): unknown => doc({
    Effect: 'Allow', Action: 'oss:ListObjects', Resource: 'acs:oss:*:*:b', Condition: { [op]: { 'oss:Prefix': values } }
  })
  const req = (prefix?: string): AccessRequest => ({
    action: 'oss:ListObjects', resource: 'acs:oss:*:*:b', ...(prefix === undefined ? {} : { context: { 'oss:Prefix': prefix } })
  })
  const rows: Array<[string, unknown, AccessRequest, string]> = [
    ['StringLike in', list('StringLike', ['d/*']), req('d/x/'), 'allow'],
    ['StringLike the directory itself', list('StringLike', ['d/*']), req('d/'), 'allow'],
    ['StringLike out', list('StringLike', ['d/*']), req('dx/'), 'implicit-deny'],
    ['StringLike key absent', list('StringLike', ['d/*']), req(), 'implicit-deny'],
    ['StringLike any of', list('StringLike', ['a/*', 'd/*']), req('d/'), 'allow'],
    ['StringLike single string', list('StringLike', 'd/*'), req('d/'), 'allow'],
    ['StringLike case-sensitive', list('StringLike', ['d/*']), req('D/'), 'implicit-deny'],
    ['StringEquals', list('StringEquals', ['d/']), req('d/'), 'allow'],
    ['StringEquals is not a pattern', list('StringEquals', ['d/*']), req('d/x'), 'implicit-deny'],
    ['StringEquals key absent', list('StringEquals', ['d/']), req(), 'implicit-deny'],
    ['StringNotEquals', list('StringNotEquals', ['d/']), req('e/'), 'allow'],
    ['StringNotEquals equal', list('StringNotEquals', ['d/']), req('d/'), 'implicit-deny'],
    ['StringNotEquals key absent holds', list('StringNotEquals', ['d/']), req(), 'allow'],
    ['StringNotLike', list('StringNotLike', ['d/*']), req('e/'), 'allow'],
    ['StringNotLike matching', list('StringNotLike', ['d/*']), req('d/x'), 'implicit-deny'],
    ['condition key names ignore case', list('StringLike', ['d/*']), { ...req(), context: { 'OSS:prefix': 'd/' } }, 'allow'],
    ['unknown operator: Allow does not apply', list('StringEqualsIgnoreCase', ['d/']), req('d/'), 'implicit-deny'],
    ['IfExists is unknown here: fail closed', list('StringLikeIfExists', ['d/*']), req(), 'implicit-deny'],
    ['unknown operator: Deny applies', doc(
      { Effect: 'Allow', Action: '*', Resource: '*' },
      { Effect: 'Deny', Action: '*', Resource: '*', Condition: { IpAddress: { 'acs:SourceIp': ['10.0.0.0/8'] } } }
    ), req('d/'), 'deny'],
    ['unknown operator with a boolean value: Deny applies', doc(
      { Effect: 'Allow', Action: '*', Resource: '*' },
      { Effect: 'Deny', Action: '*', Resource: '*', Condition: { Bool: { 'acs:SecureTransport': false } } }
    ), req('d/'), 'deny'],
    ['unknown operator next to a true known one: Allow still does not apply', doc({
      Effect: 'Allow', Action: '*', Resource: '*', Condition: { StringLike: { 'oss:Prefix': 'd/*' }, NumericLessThan: { 'oss:max-keys': 100 } }
    }), req('d/'), 'implicit-deny'],
    ['two keys are both required', doc({
      Effect: 'Allow', Action: '*', Resource: '*', Condition: { StringEquals: { 'oss:Prefix': 'd/', 'oss:Delimiter': '/' } }
    }), req('d/'), 'implicit-deny']
  ]
  for (const [why, d, r, want] of rows) t.equal(evaluatePolicy(d, r), want, why)
})

t.test('a malformed document allows nothing', async (t) => {
  const star = { Effect: 'Allow', Action: '*', Resource: '*' }
  const rows: Array<[string, unknown]> = [
    ['null', null], ['array', [star]], ['empty object', {}], ['no Version', { Statement: [star] }],
    ['Version 2', { Version: '2', Statement: [star] }], ['numeric Version', { Version: 1, Statement: [star] }],
    ['Statement not an array', { Version: '1', Statement: star }], ['unknown top-level key', { Version: '1', Statement: [star], Id: 'x' }],
    ['statement null', doc(null)], ['lower-case effect', doc({ ...star, Effect: 'allow' })], ['no Effect', doc({ Action: '*', Resource: '*' })],
    ['no Action', doc({ Effect: 'Allow', Resource: '*' })], ['Action and NotAction', doc({ ...star, NotAction: 'x' })],
    ['numeric Action', doc({ ...star, Action: 5 })], ['empty Action list', doc({ ...star, Action: [] })],
    ['no Resource', doc({ Effect: 'Allow', Action: '*' })], ['Resource and NotResource', doc({ ...star, NotResource: 'x' })],
    ['numeric Resource', doc({ ...star, Resource: [5] })], ['unknown statement key', doc({ ...star, Foo: 1 })],
    ['Condition not an object', doc({ ...star, Condition: 'x' })], ['Condition block not an object', doc({ ...star, Condition: { StringEquals: [] } })],
    ['numeric condition value', doc({ ...star, Condition: { StringEquals: { k: 5 } } })],
    ['a valid Allow next to a broken Deny', doc(star, { Effect: 'Deny', Action: 5, Resource: '*' })],
    ['invalid JSON text', '{"Version":"1",'], ['JSON text of an array', '[]'], ['undefined', undefined]
  ]
  for (const [why, d] of rows) t.equal(evaluatePolicy(d, get('d/x')), 'implicit-deny', why)
  t.equal(evaluatePolicy(doc(star), null as unknown as AccessRequest), 'implicit-deny', 'no request')
})

t.test('trust policies (Principal, no Resource)', async (t) => {
  const trust = doc({ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { RAM: ['acs:ram::123:root'] } })
  t.equal(evaluatePolicy(trust, { action: 'sts:AssumeRole', principal: 'acs:ram::123:root' }), 'allow')
  t.equal(evaluatePolicy(trust, { action: 'sts:AssumeRole', principal: 'acs:ram::999:root' }), 'implicit-deny')
  t.equal(evaluatePolicy(trust, { action: 'sts:AssumeRole' }), 'implicit-deny', 'no principal given')
  const service = doc({ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'ecs.aliyuncs.com' } })
  t.equal(evaluatePolicy(service, { action: 'sts:AssumeRole', principal: 'ecs.aliyuncs.com' }), 'allow')
  t.equal(evaluatePolicy(doc({ Effect: 'Allow', Action: '*', Principal: '*' }), { action: 'sts:AssumeRole', principal: 'x' }), 'allow')
  t.equal(evaluatePolicy(doc({ Effect: 'Allow', Action: '*', Principal: 5 }), { action: 'sts:AssumeRole', principal: 'x' }), 'implicit-deny')
})

t.test('isAllowedByAll is the intersection (role policy ∩ session policy)', async (t) => {
  const role = doc({ Effect: 'Allow', Action: ['oss:GetObject', 'oss:PutObject'], Resource: 'acs:oss:*:*:b/*' })
  const session = doc({ Effect: 'Allow', Action: ['oss:GetObject', 'oss:DeleteObject'], Resource: 'acs:oss:*:*:b/d/*' })
  t.ok(isAllowedByAll([role, session], get('d/x')))
  t.notOk(isAllowedByAll([role, session], { action: 'oss:PutObject', resource: 'acs:oss:*:*:b/d/x' }), 'session lacks it')
  t.notOk(isAllowedByAll([role, session], { action: 'oss:DeleteObject', resource: 'acs:oss:*:*:b/d/x' }), 'role lacks it')
  t.notOk(isAllowedByAll([role, session], get('e/x')), 'outside the session prefix')
  t.notOk(isAllowedByAll([], get('d/x')), 'no policy, no rights')
  t.notOk(isAllowedByAll([role, session, 'garbage'], get('d/x')), 'a malformed one allows nothing')
})
