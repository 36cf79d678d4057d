// Plan and apply against the RAM emulator through our client over the real SDK: a fresh
// account, a second run that changes nothing, a changed request, refusals that leave RAM
// untouched, and what RAM ends up allowing.
import t from 'tap'
import {
  applyPlan, emptyAccountReader, explainError, planProvision, ProvisionError, type Plan
} from '../../../src/cli/provision/plan.js'
import { RamApiError, type RamOperations } from '../../../src/alicloud/ram-types.js'
import { buildRoleTrustPolicy, buildTrustPolicy, renderPolicy, samePolicy, policyNames, type ProvisionRequest } from '../../../src/cli/provision/documents.js'
import { buildSessionPolicy } from '../../../src/policy/build.js'
import { evaluatePolicy, isAllowedByAll } from '../../../devkit/policy/evaluate.js'
import { createRamClient } from '../../../src/alicloud/ram-client.js'
import { createStaticCredential } from '../../../src/alicloud/credentials.js'
import { ACCOUNT, BUCKET, PREFIX, USER, exampleRequest, setup } from '../../helpers/provision.js'

async function provision (request: ProvisionRequest, ram: RamOperations): Promise<{ plan: Plan, applied: string[] }> {
  const plan = await planProvision(request, ram)
  return { plan, applied: await applyPlan(plan, ram) }
}

async function failure (p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a failure')
}

t.test('a fresh account: role, policies and attachments are created, in order', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest()
  const names = policyNames(request.roleName)
  const { plan, applied } = await provision(request, ram)
  const roleArn = `acs:ram::${ACCOUNT}:role/${request.roleName}`
  t.equal(plan.roleArn, roleArn)
  t.same(emu.mutations.map((c) => [c.action, c.outcome]), [
    ['CreateRole', 'ok'], ['CreatePolicy', 'ok'], ['AttachPolicyToRole', 'ok'], ['CreatePolicy', 'ok'], ['AttachPolicyToUser', 'ok']
  ])
  t.equal(applied.length, 5)

  const role = emu.role(request.roleName)
  t.ok(role !== undefined && samePolicy(role.assumeRolePolicyDocument, buildTrustPolicy(ACCOUNT, USER)), 'trusts exactly the user')
  t.equal(role?.maxSessionDuration, 3600)
  t.match(role?.description, /oss:\/\/oss-test\/dir111\/dir111_secondline1\//)
  t.same(emu.rolePolicies(request.roleName), [{ policyType: 'Custom', policyName: names.rolePolicy }])
  t.same(emu.userPolicies(USER), [{ policyType: 'Custom', policyName: names.userPolicy }])
  t.same(JSON.parse(emu.policy(names.rolePolicy)?.document ?? ''), buildSessionPolicy(BUCKET, PREFIX, ['list', 'read', 'write']))
  const userPolicy = emu.policy(names.userPolicy)?.document
  t.equal(evaluatePolicy(userPolicy, { action: 'sts:AssumeRole', resource: roleArn }), 'allow')
  t.equal(evaluatePolicy(userPolicy, { action: 'sts:AssumeRole', resource: `acs:ram::${ACCOUNT}:role/other` }), 'implicit-deny')
})

