// The session-policy grammar the emulator enforces: RAM's documented examples pass,
// everything outside the grammar fails with the code STS would answer.
import t from 'tap'
import fc from 'fast-check'
import { checkPolicy, policyGrammarError, parsePolicy, MAX_POLICY_BYTES } from '../../emulator/policy-grammar.js'

const doc = (statement: unknown): string => JSON.stringify({ Version: '1', Statement: [statement] })
const allow = { Effect: 'Allow', Action: 'oss:GetObject', Resource: 'acs:oss:*:*:bucket/users/alice/*' }

t.test('accepted', async (t) => {
  const cases: Array<[string, string]> = [
    ['minimal', doc(allow)],
    ['arrays', doc({ ...allow, Action: ['oss:GetObject', 'oss:PutObject'], Resource: ['acs:oss:*:*:b/x/*', 'acs:oss:*:*:b'] })],
    ['Deny', doc({ ...allow, Effect: 'Deny' })],
    ['wildcards', doc({ Effect: 'Allow', Action: 'oss:*', Resource: '*' })],
    ['Action "*"', doc({ Effect: 'Allow', Action: '*', Resource: '*' })],
    ['action wildcard in the name', doc({ ...allow, Action: 'oss:Get*' })],
    ['NotAction / NotResource', doc({ Effect: 'Allow', NotAction: 'ram:*', NotResource: 'acs:ram:*:*:*' })],
    ['RAM resource with empty region', doc({ ...allow, Action: 'sts:AssumeRole', Resource: 'acs:ram::123456:role/x' })],
    ['ListObjects with oss:Prefix (RAM doc example)', doc({ Effect: 'Allow', Action: ['oss:ListObjects'], Resource: ['acs:oss:*:*:myphotos'], Condition: { StringLike: { 'oss:Prefix': 'hangzhou/2015/*' } } })],
    ['condition value list and several operators', doc({ ...allow, Condition: { StringLike: { 'oss:Prefix': ['', 'a/*'], 'oss:Delimiter': '/' }, IpAddress: { 'acs:SourceIp': ['10.0.0.0/8'] }, Bool: { 'acs:SecureTransport': 'true' } } })],
    ['numbers and booleans as condition values', doc({ ...allow, Condition: { NumericLessThanEquals: { 'oss:max-keys': 100 }, Bool: { 'acs:MFAPresent': true } } })],
    ['multi-value qualifier', doc({ ...allow, Condition: { 'ForAnyValue:StringEquals': { 'acs:TagKeys': ['a', 'b'] } } })],
    ['tag condition key', doc({ ...allow, Condition: { StringEquals: { 'acs:ResourceTag/team': 'dev' } } })],
    ['several statements', JSON.stringify({ Version: '1', Statement: [allow, { ...allow, Effect: 'Deny' }] })],
    ['whitespace', JSON.stringify({ Version: '1', Statement: [allow] }, null, 2)]
  ]
  for (const [name, text] of cases) {
    t.equal(checkPolicy(text), undefined, name)
    t.same(parsePolicy(text), JSON.parse(text), `${name}: parsed`)
  }
})

