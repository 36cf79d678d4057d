// `sts-vending provision`: the RAM side of one grant (role, trust, permission policy, the
// RAM user's right to assume it), planned from what RAM holds and applied idempotently.
// The planning lives in ../provision/; this file is the operator's words around it. The
// RAM SDK and the credential chain are loaded only for a real run: a dry run and --help
// work where the optional RAM package is not installed.
import { DEFAULT_RAM_ENDPOINT } from '../../alicloud/ram-types.js'
import { canonicalActions } from '../../policy/build.js'
import {
  PROGRAM, UsageError, defineCommand, parseActions, parseInteger, required,
  type Options, type Values, type Writable
} from '../args.js'
import {
  SYSTEM_ASSUME_POLICY, checkRequest, defaultGrantName, defaultRoleName, grantYaml, renderPolicy, trusteeText, type ProvisionRequest
} from '../provision/documents.js'
import { changeCall, emptyAccountReader, formatCall, planProvision, type Plan } from '../provision/plan.js'
import { checkRamEndpoint, runOnRam } from '../provision/run.js'

const help = `Usage: ${PROGRAM} provision --account-id <id> --bucket <bucket> --prefix <dir/> (--ram-user <name> | --trust-role-arn <arn>) [options]

Creates (or checks) in RAM, for one OSS directory and one RAM user:
  - a role that only this RAM user may assume (trust policy),
  - a custom policy with the chosen OSS actions on <bucket>/<prefix>* (and ListObjects
    with an oss:Prefix condition), attached to the role,
  - a custom policy letting the user assume only this role (or, with --system-policy,
    the system policy ${SYSTEM_ASSUME_POLICY}), attached to the user,
then prints the role ARN and the grant block for the service's config. Idempotent:
a second run changes nothing. A role that exists with another trust policy, or with
other policies attached than the one this command manages, is refused, never changed.

Required:
  --account-id <digits>          the Alibaba Cloud account id (RAM names the user in
                                 the trust policy as acs:ram::<account-id>:user/<name>)
  --bucket <name>                OSS bucket, e.g. oss-test
  --prefix <dir/>                directory, e.g. dir111/dir111_secondline1/ (ends with /)
  --ram-user <name>              the RAM user that calls the service (user name, not logon name)
  --trust-role-arn <arn>         or, with RRSA, the service's own role (see provision-rrsa):
                                 the role then trusts that role, and no user policy is made

Options:
  --actions <list>               comma-separated: list, read, write, delete (default list,read,write)
  --region <id>                  OSS region for the grant block (default cn-hangzhou)
  --role-name <name>             default sts-<bucket>-<prefix>-<hash>
  --max-session-duration <s>     role's MaxSessionDuration, 3600-43200 (default 3600;
                                 changes an existing role only when given)
  --system-policy                attach ${SYSTEM_ASSUME_POLICY} to the user instead of
                                 the narrower custom policy
  --allow-extra-policies         go on (with a warning) when the existing role has other
                                 policies attached, which widen what its credentials reach
  --grant-name <name>            grant name in the printed block (default <bucket>-<last dir>)
  --grant-prefix <template>      grant prefix (default <prefix>{sub}/); must lie inside --prefix
  --issuer <name>                issuer named in the grant block (repeatable; default app)
  --endpoint <url>               RAM endpoint (default ${DEFAULT_RAM_ENDPOINT})
  --dry-run                      print every document and API call; call nothing
  -h, --help                     show this help

Credentials: the Alibaba Cloud default chain (ALIBABA_CLOUD_ACCESS_KEY_ID and
ALIBABA_CLOUD_ACCESS_KEY_SECRET, a profile, RRSA or an instance role). The caller needs
the RAM permissions listed in docs/operator-guide.md (or AliyunRAMFullAccess).
A real run needs the optional package @alicloud/ram20150501; a dry run does not.

Exit codes: 0 ok, 1 failure, 2 usage error or missing optional package.
`

const options = {
  'account-id': { type: 'string' },
  bucket: { type: 'string' },
  prefix: { type: 'string' },
  'ram-user': { type: 'string' },
  'trust-role-arn': { type: 'string' },
  actions: { type: 'string' },
  region: { type: 'string' },
  'role-name': { type: 'string' },
  'max-session-duration': { type: 'string' },
  'system-policy': { type: 'boolean' },
  'allow-extra-policies': { type: 'boolean' },
  'grant-name': { type: 'string' },
  'grant-prefix': { type: 'string' },
  issuer: { type: 'string', multiple: true },
  endpoint: { type: 'string' },
  'dry-run': { type: 'boolean' }
} as const satisfies Options

