#!/usr/bin/env node
// The operator's command line: `sts-vending <command> [options]`. Each command is one
// entry of `commands` (name → summary, help, run), so a new one (`verify`) is added
// there and nowhere else. runCli() never exits the process and never throws: it writes
// to the streams it is given and returns the exit code (0 ok, 1 failure, 2 usage error),
// which is what the tests drive. Errors are one line, without stack traces or secrets.
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { ACTIONS, type Action } from './config/schema.js'
import { buildSessionPolicy, canonicalActions } from './policy/build.js'
import { createUpstreamCredential } from './alicloud/credentials.js'
import type { CredentialLike } from './alicloud/sts-client.js'
import {
  BUCKET, SYSTEM_ASSUME_POLICY, checkRequest, defaultGrantName, defaultRoleName, grantYaml, renderPolicy,
  type ProvisionRequest
} from './provision/documents.js'
import {
  applyPlan, changeCall, emptyAccountReader, explainError, formatCall, planProvision, type Plan
} from './provision/provision.js'
import { DEFAULT_RAM_ENDPOINT, createRamClient, parseEndpoint } from './alicloud/ram-client.js'
import { isSafePrefix } from './grants/template.js'
import { runVerify, VERIFY_HELP } from './verify/verify.js'
import { runSidecar, SIDECAR_HELP } from './sidecar/sidecar.js'

export interface Writable { write: (chunk: string) => unknown }

export interface CliIo {
  stdout: Writable
  stderr: Writable
  /** What RAM calls are signed with. Default: the SDK's default credential chain (env, profile, RRSA, instance role). */
  credential?: CredentialLike
}

export interface Command {
  summary: string
  help: string
  run: (args: string[], io: CliIo) => Promise<number>
}

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

const PROGRAM = 'sts-vending'

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>

function parse<O extends Options> (args: string[], options: O): ReturnType<typeof parseArgs<{ args: string[], options: O, strict: true, allowPositionals: false }>>['values'] {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError(((err as Error).message.split('\n')[0] ?? 'invalid arguments').replace(/\. To specify a positional.*$/, ''))
  }
}

function required (value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`--${flag} is required`)
  return value
}

function parseActions (value: string | undefined): Action[] {
  const list = (value ?? 'list,read,write').split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const a of list) {
    if (!(ACTIONS as readonly string[]).includes(a)) throw new UsageError(`--actions: unknown action "${a}" (use ${ACTIONS.join(', ')})`)
  }
  if (list.length === 0) throw new UsageError('--actions must name at least one action')
  return canonicalActions(list as Action[])
}

function parseInteger (value: string, flag: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new UsageError(`--${flag} must be a whole number of seconds`)
  return Number(value)
}

// ---- provision ----

