// provision-rrsa through the command line, against the RAM emulator over the real SDK:
// a dry run whose documents are valid JSON and exactly what a run creates, an idempotent
// run, a changed grant list, and refusals that leave RAM as it was.
import t from 'tap'
import { evaluatePolicy } from '../../../devkit/policy/evaluate.js'
import { buildGrantAssumePolicy, buildOidcTrustPolicy } from '../../../src/cli/provision/rrsa.js'
import { cli, oneLine } from '../../helpers/cli.js'
import { ACCOUNT, setup } from '../../helpers/provision.js'

const PROVIDER = `acs:ram::${ACCOUNT}:oidc-provider/ack-rrsa-c0123456789abcdef`
const ISSUER = 'https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c0123456789abcdef'
const GRANT_A = `acs:ram::${ACCOUNT}:role/oss-upload`
const GRANT_B = `acs:ram::${ACCOUNT}:role/oss-reports`
const SERVICE_ROLE = `acs:ram::${ACCOUNT}:role/sts-vending`
const base = ['provision-rrsa', '--account-id', ACCOUNT, '--oidc-provider-arn', PROVIDER, '--oidc-issuer-url', ISSUER,
  '--namespace', 'platform', '--service-account', 'sts-vending', '--grant-role-arn', GRANT_A]
const trust = buildOidcTrustPolicy({ oidcProviderArn: PROVIDER, oidcIssuerUrl: ISSUER, audience: 'sts.aliyuncs.com', namespace: 'platform', serviceAccount: 'sts-vending' })

t.test('--dry-run: both documents as valid JSON, every call, the chart values; nothing sent', async (t) => {
  const { emu } = await setup(t)
  const run = await cli([...base, '--endpoint', emu.url, '--dry-run'])
  t.equal(run.code, 0, run.stderr)
  t.equal(emu.requestCount, 0)
  const docs = [...run.stdout.matchAll(/^\{\n[\s\S]*?^\}$/gm)].map((m) => JSON.parse(m[0]) as unknown)
  t.same(docs, [trust, buildGrantAssumePolicy([GRANT_A])])
  t.same((docs[0] as { Statement: Array<{ Condition: unknown }> }).Statement[0]?.Condition, {
    StringEquals: { 'oidc:iss': [ISSUER], 'oidc:aud': ['sts.aliyuncs.com'], 'oidc:sub': ['system:serviceaccount:platform:sts-vending'] }
  }, 'the one service account of the one cluster')
  for (const call of ['GetRole RoleName=sts-vending', 'GetPolicy PolicyName=sts-vending-assume-grants', 'CreateRole RoleName=sts-vending', 'CreatePolicy', 'AttachPolicyToRole PolicyType=Custom PolicyName=sts-vending-assume-grants RoleName=sts-vending']) {
    t.match(run.stdout, new RegExp(`^  ${call}`, 'm'), call)
  }
  t.match(run.stdout, `rrsa:\n  enabled: true\n  mode: manual\n  roleName: sts-vending\n  roleArn: ${SERVICE_ROLE}\n  oidcProviderArn: ${PROVIDER}\n`)
})

t.test('a run creates the role and its policy; a second changes nothing; a new grant role is a new policy version', async (t) => {
  const { emu, credential } = await setup(t)
  const argv = [...base, '--endpoint', emu.url]
  const first = await cli(argv, { credential })
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, 'Applied 3 changes.')
  t.same(JSON.parse(emu.role('sts-vending')?.assumeRolePolicyDocument ?? ''), trust)
  t.same(emu.rolePolicies('sts-vending'), [{ policyType: 'Custom', policyName: 'sts-vending-assume-grants' }])
  const policy = emu.policy('sts-vending-assume-grants')?.document
  t.equal(evaluatePolicy(policy, { action: 'sts:AssumeRole', resource: GRANT_A }), 'allow')
  t.equal(evaluatePolicy(policy, { action: 'sts:AssumeRole', resource: `acs:ram::${ACCOUNT}:role/admin` }), 'implicit-deny', 'no other role')
  t.equal(evaluatePolicy(policy, { action: 'ram:CreateRole', resource: '*' }), 'implicit-deny', 'nothing else')

  emu.reset()
  const second = await cli(argv, { credential })
  t.equal(second.code, 0)
  t.match(second.stdout, 'Nothing changed: RAM already matches this request.')
  t.equal(emu.mutations.length, 0)

  emu.reset()
  const more = await cli([...argv, '--grant-role-arn', GRANT_B], { credential })
  t.equal(more.code, 0, more.stderr)
  t.same(emu.mutations.map((c) => c.action), ['CreatePolicyVersion'])
  t.equal(evaluatePolicy(emu.policy('sts-vending-assume-grants')?.document, { action: 'sts:AssumeRole', resource: GRANT_B }), 'allow')

  // With the service's role in place, a grant role that trusts it (provision --trust-role-arn).
  emu.reset()
  const grant = await cli(['provision', '--account-id', ACCOUNT, '--bucket', 'oss-test', '--prefix', 'uploads/', '--role-name', 'oss-upload',
    '--trust-role-arn', SERVICE_ROLE, '--endpoint', emu.url], { credential })
  t.equal(grant.code, 0, grant.stderr)
  t.same(JSON.parse(emu.role('oss-upload')?.assumeRolePolicyDocument ?? '').Statement[0].Principal, { RAM: [SERVICE_ROLE] })
})

t.test('refusals leave RAM unchanged; usage errors exit 2', async (t) => {
  const { emu, credential } = await setup(t)
  emu.putRole({ roleName: 'sts-vending', assumeRolePolicyDocument: JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { RAM: [`acs:ram::${ACCOUNT}:root`] } }] }) })
  emu.reset()
  const refused = await cli([...base, '--endpoint', emu.url], { credential })
  t.equal(refused.code, 1)
  t.match(refused.stderr, /role sts-vending already exists with a different trust policy: it also trusts RAM acs:ram::\d+:root; it does not trust Federated acs:ram::\d+:oidc-provider\//)
  t.ok(oneLine(refused.stderr))
  t.equal(emu.mutations.length, 0)

  const rows: Array<[string, string[], RegExp]> = [
    ['no grant role', base.slice(0, -2), /--grant-role-arn is required/],
    ['a provider of another account', [...base, '--oidc-provider-arn', 'acs:ram::999:oidc-provider/x'], /names account 999/],
    ['an http issuer', [...base, '--oidc-issuer-url', 'http://oidc.example'], /must be the cluster's https issuer URL/],
    ['a bad namespace', [...base, '--namespace', 'Platform'], /--namespace "Platform" is not a Kubernetes namespace name/],
    ['a user ARN as grant role', [...base, '--grant-role-arn', `acs:ram::${ACCOUNT}:user/x`], /is not a RAM role ARN/],
    ['its own role as grant role', [...base, '--grant-role-arn', SERVICE_ROLE], /must not name the service's own role/]
  ]
  for (const [what, argv, want] of rows) {
    const run = await cli([...argv, '--dry-run'])
    t.equal(run.code, 2, what)
    t.match(run.stderr, want, what)
  }
})