t.test('what RAM ends up allowing, intersected with one caller\'s session policy', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest()
  await provision(request, ram)
  // Everything attached to the role, as RAM stores it: the role's rights.
  const rolePolicies = emu.rolePolicies(request.roleName).map((a) => emu.policy(a.policyName, a.policyType)?.document)
  const session = buildSessionPolicy(BUCKET, `${PREFIX}alice/`, request.actions)
  const effective = [...rolePolicies, session]
  const can = (action: string, key: string): boolean => isAllowedByAll(effective, { action, resource: `acs:oss:*:*:${BUCKET}/${key}` })
  const canList = (prefix?: string): boolean =>
    isAllowedByAll(effective, { action: 'oss:ListObjects', resource: `acs:oss:*:*:${BUCKET}`, ...(prefix !== undefined ? { context: { 'oss:Prefix': prefix } } : {}) })
  t.ok(can('oss:PutObject', `${PREFIX}alice/a.jpg`), 'alice uploads into her directory')
  t.ok(can('oss:GetObject', `${PREFIX}alice/a.jpg`), 'and reads it back')
  t.notOk(can('oss:PutObject', `${PREFIX}bob/a.jpg`), 'not into bob\'s')
  t.notOk(can('oss:GetObject', `${PREFIX}bob/a.jpg`), 'nor reads bob\'s')
  t.notOk(can('oss:PutObject', 'dir111/a.jpg'), 'nor the parent')
  t.notOk(can('oss:PutObject', `${PREFIX}a.jpg`), 'nor the shared directory itself')
  t.notOk(can('oss:PutObject', 'dir111/dir111_secondline1x/alice/a.jpg'), 'nor a sibling whose name starts alike')
  t.notOk(can('oss:DeleteObject', `${PREFIX}alice/a.jpg`), 'nor delete (not requested)')
  t.ok(canList(`${PREFIX}alice/`), 'lists her directory')
  t.ok(canList(`${PREFIX}alice/sub/`), 'and below')
  t.notOk(canList(`${PREFIX}bob/`), 'not bob\'s')
  t.notOk(canList(PREFIX), 'not the shared directory')
  t.notOk(canList('dir111/'), 'not the parent')
  t.notOk(canList('dir111/dir111_secondline1x/'), 'not the sibling')
  t.notOk(canList(''), 'not the bucket root')
  t.notOk(canList(), 'not without a prefix')
})

t.test('a second run changes nothing and says so', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest()
  await provision(request, ram)
  const before = emu.policy(policyNames(request.roleName).rolePolicy)
  emu.reset()
  const { plan, applied } = await provision(request, ram)
  t.same(plan.changes, [])
  t.same(applied, [])
  t.equal(emu.mutations.length, 0, 'no mutating call')
  t.same(emu.calls.map((c) => c.action), ['GetUser', 'GetRole', 'ListPoliciesForRole', 'GetPolicy', 'GetPolicy', 'ListPoliciesForUser'], 'reads only')
  t.same(emu.policy(policyNames(request.roleName).rolePolicy), before)
  t.equal(plan.unchanged.length, 6)
})

t.test('a policy stored with other formatting still counts as the same', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest()
  const names = policyNames(request.roleName)
  await provision(request, ram)
  // Someone re-saved it compactly, keys in another order, in the console.
  const doc = buildSessionPolicy(BUCKET, PREFIX, ['write', 'read', 'list'])
  const compact = JSON.stringify({ Statement: [...doc.Statement].reverse(), Version: '1' })
  await ram.createPolicyVersion(names.rolePolicy, compact)
  emu.reset()
  const { plan } = await provision(request, ram)
  t.same(plan.changes, [])
  t.equal(emu.mutations.length, 0)
})

t.test('changed actions: a new default version of the role policy, nothing else', async (t) => {
  const { emu, ram } = await setup(t)
  await provision(exampleRequest(), ram)
  emu.reset()
  const request = exampleRequest({ actions: ['list', 'read', 'write', 'delete'] })
  const { plan } = await provision(request, ram)
  t.same(plan.changes.map((c) => c.action), ['CreatePolicyVersion'])
  t.same(emu.mutations.map((c) => c.action), ['CreatePolicyVersion'])
  t.equal(emu.mutations[0]?.params.SetAsDefault, 'true')
  const policy = emu.policy(policyNames(request.roleName).rolePolicy)
  t.equal(policy?.defaultVersion, 'v2')
  t.same(JSON.parse(policy?.document ?? ''), buildSessionPolicy(BUCKET, PREFIX, ['list', 'read', 'write', 'delete']))
  t.equal(policy?.versions.length, 2, 'the old version stays in the history')
})

