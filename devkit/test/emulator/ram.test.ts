// The RAM emulator against the raw RAM SDK (not our wrapper) over loopback HTTP: the
// wire format it accepts, RAM's name, size and grammar rules, versions and their limit,
// EntityAlreadyExists/EntityNotExist, signatures, and injected NoPermission.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import RamModule, {
  AttachPolicyToRoleRequest, AttachPolicyToUserRequest, CreatePolicyRequest, CreatePolicyVersionRequest, CreateRoleRequest,
  DeletePolicyVersionRequest, GetPolicyRequest, GetPolicyVersionRequest, GetRoleRequest, GetUserRequest,
  ListPoliciesForRoleRequest, ListPoliciesForUserRequest, ListPolicyVersionsRequest, UpdateRoleRequest
} from '@alicloud/ram20150501'
import { $OpenApiUtil } from '@alicloud/openapi-core'
import { MAX_CUSTOM_POLICY_CHARS, startRamEmulator, trustPolicyProblem, type RamEmulator } from '../../emulator/ram.js'
import { createStaticCredential } from '../../../src/alicloud/credentials.js'

const SdkClient = RamModule.default
type Sdk = InstanceType<typeof SdkClient>
const ACCOUNT = '1234567890123456'

function testKey (): { id: string, secret: string } {
  return { id: `testkey${randomBytes(8).toString('hex')}`, secret: randomBytes(24).toString('base64url') }
}
const KEY = testKey()

async function emulator (t: { teardown: (fn: () => unknown) => void }): Promise<RamEmulator> {
  const emu = await startRamEmulator({ accessKeys: { [KEY.id]: KEY.secret }, accountId: ACCOUNT, users: ['devops_test'] })
  t.teardown(() => emu.close())
  return emu
}

function sdk (endpoint: string, key = KEY): Sdk {
  return new SdkClient(new $OpenApiUtil.Config({
    credential: createStaticCredential(key.id, key.secret),
    endpoint: new URL(endpoint).host,
    protocol: 'http',
    readTimeout: 2000,
    connectTimeout: 2000
  }))
}

async function code (p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return String((err as { code?: unknown }).code)
  }
}

const trust = (principal = `acs:ram::${ACCOUNT}:user/devops_test`): string =>
  JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { RAM: [principal] } }] })
const oss = (dir: string): string =>
  JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: ['oss:GetObject'], Resource: [`acs:oss:*:*:oss-test/${dir}*`] }] })

t.test('the SDK sends RAM calls RPC-style: POST /, parameters in the query, empty body, version 2015-05-01', async (t) => {
  const emu = await emulator(t)
  const ram = sdk(emu.url)
  const res = await ram.createRole(new CreateRoleRequest({ roleName: 'r1', assumeRolePolicyDocument: trust(), maxSessionDuration: 7200 }))
  t.equal(res.body?.role?.arn, `acs:ram::${ACCOUNT}:role/r1`)
  t.equal(res.body?.role?.maxSessionDuration, 7200)
  t.same(emu.calls.map((c) => [c.action, c.outcome, c.caller]), [['CreateRole', 'ok', KEY.id]])
  t.equal(emu.calls[0]?.params.AssumeRolePolicyDocument, trust(), 'the document arrives intact')
  const got = await ram.getRole(new GetRoleRequest({ roleName: 'r1' }))
  t.equal(got.body?.role?.assumeRolePolicyDocument, trust())
  t.equal(await code(ram.getRole(new GetRoleRequest({ roleName: 'nobody' }))), 'EntityNotExist.Role')
  t.equal(await code(ram.createRole(new CreateRoleRequest({ roleName: 'r1', assumeRolePolicyDocument: trust() }))), 'EntityAlreadyExists.Role')
})

t.test('a caller that does not sign with a known key, or with the wrong secret, is refused before anything', async (t) => {
  const emu = await emulator(t)
  t.equal(await code(sdk(emu.url, testKey()).getUser(new GetUserRequest({ userName: 'devops_test' }))), 'InvalidAccessKeyId.NotFound')
  t.equal(await code(sdk(emu.url, { id: KEY.id, secret: 'not-the-secret' }).getUser(new GetUserRequest({ userName: 'devops_test' }))), 'SignatureDoesNotMatch')
  t.equal(emu.callCount, 0, 'refused calls are not recorded as RAM calls')
  t.equal(emu.requestCount, 2, 'but the requests are counted')
})