const PROVISION_HELP = `Usage: ${PROGRAM} provision --account-id <id> --bucket <bucket> --prefix <dir/> --ram-user <name> [options]

Creates (or checks) in RAM, for one OSS directory and one RAM user:
  - a role that only this RAM user may assume (trust policy),
  - a custom policy with the chosen OSS actions on <bucket>/<prefix>* (and ListObjects
    with an oss:Prefix condition), attached to the role,
  - a custom policy letting the user assume only this role (or, with --system-policy,
    the system policy ${SYSTEM_ASSUME_POLICY}), attached to the user,
then prints the role ARN and the grant block for the service's config. Idempotent:
a second run changes nothing. A role that exists with another trust policy is refused,
never changed.

Required:
  --account-id <digits>          the Alibaba Cloud account id (RAM names the user in
                                 the trust policy as acs:ram::<account-id>:user/<name>)
  --bucket <name>                OSS bucket, e.g. oss-test
  --prefix <dir/>                directory, e.g. dir111/dir111_secondline1/ (ends with /)
  --ram-user <name>              the RAM user that calls the service (user name, not logon name)

Options:
  --actions <list>               comma-separated: list, read, write, delete (default list,read,write)
  --region <id>                  OSS region for the grant block (default cn-hangzhou)
  --role-name <name>             default sts-<bucket>-<prefix>-<hash>
  --max-session-duration <s>     role's MaxSessionDuration, 3600-43200 (default 3600;
                                 changes an existing role only when given)
  --system-policy                attach ${SYSTEM_ASSUME_POLICY} to the user instead of
                                 the narrower custom policy
  --grant-name <name>            grant name in the printed block (default <bucket>-<last dir>)
  --grant-prefix <template>      grant prefix (default <prefix>{sub}/); must lie inside --prefix
  --issuer <name>                issuer named in the grant block (repeatable; default app)
  --endpoint <url>               RAM endpoint (default ${DEFAULT_RAM_ENDPOINT})
  --dry-run                      print every document and API call; call nothing
  -h, --help                     show this help

Credentials: the Alibaba Cloud default chain (ALIBABA_CLOUD_ACCESS_KEY_ID and
ALIBABA_CLOUD_ACCESS_KEY_SECRET, a profile, RRSA or an instance role). The caller needs
the RAM permissions listed in docs/operator-guide.md (or AliyunRAMFullAccess).

Exit codes: 0 ok, 1 failure, 2 usage error.
`

const PROVISION_OPTIONS = {
  'account-id': { type: 'string' },
  bucket: { type: 'string' },
  prefix: { type: 'string' },
  'ram-user': { type: 'string' },
  actions: { type: 'string' },
  region: { type: 'string' },
  'role-name': { type: 'string' },
  'max-session-duration': { type: 'string' },
  'system-policy': { type: 'boolean' },
  'grant-name': { type: 'string' },
  'grant-prefix': { type: 'string' },
  issuer: { type: 'string', multiple: true },
  endpoint: { type: 'string' },
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
} as const satisfies Options