t.test('at RAM\'s 5 versions, the oldest non-default one is deleted first', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest()
  const name = policyNames(request.roleName).rolePolicy
  await provision(request, ram)
  // Four more versions, each set as default: v1..v5 exist, v5 is the default, v1 the oldest.
  for (const actions of [['read'], ['write'], ['list'], ['read', 'write']] as const) {
    await ram.createPolicyVersion(name, renderPolicy(buildSessionPolicy(BUCKET, PREFIX, actions)))
  }
  t.equal(emu.policy(name)?.versions.length, 5)
  emu.reset()
  const { plan } = await provision(request, ram)
  t.same(plan.changes.map((c) => c.action), ['DeletePolicyVersion', 'CreatePolicyVersion'])
  t.same(emu.mutations.map((c) => [c.action, c.params.VersionId ?? '']), [['DeletePolicyVersion', 'v1'], ['CreatePolicyVersion', '']])
  const policy = emu.policy(name)
  t.same(policy?.versions.map((v) => v.versionId), ['v2', 'v3', 'v4', 'v5', 'v6'])
  t.equal(policy?.defaultVersion, 'v6')
})

t.test('a role that exists with another trust policy is refused and left untouched', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest()
  const foreign = JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { RAM: [`acs:ram::${ACCOUNT}:root`] } }] })
  emu.putRole({ roleName: request.roleName, assumeRolePolicyDocument: foreign })
  const err = await failure(provision(request, ram))
  t.ok(err instanceof ProvisionError)
  t.match(explainError(err), new RegExp(`^role ${request.roleName} already exists with a different trust policy: it also trusts RAM acs:ram::${ACCOUNT}:root; it does not trust RAM acs:ram::${ACCOUNT}:user/${USER}\\. It was left unchanged`))
  t.equal(emu.mutations.length, 0, 'nothing was changed')
  t.equal(emu.role(request.roleName)?.assumeRolePolicyDocument, foreign)
})

t.test('a role with other policies attached is refused by name, unless the operator accepts it', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest()
  await provision(request, ram)
  // Someone widened the role in the console afterwards.
  await ram.attachPolicyToRole('System', 'AliyunOSSFullAccess', request.roleName)
  await ram.createPolicy({ policyName: 'everything-else', document: JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: 'oss:*', Resource: '*' }] }), description: '' })
  await ram.attachPolicyToRole('Custom', 'everything-else', request.roleName)
  emu.reset()

  const err = await failure(provision(request, ram))
  t.ok(err instanceof ProvisionError)
  const names = policyNames(request.roleName)
  t.match(explainError(err), new RegExp(`^role ${request.roleName} has other policies attached besides ${names.rolePolicy}: ` +
    'AliyunOSSFullAccess \\(System\\), everything-else \\(Custom\\), so it reaches beyond oss://oss-test/dir111/dir111_secondline1/\\. ' +
    'It was left unchanged; detach them .* or accept this with --allow-extra-policies$'))
  t.equal(emu.mutations.length, 0, 'nothing was changed')
  t.same(emu.calls.map((c) => c.action), ['GetUser', 'GetRole', 'ListPoliciesForRole'], 'refused as soon as it is known')

  const accepted = await provision(exampleRequest({ allowExtraPolicies: true }), ram)
  t.same(accepted.plan.changes, [], 'otherwise up to date')
  t.equal(accepted.plan.warnings.length, 1)
  t.match(accepted.plan.warnings[0], /AliyunOSSFullAccess \(System\), everything-else \(Custom\).*the service's session policy is the only limit/)
  t.equal(emu.mutations.length, 0, 'and still nothing detached or changed')

  // A fresh role has nothing else attached: no listing, no warning.
  const fresh = await planProvision(exampleRequest({ roleName: 'fresh-role' }), ram)
  t.same(fresh.warnings, [])
})

t.test('an existing role with the same trust (other formatting) is reused', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest()
  emu.putRole({ roleName: request.roleName, assumeRolePolicyDocument: JSON.stringify({ Statement: [{ Principal: { RAM: `acs:ram::${ACCOUNT}:user/${USER}` }, Effect: 'Allow', Action: 'STS:AssumeRole' }], Version: '1' }) })
  const { plan } = await provision(request, ram)
  t.notOk(plan.changes.some((c) => c.action === 'CreateRole' || c.action === 'UpdateRole'))
  t.same(emu.rolePolicies(request.roleName).length, 1)
})

t.test('a role in another account than --account-id is refused', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest({ accountId: '999' })
  emu.putRole({ roleName: request.roleName, assumeRolePolicyDocument: renderPolicy(buildTrustPolicy('999', USER)) })
  t.match(explainError(await failure(provision(request, ram))), /belongs to account 1234567890123456, not --account-id 999/)
  t.equal(emu.mutations.length, 0)
})

