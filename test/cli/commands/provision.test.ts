// The command line end to end through runCli(): real argument parsing, the real SDK
// against the RAM emulator, output and exit codes as an operator sees them.
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { runCli } from '../../../src/cli/main.js'
import { type CliIo } from '../../../src/cli/args.js'
import { buildSessionPolicy } from '../../../src/policy/build.js'
import { buildTrustPolicy, defaultRoleName, policyNames } from '../../../src/cli/provision/documents.js'
import { ACCOUNT, BUCKET, PREFIX, USER, setup } from '../../helpers/provision.js'

interface Run { code: number, stdout: string, stderr: string }

async function cli (argv: string[], credential?: CliIo['credential']): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await runCli(argv, {
    stdout: { write: (s: string) => { stdout += s } },
    stderr: { write: (s: string) => { stderr += s } },
    ...(credential !== undefined ? { credential } : {})
  })
  return { code, stdout, stderr }
}

const ROLE = defaultRoleName(BUCKET, PREFIX)
const ARN = `acs:ram::${ACCOUNT}:role/${ROLE}`
const base = ['--account-id', ACCOUNT, '--bucket', BUCKET, '--prefix', PREFIX, '--ram-user', USER]

/** The single-line, stack-free shape of every error. */
function oneLine (stderr: string): boolean {
  return stderr.endsWith('\n') && !stderr.trimEnd().includes('\n') && !/\bat .*\(.*:\d+:\d+\)/.test(stderr)
}

t.test('provision, then provision again: the second run changes nothing and says so', async (t) => {
  const { emu, credential } = await setup(t)
  const argv = ['provision', ...base, '--endpoint', emu.url]
  const first = await cli(argv, credential)
  t.equal(first.code, 0, first.stderr)
  t.equal(first.stderr, '')
  t.match(first.stdout, `+ created role ${ROLE}`)
  t.match(first.stdout, 'Applied 5 changes.')
  t.match(first.stdout, `Role ARN (hand this to the developers): ${ARN}`)
  const yaml = first.stdout.slice(first.stdout.indexOf('grants:'))
  t.same((parseYaml(yaml) as { grants: Array<{ roleArn: string, prefix: string }> }).grants.map((g) => [g.roleArn, g.prefix]), [[ARN, `${PREFIX}{sub}/`]])

  emu.reset()
  const second = await cli(argv, credential)
  t.equal(second.code, 0)
  t.match(second.stdout, 'Nothing changed: RAM already matches this request.')
  t.notMatch(second.stdout, /^\s+\+ /m)
  t.equal(emu.mutations.length, 0)
  t.match(second.stdout, ARN, 'still prints the ARN to hand over')
})

t.test('--dry-run prints every document and call and sends nothing', async (t) => {
  const { emu, credential } = await setup(t)
  const run = await cli(['provision', ...base, '--endpoint', emu.url, '--dry-run'], credential)
  t.equal(run.code, 0, run.stderr)
  t.equal(emu.requestCount, 0, 'the emulator saw no request at all')
  const jsonBlocks = [...run.stdout.matchAll(/^\{\n[\s\S]*?^\}$/gm)].map((m) => JSON.parse(m[0]) as unknown)
  t.equal(jsonBlocks.length, 3, 'trust, permission and user policy')
  t.same(jsonBlocks[0], buildTrustPolicy(ACCOUNT, USER))
  t.same(jsonBlocks[1], buildSessionPolicy(BUCKET, PREFIX, ['list', 'read', 'write']))
  t.same(jsonBlocks[2], { Version: '1', Statement: [{ Effect: 'Allow', Action: ['sts:AssumeRole'], Resource: [ARN] }] })
  for (const call of ['GetUser', 'GetRole', 'CreateRole', 'GetPolicy', 'CreatePolicy', 'AttachPolicyToRole', 'ListPoliciesForUser', 'AttachPolicyToUser']) {
    t.match(run.stdout, new RegExp(`^  ${call} `, 'm'), call)
  }
  t.match(run.stdout, `AttachPolicyToUser PolicyType=Custom PolicyName=${policyNames(ROLE).userPolicy} UserName=${USER}`)
  t.match(run.stdout, ARN)

  const system = await cli(['provision', ...base, '--dry-run', '--system-policy'])
  t.match(system.stdout, 'AttachPolicyToUser PolicyType=System PolicyName=AliyunSTSAssumeRoleAccess')
})