function provisionRequest (v: ReturnType<typeof parse<typeof PROVISION_OPTIONS>>): ProvisionRequest {
  const bucket = required(v.bucket, 'bucket')
  const prefix = required(v.prefix, 'prefix')
  const ramUser = required(v['ram-user'], 'ram-user')
  const accountId = required(v['account-id'], 'account-id')
  const rawDuration = v['max-session-duration']
  const request: ProvisionRequest = {
    accountId,
    bucket,
    prefix,
    ramUser,
    region: v.region ?? 'cn-hangzhou',
    roleName: v['role-name'] ?? defaultRoleName(bucket, prefix),
    actions: parseActions(v.actions),
    maxSessionDuration: rawDuration === undefined ? 3600 : parseInteger(rawDuration, 'max-session-duration'),
    maxSessionDurationExplicit: rawDuration !== undefined,
    systemPolicy: v['system-policy'] === true,
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
  if (request.systemPolicy) {
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
    'trust policy is refused and left unchanged.\n')
  printHandover(out, request, plan.roleArn)
}

async function runProvision (args: string[], io: CliIo): Promise<number> {
  const v = parse(args, PROVISION_OPTIONS)
  if (v.help === true) {
    io.stdout.write(PROVISION_HELP)
    return EXIT_OK
  }
  const request = provisionRequest(v)
  const endpoint = v.endpoint ?? DEFAULT_RAM_ENDPOINT
  try {
    parseEndpoint(endpoint)
  } catch (err) {
    throw new UsageError(`--endpoint: ${(err as Error).message}`)
  }
  if (v['dry-run'] === true) {
    const reader = emptyAccountReader()
    const plan = await planProvision(request, reader)
    printDryRun(io.stdout, plan, reader.calls)
    return EXIT_OK
  }
  const ram = createRamClient({ endpoint, credential: io.credential ?? createUpstreamCredential() })
  const out = io.stdout
  out.write(`Provisioning oss://${request.bucket}/${request.prefix} (${canonicalActions(request.actions).join(', ')}) for RAM user ${request.ramUser} as role ${request.roleName}\n`)
  const plan = await planProvision(request, ram)
  for (const line of plan.unchanged) out.write(`  = ${line}\n`)
  for (const note of plan.notes) out.write(`  ! ${note}\n`)
  if (plan.changes.length === 0) {
    out.write('Nothing changed: RAM already matches this request.\n')
  } else {
    await applyPlan(plan, ram, (line) => out.write(`  + ${line}\n`))
    out.write(`Applied ${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'}.\n`)
  }
  printHandover(out, request, plan.roleArn)
  return EXIT_OK
}

// ---- policy ----

const POLICY_HELP = `Usage: ${PROGRAM} policy --bucket <bucket> --prefix <dir/> [--actions list,read,write]

Prints the role's OSS permission policy (JSON) alone, exactly as provision creates it,
for operators who apply it with their own tooling (Terraform, ROS, the console).

  --bucket <name>      OSS bucket
  --prefix <dir/>      directory, ends with /
  --actions <list>     comma-separated: list, read, write, delete (default list,read,write)
  -h, --help           show this help
`

const POLICY_OPTIONS = {
  bucket: { type: 'string' },
  prefix: { type: 'string' },
  actions: { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const satisfies Options

async function runPolicy (args: string[], io: CliIo): Promise<number> {
  const v = parse(args, POLICY_OPTIONS)
  if (v.help === true) {
    io.stdout.write(POLICY_HELP)
    return EXIT_OK
  }
  const bucket = required(v.bucket, 'bucket')
  const prefix = required(v.prefix, 'prefix')
  if (!BUCKET.test(bucket)) throw new UsageError(`--bucket "${bucket}" is not a valid OSS bucket name`)
  if (!isSafePrefix(prefix)) throw new UsageError(`--prefix "${prefix}" is not a safe directory (segments of A-Z a-z 0-9 _ . @ -, ending with /)`)
  io.stdout.write(renderPolicy(buildSessionPolicy(bucket, prefix, parseActions(v.actions))) + '\n')
  return EXIT_OK
}

// ---- dispatch ----

export const commands: Record<string, Command> = {
  provision: { summary: 'create the RAM role and policies for one OSS directory and RAM user', help: PROVISION_HELP, run: runProvision },
  policy: { summary: 'print the OSS permission policy (JSON) for a directory', help: POLICY_HELP, run: runPolicy },
  verify: { summary: 'check with real credentials that a caller\'s directory works and nothing outside does', help: VERIFY_HELP, run: async (args, io) => await runVerify(args, { ...io, env: process.env }) },
  sidecar: { summary: 'serve ALIBABA_CLOUD_CREDENTIALS_URI on loopback for a pod, using its service-account token', help: SIDECAR_HELP, run: async (args, io) => await runSidecar(args, io) }
}

function mainHelp (): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length))
  return `Usage: ${PROGRAM} <command> [options]\n\nCommands:\n` +
    Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`).join('\n') +
    `\n\nRun '${PROGRAM} <command> --help' for a command's options.\n`
}

export async function runCli (argv: string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(mainHelp())
    return name === undefined ? EXIT_USAGE : EXIT_OK
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (command === undefined) {
    io.stderr.write(`${PROGRAM}: unknown command "${name}" (commands: ${Object.keys(commands).join(', ')})\n`)
    return EXIT_USAGE
  }
  try {
    return await command.run(args, io)
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${PROGRAM} ${name}: ${err.message} (see '${PROGRAM} ${name} --help')\n`)
      return EXIT_USAGE
    }
    io.stderr.write(`${PROGRAM} ${name}: ${explainError(err)}\n`)
    return EXIT_FAILURE
  }
}

function isEntryPoint (): boolean {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    // npm's bin shims are symlinks; compare real paths.
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isEntryPoint()) {
  runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then((code) => {
    process.exitCode = code
  }, () => {
    process.exitCode = EXIT_FAILURE
  })
}