function provisionRequest (v: Values<typeof options>): ProvisionRequest {
  const bucket = required(v.bucket, 'bucket')
  const prefix = required(v.prefix, 'prefix')
  const ramUser = v['ram-user']
  const trustRoleArn = v['trust-role-arn']
  if (ramUser === undefined && trustRoleArn === undefined) throw new UsageError('--ram-user (or --trust-role-arn) is required')
  const accountId = required(v['account-id'], 'account-id')
  const rawDuration = v['max-session-duration']
  const request: ProvisionRequest = {
    accountId,
    bucket,
    prefix,
    ...(ramUser !== undefined ? { ramUser } : {}),
    ...(trustRoleArn !== undefined ? { trustRoleArn } : {}),
    region: v.region ?? 'cn-hangzhou',
    roleName: v['role-name'] ?? defaultRoleName(bucket, prefix),
    actions: parseActions(v.actions),
    maxSessionDuration: rawDuration === undefined ? 3600 : parseInteger(rawDuration, 'max-session-duration'),
    maxSessionDurationExplicit: rawDuration !== undefined,
    systemPolicy: v['system-policy'] === true,
    allowExtraPolicies: v['allow-extra-policies'] === true,
    grantName: v['grant-name'] ?? defaultGrantName(bucket, prefix),
    grantPrefix: v['grant-prefix'] ?? `${prefix}{sub}/`,
    issuers: v.issuer ?? ['app']
  }
  const problem = checkRequest(request)
  if (problem !== undefined) throw new UsageError(problem)
  return request
}

function printHandover (out: Writable, request: ProvisionRequest, roleArn: string): void {
  out.write(`\nRole ARN (hand this to the developers): ${roleArn}\n`)
  out.write('\n# Grant for the sts-vending config (add under grants:, adjust issuers):\n')
  out.write(grantYaml(request, roleArn))
}

function printDryRun (out: Writable, plan: Plan, reads: ReturnType<typeof emptyAccountReader>['calls']): void {
  const { request, documents } = plan
  const names = documents.policyNames
  out.write('Dry run: nothing is read from or changed in RAM.\n\n')
  out.write(`Trust policy of role ${request.roleName}:\n${renderPolicy(documents.trustPolicy)}\n\n`)
  out.write(`Permission policy ${names.rolePolicy} (attached to the role):\n${renderPolicy(documents.rolePolicy)}\n\n`)
  if (request.trustRoleArn !== undefined) {
    out.write(`No user policy: ${request.trustRoleArn} needs sts:AssumeRole on this role (provision-rrsa gives it).\n\n`)
  } else if (request.systemPolicy) {
    out.write(`User policy: the system policy ${SYSTEM_ASSUME_POLICY} (attached to user ${request.ramUser}).\n\n`)
  } else {
    out.write(`User policy ${names.userPolicy} (attached to user ${request.ramUser}):\n${renderPolicy(documents.userPolicy)}\n\n`)
  }
  out.write('API calls a first run makes, in order (for an account where none of this exists yet):\n')
  // Reads and changes interleave in a real run; the reads all come before the first change.
  for (const call of reads) out.write(`  ${formatCall(call)}\n`)
  for (const change of plan.changes) out.write(`  ${formatCall(changeCall(change))}\n`)
  out.write('Where something exists already, a run compares it and changes only what differs: a permission or\n' +
    'user policy that differs gets a new default version (CreatePolicyVersion, after ListPolicyVersions and a\n' +
    'DeletePolicyVersion of the oldest non-default version when RAM\'s 5 are used); an existing role with another\n' +
    'trust policy, or with other policies attached, is refused and left unchanged.\n')
  printHandover(out, request, plan.roleArn)
}

export const command = defineCommand({
  help,
  options,
  async run (v, io) {
    const request = provisionRequest(v)
    const endpoint = v.endpoint ?? DEFAULT_RAM_ENDPOINT
    await checkRamEndpoint(endpoint)
    if (v['dry-run'] === true) {
      const reader = emptyAccountReader(request.trustRoleArn !== undefined ? [request.trustRoleArn] : [])
      const plan = await planProvision(request, reader)
      printDryRun(io.stdout, plan, reader.calls)
      return 0
    }
    return await runOnRam(io, endpoint, {
      heading: `Provisioning oss://${request.bucket}/${request.prefix} (${canonicalActions(request.actions).join(', ')}) for ${trusteeText(request)} as role ${request.roleName}`,
      plan: async (ram) => await planProvision(request, ram),
      notes: (plan) => plan.notes,
      handover: (plan) => { printHandover(io.stdout, request, plan.roleArn) }
    })
  }
})