t.test('a wrong --account-id on a fresh account stops right after CreateRole', async (t) => {
  const { emu, ram } = await setup(t)
  const err = await failure(provision(exampleRequest({ accountId: '999' }), ram))
  t.match(explainError(err), /as acs:ram::1234567890123456:role\/.*, not acs:ram::999:role\/.*: check --account-id/)
  t.same(emu.mutations.map((c) => c.action), ['CreateRole'], 'no policy names a role of the wrong account')
})

t.test('a missing RAM user is refused before any change', async (t) => {
  const { emu, ram } = await setup(t, [])
  t.match(explainError(await failure(provision(exampleRequest(), ram))), /^RAM user "devops_test" does not exist in this account/)
  t.same(emu.calls.map((c) => c.action), ['GetUser'])
})

t.test('NoPermission names the RAM permission the caller lacks', async (t) => {
  const { emu, ram } = await setup(t)
  emu.inject({ kind: 'no-permission', action: 'CreateRole' })
  const err = await failure(provision(exampleRequest(), ram))
  t.ok(err instanceof RamApiError)
  t.match(explainError(err), /^RAM refused CreateRole \(NoPermission\): the credential running this command needs the RAM permission ram:CreateRole/)
  emu.clearFaults()
  emu.inject({ kind: 'no-permission', action: 'GetUser' })
  t.match(explainError(await failure(provision(exampleRequest(), ram))), /ram:GetUser/)
})

t.test('a failure part-way says so, and a second run finishes the job', async (t) => {
  const { emu, ram } = await setup(t)
  emu.inject({ kind: 'no-permission', action: 'AttachPolicyToUser', count: 1 })
  t.match(explainError(await failure(provision(exampleRequest(), ram))), /after 4 changes were applied; run again to continue/)
  emu.reset()
  const { plan } = await provision(exampleRequest(), ram)
  t.same(plan.changes.map((c) => c.action), ['AttachPolicyToUser'])
})

t.test('--system-policy attaches AliyunSTSAssumeRoleAccess instead of the narrow policy', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest({ systemPolicy: true })
  await provision(request, ram)
  t.same(emu.userPolicies(USER), [{ policyType: 'System', policyName: 'AliyunSTSAssumeRoleAccess' }])
  t.equal(emu.policy(policyNames(request.roleName).userPolicy), undefined)
  emu.reset()
  const { plan } = await provision(request, ram)
  t.same(plan.changes, [])
})

t.test('a user that already has the broad system policy gets the narrow one and a note', async (t) => {
  const { emu, ram } = await setup(t)
  await provision(exampleRequest({ systemPolicy: true }), ram)
  const { plan } = await provision(exampleRequest(), ram)
  t.same(plan.changes.map((c) => c.action), ['CreatePolicy', 'AttachPolicyToUser'])
  t.match(plan.notes.join('\n'), /also has AliyunSTSAssumeRoleAccess/)
  t.equal(emu.userPolicies(USER).length, 2)
})

t.test('--max-session-duration changes an existing role only when given', async (t) => {
  const { emu, ram } = await setup(t)
  const request = exampleRequest()
  emu.putRole({ roleName: request.roleName, assumeRolePolicyDocument: renderPolicy(buildTrustPolicy(ACCOUNT, USER)), maxSessionDuration: 7200 })
  const first = await provision(request, ram)
  t.notOk(first.plan.changes.some((c) => c.action === 'UpdateRole'), 'default 3600 does not shorten an existing role')
  const second = await provision(exampleRequest({ maxSessionDuration: 10_800, maxSessionDurationExplicit: true }), ram)
  t.same(second.plan.changes.map((c) => c.action), ['UpdateRole'])
  t.equal(emu.role(request.roleName)?.maxSessionDuration, 10_800)
})

t.test('the dry run plans against an empty account without any I/O', async (t) => {
  const reader = emptyAccountReader()
  const plan = await planProvision(exampleRequest(), reader)
  t.same(reader.calls.map((c) => c.action), ['GetUser', 'GetRole', 'GetPolicy', 'GetPolicy', 'ListPoliciesForUser'])
  t.same(plan.changes.map((c) => c.action), ['CreateRole', 'CreatePolicy', 'AttachPolicyToRole', 'CreatePolicy', 'AttachPolicyToUser'])
})