t.test('a role with another policy attached: exit 1 naming it, or a loud warning with --allow-extra-policies', async (t) => {
  const { emu, ram, credential } = await setup(t)
  const argv = ['provision', ...base, '--endpoint', emu.url]
  t.equal((await cli(argv, credential)).code, 0)
  await ram.attachPolicyToRole('System', 'AliyunOSSFullAccess', ROLE)
  emu.reset()

  const refused = await cli(argv, credential)
  t.equal(refused.code, 1)
  t.match(refused.stderr, new RegExp(`^sts-vending provision: role ${ROLE} has another policy attached besides ${policyNames(ROLE).rolePolicy}: AliyunOSSFullAccess \\(System\\)`))
  t.ok(oneLine(refused.stderr), 'one line, no stack trace')
  t.notMatch(refused.stdout, 'hand this to the developers', 'no ARN handed over')
  t.equal(emu.mutations.length, 0)

  const accepted = await cli([...argv, '--allow-extra-policies'], credential)
  t.equal(accepted.code, 0, accepted.stderr)
  t.match(accepted.stderr, /^WARNING: role \S+ has another policy attached .*AliyunOSSFullAccess \(System\).*the service's session policy is the only limit/)
  t.match(accepted.stdout, `Role ARN (hand this to the developers): ${ARN}`)
  t.equal(emu.mutations.length, 0)
})

t.test('--trust-role-arn --dry-run: valid JSON documents, the role trusting the service\'s role, nothing sent', async (t) => {
  const { emu } = await setup(t)
  const serviceRole = `acs:ram::${ACCOUNT}:role/sts-vending`
  const run = await cli(['provision', ...base.slice(0, 6), '--trust-role-arn', serviceRole, '--endpoint', emu.url, '--dry-run'])
  t.equal(run.code, 0, run.stderr)
  t.equal(emu.requestCount, 0)
  const jsonBlocks = [...run.stdout.matchAll(/^\{\n[\s\S]*?^\}$/gm)].map((m) => JSON.parse(m[0]) as unknown)
  t.same(jsonBlocks, [
    { Version: '1', Statement: [{ Effect: 'Allow', Action: ['sts:AssumeRole'], Principal: { RAM: [serviceRole] } }] },
    buildSessionPolicy(BUCKET, PREFIX, ['list', 'read', 'write'])
  ], 'trust and permission policy, no user policy')
  t.match(run.stdout, `No user policy: ${serviceRole} needs sts:AssumeRole on this role`)
  t.notMatch(run.stdout, /AttachPolicyToUser|GetUser/)
  t.match(run.stdout, `Role ARN (hand this to the developers): ${ARN}`)

  const both = await cli(['provision', ...base, '--trust-role-arn', serviceRole, '--dry-run'])
  t.equal(both.code, 2)
  t.match(both.stderr, /give either --ram-user or --trust-role-arn/)
  const neither = await cli(['provision', ...base.slice(0, 6), '--dry-run'])
  t.equal(neither.code, 2)
  t.match(neither.stderr, /--ram-user \(or --trust-role-arn\) is required/)
})

t.test('policy prints the builder\'s document as JSON', async (t) => {
  const run = await cli(['policy', '--bucket', BUCKET, '--prefix', PREFIX, '--actions', 'write,list'])
  t.equal(run.code, 0)
  t.same(JSON.parse(run.stdout), buildSessionPolicy(BUCKET, PREFIX, ['list', 'write']))
  const defaults = await cli(['policy', '--bucket', BUCKET, '--prefix', PREFIX])
  t.same(JSON.parse(defaults.stdout), buildSessionPolicy(BUCKET, PREFIX, ['list', 'read', 'write']))
})

t.test('usage errors exit 2 with one line', async (t) => {
  const rows: Array<[string, string[], RegExp]> = [
    ['missing --bucket', ['provision', '--account-id', ACCOUNT, '--prefix', PREFIX, '--ram-user', USER], /--bucket is required/],
    ['missing --account-id', ['provision', '--bucket', BUCKET, '--prefix', PREFIX, '--ram-user', USER], /--account-id is required/],
    ['invalid bucket', ['provision', ...base.slice(0, 2), '--bucket', 'Bad_Bucket', '--prefix', PREFIX, '--ram-user', USER], /--bucket "Bad_Bucket" is not a valid OSS bucket name/],
    ['unsafe prefix', ['provision', ...base.slice(0, 4), '--prefix', '../etc/', '--ram-user', USER], /--prefix "\.\.\/etc\/" is not a safe directory/],
    ['unknown action', ['provision', ...base, '--actions', 'list,admin'], /unknown action "admin"/],
    ['unknown option', ['provision', ...base, '--force'], /Unknown option '--force'/],
    ['positional argument', ['provision', ...base, 'extra'], /Unexpected argument 'extra'/],
    ['duration not a number', ['provision', ...base, '--max-session-duration', '1h'], /--max-session-duration must be a whole number/],
    ['endpoint with a path', ['provision', ...base, '--endpoint', 'http://127.0.0.1:1/ram'], /--endpoint: the RAM endpoint must be/],
    ['policy without prefix', ['policy', '--bucket', BUCKET], /--prefix is required/],
    ['policy with bad prefix', ['policy', '--bucket', BUCKET, '--prefix', 'a*/'], /--prefix "a\*\/" is not a safe directory/]
  ]
  for (const [what, argv, want] of rows) {
    const run = await cli(argv)
    t.equal(run.code, 2, `${what}: exit 2`)
    t.equal(run.stdout, '', `${what}: nothing on stdout`)
    t.match(run.stderr, want, what)
    t.ok(oneLine(run.stderr), 'one line, no stack trace')
  }
})

t.test('failures exit 1 with one explanatory line and no secret', async (t) => {
  const { emu, key, credential } = await setup(t)
  const argv = ['provision', ...base, '--endpoint', emu.url]

  emu.inject({ kind: 'no-permission', action: 'CreateRole', count: 1 })
  const denied = await cli(argv, credential)
  t.equal(denied.code, 1)
  t.match(denied.stderr, /^sts-vending provision: RAM refused CreateRole \(NoPermission\): .* ram:CreateRole/)
  t.ok(oneLine(denied.stderr), 'one line, no stack trace')

  emu.putRole({ roleName: 'taken', assumeRolePolicyDocument: JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { RAM: [`acs:ram::${ACCOUNT}:root`] } }] }) })
  emu.reset()
  const conflict = await cli([...argv, '--role-name', 'taken'], credential)
  t.equal(conflict.code, 1)
  t.match(conflict.stderr, /role taken already exists with a different trust policy: it also trusts RAM acs:ram::\d+:root/)
  t.ok(oneLine(conflict.stderr), 'one line, no stack trace')
  t.equal(emu.mutations.length, 0)

  const missing = await cli(['provision', ...base.slice(0, 6), '--ram-user', 'nobody', '--endpoint', emu.url], credential)
  t.equal(missing.code, 1)
  t.match(missing.stderr, /RAM user "nobody" does not exist/)
  t.ok(oneLine(missing.stderr), 'one line, no stack trace')

  const { createStaticCredential } = await import('../../../src/alicloud/credentials.js')
  const badSecret = await cli(argv, createStaticCredential(key.id, 'definitely-not-the-secret'))
  t.equal(badSecret.code, 1)
  t.match(badSecret.stderr, /SignatureDoesNotMatch/)
  t.notMatch(badSecret.stderr + badSecret.stdout, /definitely-not-the-secret/)
  t.notMatch(badSecret.stderr + badSecret.stdout, key.secret)
  t.ok(oneLine(badSecret.stderr), 'one line, no stack trace')
})