t.test('refused', async (t) => {
  const G = 'InvalidParameter.PolicyGrammar'
  const cases: Array<[string, string]> = [
    ['not JSON', '{"Version":"1",'],
    ['empty string', ''],
    ['JSON array', '[]'],
    ['JSON null', 'null'],
    ['JSON string', '"x"'],
    ['missing Version', JSON.stringify({ Statement: [allow] })],
    ['Version 2', JSON.stringify({ Version: '2', Statement: [allow] })],
    ['Version as a number', JSON.stringify({ Version: 1, Statement: [allow] })],
    ['missing Statement', JSON.stringify({ Version: '1' })],
    ['empty Statement', JSON.stringify({ Version: '1', Statement: [] })],
    ['Statement as an object', JSON.stringify({ Version: '1', Statement: allow })],
    ['unknown top-level key', JSON.stringify({ Version: '1', Statement: [allow], Id: 'x' })],
    ['statement not an object', JSON.stringify({ Version: '1', Statement: ['x'] })],
    ['Effect lower-case', doc({ ...allow, Effect: 'allow' })],
    ['Effect missing', doc({ Action: allow.Action, Resource: allow.Resource })],
    ['Sid (not RAM)', doc({ ...allow, Sid: 'x' })],
    ['Principal in a session policy', doc({ ...allow, Principal: { RAM: ['acs:ram::1:root'] } })],
    ['Action missing', doc({ Effect: 'Allow', Resource: '*' })],
    ['Action and NotAction', doc({ ...allow, NotAction: 'oss:PutObject' })],
    ['Resource missing', doc({ Effect: 'Allow', Action: 'oss:GetObject' })],
    ['Resource and NotResource', doc({ ...allow, NotResource: '*' })],
    ['empty Action array', doc({ ...allow, Action: [] })],
    ['empty Resource array', doc({ ...allow, Resource: [] })],
    ['Action without a service', doc({ ...allow, Action: 'GetObject' })],
    ['Action with two colons', doc({ ...allow, Action: 'oss:Get:Object' })],
    ['Action empty string', doc({ ...allow, Action: '' })],
    ['Action a number', doc({ ...allow, Action: 1 })],
    ['Action array with a number', doc({ ...allow, Action: ['oss:GetObject', 1] })],
    ['Resource not an ARN', doc({ ...allow, Resource: 'bucket/users/alice/*' })],
    ['Resource with too few parts', doc({ ...allow, Resource: 'acs:oss:*:bucket' })],
    ['Resource with a newline', doc({ ...allow, Resource: 'acs:oss:*:*:b/a\n/*' })],
    ['Resource with U+2028', doc({ ...allow, Resource: 'acs:oss:*:*:b/a\u2028/*' })],
    ['Condition empty', doc({ ...allow, Condition: {} })],
    ['Condition an array', doc({ ...allow, Condition: [] })],
    ['unknown operator', doc({ ...allow, Condition: { StringStartsWith: { 'oss:Prefix': 'a' } } })],
    ['IfExists (not RAM)', doc({ ...allow, Condition: { StringEqualsIfExists: { 'oss:Prefix': 'a' } } })],
    ['operator block empty', doc({ ...allow, Condition: { StringLike: {} } })],
    ['condition key without a namespace', doc({ ...allow, Condition: { StringLike: { Prefix: 'a' } } })],
    ['condition value an object', doc({ ...allow, Condition: { StringLike: { 'oss:Prefix': { a: 1 } } } })],
    ['condition value empty array', doc({ ...allow, Condition: { StringLike: { 'oss:Prefix': [] } } })],
    ['condition value null', doc({ ...allow, Condition: { StringLike: { 'oss:Prefix': null } } })]
  ]
  for (const [name, text] of cases) {
    t.equal(policyGrammarError(text), G, name)
    t.equal(parsePolicy(text), undefined, `${name}: not parsed`)
  }
})

t.test('size is counted in UTF-8 bytes, 2048 allowed', async (t) => {
  const sized = (bytes: number, char = 'a'): string => {
    const skeleton = doc({ ...allow, Resource: 'acs:oss:*:*:b/' })
    const fill = (bytes - Buffer.byteLength(skeleton)) / Buffer.byteLength(char)
    return doc({ ...allow, Resource: 'acs:oss:*:*:b/' + char.repeat(fill) })
  }
  t.equal(Buffer.byteLength(sized(MAX_POLICY_BYTES)), 2048)
  t.equal(checkPolicy(sized(MAX_POLICY_BYTES)), undefined)
  t.equal(policyGrammarError(sized(MAX_POLICY_BYTES + 1)), 'InvalidParameter.PolicySize')
  // 3-byte characters: few enough characters, too many bytes.
  const wide = sized(MAX_POLICY_BYTES + 3 - ((MAX_POLICY_BYTES - Buffer.byteLength(doc({ ...allow, Resource: 'acs:oss:*:*:b/' }))) % 3), '\u4e2d')
  t.ok(wide.length < MAX_POLICY_BYTES)
  t.equal(policyGrammarError(wide), 'InvalidParameter.PolicySize')
  t.equal(policyGrammarError('x'.repeat(5000)), 'InvalidParameter.PolicySize', 'size is checked before grammar')
})

t.test('never throws, whatever the input', async (t) => {
  t.doesNotThrow(() => fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ Version: '1', Statement: [v] }))), (text) => {
    const r = checkPolicy(text)
    return r === undefined || r.code === 'InvalidParameter.PolicyGrammar' || r.code === 'InvalidParameter.PolicySize'
  }), { numRuns: 2000 }))
})