t.test('failures of the client carry no secret and are one line', async (t) => {
  const { emu, key } = await setup(t)
  const wrong = createRamClient({ endpoint: emu.url, credential: createStaticCredential(key.id, 'wrong-secret-value'), timeoutMs: 3000 })
  const err = await failure(wrong.getRole('x'))
  t.ok(err instanceof RamApiError)
  const line = explainError(err)
  t.match(line, /^RAM GetRole failed: SignatureDoesNotMatch/)
  t.notMatch(line, /wrong-secret-value|\n/)
  t.notMatch(line, key.secret)
  const closed = createRamClient({ endpoint: 'http://127.0.0.1:1', credential: createStaticCredential(key.id, key.secret), timeoutMs: 1000 })
  t.match(explainError(await failure(closed.getRole('x'))), /^cannot reach RAM for GetRole: ECONNREFUSED/)
  const noCredential = createRamClient({ endpoint: emu.url, credential: { async getCredential () { throw new Error(`secret ${key.secret}`) } } })
  const nc = explainError(await failure(noCredential.getRole('x')))
  t.match(nc, /^no Alibaba Cloud credentials found/)
  t.notMatch(nc, key.secret)
})

t.test('--trust-role-arn: the role trusts the service\'s own role (RRSA), idempotently, and no user is involved', async (t) => {
  const { emu, ram } = await setup(t, [])
  const serviceRole = `acs:ram::${ACCOUNT}:role/sts-vending`
  const request = exampleRequest({ ramUser: undefined, trustRoleArn: serviceRole })

  const missing = await failure(provision(request, ram))
  t.match(explainError(missing), /^role acs:ram::\d+:role\/sts-vending does not exist in this account: create the service's role first \(sts-vending provision-rrsa\)/)
  t.equal(emu.mutations.length, 0)

  emu.putRole({ roleName: 'sts-vending', assumeRolePolicyDocument: renderPolicy(buildTrustPolicy(ACCOUNT, 'someone')) })
  emu.reset()
  const { plan } = await provision(request, ram)
  t.same(plan.changes.map((c) => c.action), ['CreateRole', 'CreatePolicy', 'AttachPolicyToRole'], 'no user policy, no user attachment')
  t.notOk(emu.calls.some((c) => c.action.includes('User')), 'no user is read or touched')
  t.same(JSON.parse(emu.role(request.roleName)?.assumeRolePolicyDocument ?? ''), buildRoleTrustPolicy(serviceRole))
  t.match(plan.notes.join('\n'), `${serviceRole} needs sts:AssumeRole on acs:ram::${ACCOUNT}:role/${request.roleName}`)

  emu.reset()
  const again = await provision(request, ram)
  t.same(again.plan.changes, [], 'a second run changes nothing')
  t.equal(emu.mutations.length, 0)

  // The same role asked for a RAM user is a different trust: refused, not rewritten.
  emu.addUser(USER)
  emu.reset()
  const asUser = await failure(provision(exampleRequest(), ram))
  t.match(explainError(asUser), new RegExp(`^role ${request.roleName} already exists with a different trust policy`))
  t.equal(emu.mutations.length, 0)
})

t.test('a request names exactly one trustee', async (t) => {
  const { checkRequest } = await import('../../../src/cli/provision/documents.js')
  t.match(checkRequest(exampleRequest({ ramUser: undefined })), /give either --ram-user or --trust-role-arn/)
  t.match(checkRequest(exampleRequest({ trustRoleArn: `acs:ram::${ACCOUNT}:role/x` })), /give either --ram-user or --trust-role-arn/)
  t.match(checkRequest(exampleRequest({ ramUser: undefined, trustRoleArn: 'acs:ram::1:user/x' })), /is not a RAM role ARN/)
  t.match(checkRequest(exampleRequest({ ramUser: undefined, trustRoleArn: 'acs:ram::999:role/x' })), /names account 999, not --account-id/)
  t.equal(checkRequest(exampleRequest({ ramUser: undefined, trustRoleArn: `acs:ram::${ACCOUNT}:role/sts-vending` })), undefined)
})
