// `sts-vending provision-rrsa`: the service's own RAM role for RRSA on ACK (trusting one
// service account through the cluster's OIDC provider, allowed to assume the grant
// roles only), planned and applied like provision. The RAM SDK is loaded for a real run
// only; a dry run reads nothing, so everything it needs comes from the flags.
import { DEFAULT_RAM_ENDPOINT } from '../../alicloud/ram-types.js'
import {
  PROGRAM, UsageError, defineCommand, parseInteger, required, type Options, type Values, type Writable
} from '../args.js'
import { renderPolicy } from '../provision/documents.js'
import { changeCall, emptyAccountReader, formatCall } from '../provision/plan.js'
import { checkRamEndpoint, runOnRam } from '../provision/run.js'
import { RRSA_DEFAULT_AUDIENCE, checkRrsaRequest, planRrsa, type RrsaPlan, type RrsaRequest } from '../provision/rrsa.js'

const help = `Usage: ${PROGRAM} provision-rrsa --account-id <id> --oidc-provider-arn <arn> --oidc-issuer-url <url> --namespace <ns> --service-account <name> --grant-role-arn <arn>... [options]

Creates (or checks) in RAM the role the service itself runs as with RRSA on ACK:
  - trust policy: only the service account <ns>/<name> of this cluster, through its OIDC
    provider (oidc:iss, oidc:aud and oidc:sub pinned),
  - a custom policy allowing sts:AssumeRole on the given grant roles only, attached to it,
then prints the role ARN and the chart values. Idempotent: a second run changes nothing.
Create the grant roles with 'provision --trust-role-arn <this role's ARN>'.

Required:
  --account-id <digits>          the Alibaba Cloud account id
  --oidc-provider-arn <arn>      the cluster's OIDC provider, acs:ram::<id>:oidc-provider/ack-rrsa-<cluster-id>
  --oidc-issuer-url <url>        the cluster's OIDC issuer URL (ACK console > cluster > Security > RRSA)
  --namespace <ns>               the service's namespace
  --service-account <name>       the service's service account
  --grant-role-arn <arn>         a grant role the service may assume (repeat for each)

Options:
  --role-name <name>             default sts-vending
  --audience <aud>               the token audience (default ${RRSA_DEFAULT_AUDIENCE})
  --max-session-duration <s>     the role's MaxSessionDuration for a new role, 3600-43200 (default 3600)
  --allow-extra-policies         go on (with a warning) when the existing role has other policies attached
  --endpoint <url>               RAM endpoint (default ${DEFAULT_RAM_ENDPOINT})
  --dry-run                      print both documents and every API call; read and call nothing
  -h, --help                     show this help

Credentials and permissions as for provision. A real run needs the optional package
@alicloud/ram20150501; a dry run does not.

Exit codes: 0 ok, 1 failure, 2 usage error or missing optional package.
`

const options = {
  'account-id': { type: 'string' },
  'oidc-provider-arn': { type: 'string' },
  'oidc-issuer-url': { type: 'string' },
  namespace: { type: 'string' },
  'service-account': { type: 'string' },
  'grant-role-arn': { type: 'string', multiple: true },
  'role-name': { type: 'string' },
  audience: { type: 'string' },
  'max-session-duration': { type: 'string' },
  'allow-extra-policies': { type: 'boolean' },
  endpoint: { type: 'string' },
  'dry-run': { type: 'boolean' }
} as const satisfies Options

function rrsaRequest (v: Values<typeof options>): RrsaRequest {
  const request: RrsaRequest = {
    accountId: required(v['account-id'], 'account-id'),
    oidcProviderArn: required(v['oidc-provider-arn'], 'oidc-provider-arn'),
    oidcIssuerUrl: required(v['oidc-issuer-url'], 'oidc-issuer-url'),
    namespace: required(v.namespace, 'namespace'),
    serviceAccount: required(v['service-account'], 'service-account'),
    grantRoleArns: v['grant-role-arn'] ?? [],
    roleName: v['role-name'] ?? 'sts-vending',
    audience: v.audience ?? RRSA_DEFAULT_AUDIENCE,
    maxSessionDuration: v['max-session-duration'] === undefined ? 3600 : parseInteger(v['max-session-duration'], 'max-session-duration'),
    allowExtraPolicies: v['allow-extra-policies'] === true
  }
  const problem = checkRrsaRequest(request)
  if (problem !== undefined) throw new UsageError(problem)
  return request
}

function printHandover (out: Writable, plan: RrsaPlan): void {
  const r = plan.request
  out.write(`\nService role ARN: ${plan.roleArn}\n`)
  out.write('\n# Chart values (helm/sts-vending) for the service:\n')
  out.write([
    'rrsa:',
    '  enabled: true',
    '  mode: manual',
    `  roleName: ${r.roleName}`,
    `  roleArn: ${plan.roleArn}`,
    `  oidcProviderArn: ${r.oidcProviderArn}`,
    'serviceAccount:',
    `  name: ${r.serviceAccount}   # in namespace ${r.namespace}`,
    ''
  ].join('\n'))
}

export const command = defineCommand({
  help,
  options,
  async run (v, io) {
    const request = rrsaRequest(v)
    const endpoint = v.endpoint ?? DEFAULT_RAM_ENDPOINT
    await checkRamEndpoint(endpoint)
    const out = io.stdout
    if (v['dry-run'] === true) {
      const reader = emptyAccountReader()
      const plan = await planRrsa(request, reader)
      out.write('Dry run: nothing is read from or changed in RAM.\n\n')
      out.write(`Trust policy of role ${request.roleName}:\n${renderPolicy(plan.documents.trustPolicy)}\n\n`)
      out.write(`Permission policy ${plan.documents.policyName} (attached to the role):\n${renderPolicy(plan.documents.permissionPolicy)}\n\n`)
      out.write('API calls a first run makes, in order (for an account where none of this exists yet):\n')
      for (const call of reader.calls) out.write(`  ${formatCall(call)}\n`)
      for (const change of plan.changes) out.write(`  ${formatCall(changeCall(change))}\n`)
      printHandover(out, plan)
      return 0
    }
    return await runOnRam(io, endpoint, {
      heading: `Provisioning role ${request.roleName} for service account ${request.namespace}/${request.serviceAccount} (RRSA)`,
      plan: async (ram) => await planRrsa(request, ram),
      handover: (plan) => { printHandover(out, plan) }
    })
  }
})