t.test('names follow RAM rules', async (t) => {
  const emu = await emulator(t)
  const ram = sdk(emu.url)
  const cases: Array<[string, Promise<unknown>, string]> = [
    ['role name with _', ram.createRole(new CreateRoleRequest({ roleName: 'bad_name', assumeRolePolicyDocument: trust() })), 'InvalidParameter.RoleName.InvalidChars'],
    ['role name of 65', ram.createRole(new CreateRoleRequest({ roleName: 'r'.repeat(65), assumeRolePolicyDocument: trust() })), 'InvalidParameter.RoleName.Length'],
    ['role name of 64', ram.createRole(new CreateRoleRequest({ roleName: 'r.'.repeat(32), assumeRolePolicyDocument: trust() })), 'ok'],
    ['policy name with .', ram.createPolicy(new CreatePolicyRequest({ policyName: 'a.b', policyDocument: oss('d/') })), 'InvalidParameter.PolicyName.InvalidChars'],
    ['policy name of 129', ram.createPolicy(new CreatePolicyRequest({ policyName: 'p'.repeat(129), policyDocument: oss('d/') })), 'InvalidParameter.PolicyName.Length'],
    ['policy name of 128', ram.createPolicy(new CreatePolicyRequest({ policyName: 'p'.repeat(128), policyDocument: oss('d/') })), 'ok'],
    ['user name with /', ram.getUser(new GetUserRequest({ userName: 'a/b' })), 'InvalidParameter.UserName.InvalidChars'],
    ['missing role name', ram.getRole(new GetRoleRequest({})), 'MissingParameter.RoleName'],
    ['max session under 3600', ram.createRole(new CreateRoleRequest({ roleName: 'short', assumeRolePolicyDocument: trust(), maxSessionDuration: 900 })), 'InvalidParameter.MaxSessionDuration']
  ]
  for (const [what, p, want] of cases) t.equal(await code(p), want, what)
})

t.test('policy documents: size and grammar', async (t) => {
  const emu = await emulator(t)
  const ram = sdk(emu.url)
  const padded = (n: number): string => {
    const base = oss('d/')
    return base.slice(0, -1) + ' '.repeat(n - base.length) + '}'
  }
  t.equal(await code(ram.createPolicy(new CreatePolicyRequest({ policyName: 'max', policyDocument: padded(MAX_CUSTOM_POLICY_CHARS) }))), 'ok', '6144 characters are accepted (2048 is only the session-policy limit)')
  t.equal(await code(ram.createPolicy(new CreatePolicyRequest({ policyName: 'over', policyDocument: padded(MAX_CUSTOM_POLICY_CHARS + 1) }))), 'InvalidParameter.PolicyDocument.Length')
  const malformed: Array<[string, string]> = [
    ['not JSON', '{'],
    ['Version 2', JSON.stringify({ Version: '2', Statement: [{ Effect: 'Allow', Action: 'oss:*', Resource: '*' }] })],
    ['no Resource', JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: 'oss:*' }] })],
    ['Principal in a permission policy', JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: 'oss:*', Resource: '*', Principal: { RAM: ['1'] } }] })],
    ['unknown operator', JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: 'oss:*', Resource: '*', Condition: { Like: { 'oss:Prefix': 'a' } } }] })]
  ]
  for (const [what, doc] of malformed) {
    t.equal(await code(ram.createPolicy(new CreatePolicyRequest({ policyName: 'bad', policyDocument: doc }))), 'MalformedPolicyDocument', what)
  }
  t.equal(emu.policy('bad'), undefined)
})

t.test('trust policies need a well-formed Principal and sts:AssumeRole, and no Resource', async (t) => {
  const emu = await emulator(t)
  const ram = sdk(emu.url)
  const stmt = (s: object): string => JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', ...s }] })
  const cases: Array<[string, string, boolean]> = [
    ['a RAM user', trust(), true],
    ['the account root', trust(`acs:ram::${ACCOUNT}:root`), true],
    ['a bare account id', trust(ACCOUNT), true],
    ['a service', stmt({ Principal: { Service: ['ecs.aliyuncs.com'] } }), true],
    ['no Principal', stmt({}), false],
    ['a malformed RAM principal', trust('user/devops_test'), false],
    ['an unknown principal kind', stmt({ Principal: { AWS: ['x'] } }), false],
    ['a Resource', stmt({ Principal: { RAM: [ACCOUNT] }, Resource: '*' }), false],
    ['another action', JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: 'oss:GetObject', Principal: { RAM: [ACCOUNT] } }] }), false],
    ['Version missing', JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { RAM: [ACCOUNT] } }] }), false]
  ]
  for (const [what, doc, accepted] of cases) {
    t.equal(trustPolicyProblem(doc) === undefined, accepted, what)
  }
  t.equal(await code(ram.createRole(new CreateRoleRequest({ roleName: 'x', assumeRolePolicyDocument: stmt({}) }))), 'MalformedPolicyDocument')
  const long = trust().slice(0, -1) + ' '.repeat(2048) + '}'
  t.equal(await code(ram.createRole(new CreateRoleRequest({ roleName: 'x', assumeRolePolicyDocument: long }))), 'InvalidParameter.AssumeRolePolicyDocument.Length')
})

t.test('versions: default, GetPolicyVersion, the limit of 5, rotation, deleting', async (t) => {
  const emu = await emulator(t)
  const ram = sdk(emu.url)
  await ram.createPolicy(new CreatePolicyRequest({ policyName: 'p', policyDocument: oss('v1/'), description: 'd' }))
  const got = await ram.getPolicy(new GetPolicyRequest({ policyName: 'p', policyType: 'Custom' }))
  t.equal(got.body?.policy?.defaultVersion, 'v1')
  t.equal(got.body?.defaultPolicyVersion?.policyDocument, oss('v1/'))
  t.equal(await code(ram.getPolicy(new GetPolicyRequest({ policyName: 'p' }))), 'MissingParameter.PolicyType')
  t.equal(await code(ram.getPolicy(new GetPolicyRequest({ policyName: 'p', policyType: 'System' }))), 'EntityNotExist.Policy')
  t.equal(await code(ram.createPolicy(new CreatePolicyRequest({ policyName: 'p', policyDocument: oss('x/') }))), 'EntityAlreadyExists.Policy')

  const v2 = await ram.createPolicyVersion(new CreatePolicyVersionRequest({ policyName: 'p', policyDocument: oss('v2/') }))
  t.equal(v2.body?.policyVersion?.versionId, 'v2')
  t.equal(v2.body?.policyVersion?.isDefaultVersion, false, 'SetAsDefault defaults to false')
  t.equal(emu.policy('p')?.defaultVersion, 'v1')
  await ram.createPolicyVersion(new CreatePolicyVersionRequest({ policyName: 'p', policyDocument: oss('v3/'), setAsDefault: true }))
  t.equal(emu.policy('p')?.document, oss('v3/'))
  const v2doc = await ram.getPolicyVersion(new GetPolicyVersionRequest({ policyName: 'p', policyType: 'Custom', versionId: 'v2' }))
  t.equal(v2doc.body?.policyVersion?.policyDocument, oss('v2/'))
  t.equal(await code(ram.getPolicyVersion(new GetPolicyVersionRequest({ policyName: 'p', policyType: 'Custom', versionId: 'v9' }))), 'EntityNotExist.Policy.Version')
  t.equal(await code(ram.getPolicyVersion(new GetPolicyVersionRequest({ policyName: 'p', policyType: 'Custom', versionId: 'latest' }))), 'InvalidParameter.VersionId.Format')

  await ram.createPolicyVersion(new CreatePolicyVersionRequest({ policyName: 'p', policyDocument: oss('v4/') }))
  await ram.createPolicyVersion(new CreatePolicyVersionRequest({ policyName: 'p', policyDocument: oss('v5/') }))
  t.equal(await code(ram.createPolicyVersion(new CreatePolicyVersionRequest({ policyName: 'p', policyDocument: oss('v6/') }))), 'LimitExceeded.Policy.Version', 'RAM keeps at most 5')
  const listed = await ram.listPolicyVersions(new ListPolicyVersionsRequest({ policyName: 'p', policyType: 'Custom' }))
  t.same(listed.body?.policyVersions?.policyVersion?.map((v) => [v.versionId, v.isDefaultVersion]), [['v1', false], ['v2', false], ['v3', true], ['v4', false], ['v5', false]])

  t.equal(await code(ram.deletePolicyVersion(new DeletePolicyVersionRequest({ policyName: 'p', versionId: 'v3' }))), 'DeleteConflict.Policy.Version.Default')
  t.equal(await code(ram.deletePolicyVersion(new DeletePolicyVersionRequest({ policyName: 'p', versionId: 'v1' }))), 'ok')
  t.equal(await code(ram.createPolicyVersion(new CreatePolicyVersionRequest({ policyName: 'p', policyDocument: oss('v6/'), setAsDefault: true }))), 'ok')
  t.same(emu.policy('p')?.versions.map((v) => v.versionId), ['v2', 'v3', 'v4', 'v5', 'v6'], 'version ids are never reused')

  const rotated = await ram.createPolicyVersion(new CreatePolicyVersionRequest({
    policyName: 'p', policyDocument: oss('v7/'), rotateStrategy: 'DeleteOldestNonDefaultVersionWhenLimitExceeded'
  }))
  t.equal(rotated.body?.policyVersion?.versionId, 'v7')
  t.same(emu.policy('p')?.versions.map((v) => v.versionId), ['v3', 'v4', 'v5', 'v6', 'v7'], 'RotateStrategy drops the oldest non-default')
})

t.test('attachments to roles and users', async (t) => {
  const emu = await emulator(t)
  const ram = sdk(emu.url)
  await ram.createRole(new CreateRoleRequest({ roleName: 'r', assumeRolePolicyDocument: trust() }))
  await ram.createPolicy(new CreatePolicyRequest({ policyName: 'p', policyDocument: oss('d/') }))
  const attachRole = (policyName: string, policyType = 'Custom', roleName = 'r'): Promise<unknown> =>
    ram.attachPolicyToRole(new AttachPolicyToRoleRequest({ policyName, policyType, roleName }))
  t.equal(await code(attachRole('p')), 'ok')
  t.equal(await code(attachRole('p')), 'EntityAlreadyExists.Role.Policy')
  t.equal(await code(attachRole('nope')), 'EntityNotExist.Policy')
  t.equal(await code(attachRole('p', 'Custom', 'nobody')), 'EntityNotExist.Role')
  t.equal(await code(attachRole('p', 'Other')), 'InvalidParameter.PolicyType')
  const forRole = await ram.listPoliciesForRole(new ListPoliciesForRoleRequest({ roleName: 'r' }))
  t.same(forRole.body?.policies?.policy?.map((p) => [p.policyType, p.policyName]), [['Custom', 'p']])

  const attachUser = (policyName: string, policyType: string, userName = 'devops_test'): Promise<unknown> =>
    ram.attachPolicyToUser(new AttachPolicyToUserRequest({ policyName, policyType, userName }))
  t.equal(await code(attachUser('AliyunSTSAssumeRoleAccess', 'System')), 'ok')
  t.equal(await code(attachUser('AliyunSTSAssumeRoleAccess', 'System')), 'EntityAlreadyExists.User.Policy')
  t.equal(await code(attachUser('p', 'Custom', 'ghost')), 'EntityNotExist.User')
  const forUser = await ram.listPoliciesForUser(new ListPoliciesForUserRequest({ userName: 'devops_test' }))
  t.same(forUser.body?.policies?.policy?.map((p) => [p.policyType, p.policyName]), [['System', 'AliyunSTSAssumeRoleAccess']])
  t.equal(await code(ram.listPoliciesForUser(new ListPoliciesForUserRequest({ userName: 'ghost' }))), 'EntityNotExist.User')
  t.equal(await code(ram.getUser(new GetUserRequest({ userName: 'ghost' }))), 'EntityNotExist.User')
  const user = await ram.getUser(new GetUserRequest({ userName: 'devops_test' }))
  t.equal(user.body?.user?.userName, 'devops_test')

  const updated = await ram.updateRole(new UpdateRoleRequest({ roleName: 'r', newMaxSessionDuration: 7200 }))
  t.equal(updated.body?.role?.maxSessionDuration, 7200)
  t.same(emu.mutations.map((c) => c.action), [
    'CreateRole', 'CreatePolicy', 'AttachPolicyToRole', 'AttachPolicyToRole', 'AttachPolicyToRole', 'AttachPolicyToRole', 'AttachPolicyToRole',
    'AttachPolicyToUser', 'AttachPolicyToUser', 'AttachPolicyToUser', 'UpdateRole'
  ], 'mutations lists every changing call, refused ones included')
})

t.test('injected faults: NoPermission for one action, N times, then recovery', async (t) => {
  const emu = await emulator(t)
  const ram = sdk(emu.url)
  emu.inject({ kind: 'no-permission', action: 'CreateRole', count: 1 })
  t.equal(await code(ram.getUser(new GetUserRequest({ userName: 'devops_test' }))), 'ok', 'other actions are not affected')
  t.equal(await code(ram.createRole(new CreateRoleRequest({ roleName: 'r', assumeRolePolicyDocument: trust() }))), 'NoPermission')
  t.equal(emu.role('r'), undefined, 'a refused call changes nothing')
  t.equal(await code(ram.createRole(new CreateRoleRequest({ roleName: 'r', assumeRolePolicyDocument: trust() }))), 'ok')
  emu.inject({ kind: 'reject', code: 'Throttling.User', status: 400, count: 1 })
  t.equal(await code(ram.getRole(new GetRoleRequest({ roleName: 'r' }))), 'Throttling.User')
  emu.inject({ kind: 'server-error' })
  t.equal(await code(ram.getRole(new GetRoleRequest({ roleName: 'r' }))), 'InternalError')
  emu.clearFaults()
  t.equal(await code(ram.getRole(new GetRoleRequest({ roleName: 'r' }))), 'ok')
  t.throws(() => emu.inject({ kind: 'no-permission', count: 0 }), RangeError)
})
