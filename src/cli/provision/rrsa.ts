// The service's own role for RRSA (RAM Roles for Service Accounts on ACK): the pod's
// projected service-account token is exchanged through the cluster's OIDC provider for
// this role, and this role may assume the grant roles and nothing else. Two documents:
//
//   trust policy       Federated principal = the cluster's OIDC provider, with oidc:iss,
//                      oidc:aud and oidc:sub (system:serviceaccount:<ns>:<name>) pinned,
//                      so only that one service account of that one cluster gets in
//   permission policy  sts:AssumeRole on the listed grant roles only
//
// Planned and applied like provision (plan.ts): idempotent, never rewrites a trust
// policy, refuses a role that other policies widen.
import type { RamReader } from '../../alicloud/ram-types.js'
import { ACCOUNT_ID, MAX_MAX_SESSION_DURATION, MIN_MAX_SESSION_DURATION, ROLE_ARN, ROLE_NAME, roleArnFor } from './documents.js'
import { planPolicy, planRole, type Change } from './plan.js'

/** The audience ACK's RRSA puts in projected tokens unless told otherwise. */
export const RRSA_DEFAULT_AUDIENCE = 'sts.aliyuncs.com'
const OIDC_PROVIDER_ARN = /^acs:ram::([0-9]{1,32}):oidc-provider\/[A-Za-z0-9._-]{1,128}$/
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/
const AUDIENCE = /^[A-Za-z0-9._:/-]{1,256}$/

export interface RrsaRequest {
  accountId: string
  roleName: string
  oidcProviderArn: string
  oidcIssuerUrl: string
  audience: string
  namespace: string
  serviceAccount: string
  grantRoleArns: string[]
  maxSessionDuration: number
  allowExtraPolicies?: boolean
}

export interface RrsaDocuments {
  roleArn: string
  trustPolicy: object
  permissionPolicy: object
  policyName: string
  description: string
}

export interface RrsaPlan {
  request: RrsaRequest
  documents: RrsaDocuments
  roleArn: string
  unchanged: string[]
  changes: Change[]
  warnings: string[]
}

export function checkRrsaRequest (r: RrsaRequest): string | undefined {
  if (!ACCOUNT_ID.test(r.accountId)) return '--account-id must be the numeric Alibaba Cloud account id'
  if (!ROLE_NAME.test(r.roleName)) return `--role-name "${r.roleName}" is not a valid RAM role name (1-64 of A-Z a-z 0-9 . -)`
  const provider = OIDC_PROVIDER_ARN.exec(r.oidcProviderArn)
  if (provider === null) return `--oidc-provider-arn "${r.oidcProviderArn}" is not an OIDC provider ARN (acs:ram::<account-id>:oidc-provider/<name>)`
  if (provider[1] !== r.accountId) return `--oidc-provider-arn names account ${provider[1] ?? ''}, not --account-id ${r.accountId}`
  let issuer: URL
  try {
    issuer = new URL(r.oidcIssuerUrl)
  } catch {
    return '--oidc-issuer-url is not a URL'
  }
  if (issuer.protocol !== 'https:' || issuer.search !== '' || issuer.hash !== '' || issuer.username !== '') {
    return '--oidc-issuer-url must be the cluster\'s https issuer URL, without query or fragment'
  }
  if (!AUDIENCE.test(r.audience)) return `--audience "${r.audience}" is not a token audience`
  if (!NAMESPACE.test(r.namespace)) return `--namespace "${r.namespace}" is not a Kubernetes namespace name`
  if (!SERVICE_ACCOUNT.test(r.serviceAccount)) return `--service-account "${r.serviceAccount}" is not a Kubernetes service account name`
  if (r.grantRoleArns.length === 0) return '--grant-role-arn is required (repeat it for every grant role)'
  for (const arn of r.grantRoleArns) {
    if (!ROLE_ARN.test(arn)) return `--grant-role-arn "${arn}" is not a RAM role ARN (acs:ram::<account-id>:role/<name>)`
  }
  if (r.grantRoleArns.includes(roleArnFor(r.accountId, r.roleName))) return '--grant-role-arn must not name the service\'s own role'
  if (!Number.isInteger(r.maxSessionDuration) || r.maxSessionDuration < MIN_MAX_SESSION_DURATION || r.maxSessionDuration > MAX_MAX_SESSION_DURATION) {
    return `--max-session-duration must be an integer from ${MIN_MAX_SESSION_DURATION} to ${MAX_MAX_SESSION_DURATION} seconds`
  }
  return undefined
}

export function buildOidcTrustPolicy (r: Pick<RrsaRequest, 'oidcProviderArn' | 'oidcIssuerUrl' | 'audience' | 'namespace' | 'serviceAccount'>): object {
  return {
    Version: '1',
    Statement: [{
      Effect: 'Allow',
      Action: ['sts:AssumeRole'],
      Principal: { Federated: [r.oidcProviderArn] },
      Condition: {
        StringEquals: {
          'oidc:iss': [r.oidcIssuerUrl],
          'oidc:aud': [r.audience],
          'oidc:sub': [`system:serviceaccount:${r.namespace}:${r.serviceAccount}`]
        }
      }
    }]
  }
}

export function buildGrantAssumePolicy (grantRoleArns: string[]): object {
  return { Version: '1', Statement: [{ Effect: 'Allow', Action: ['sts:AssumeRole'], Resource: [...new Set(grantRoleArns)].sort() }] }
}

export function buildRrsaDocuments (r: RrsaRequest): RrsaDocuments {
  return {
    roleArn: roleArnFor(r.accountId, r.roleName),
    trustPolicy: buildOidcTrustPolicy(r),
    permissionPolicy: buildGrantAssumePolicy(r.grantRoleArns),
    // RAM policy names have no `.`.
    policyName: `${r.roleName.replace(/\./g, '-')}-assume-grants`,
    description: `Managed by sts-vending provision-rrsa: service account ${r.namespace}/${r.serviceAccount}`
  }
}

/** Reads RAM and decides, as planProvision does. */
export async function planRrsa (request: RrsaRequest, reader: RamReader): Promise<RrsaPlan> {
  const documents = buildRrsaDocuments(request)
  const { roleName, accountId } = request
  const plan: RrsaPlan = { request, documents, roleArn: documents.roleArn, unchanged: [], changes: [], warnings: [] }
  const { role, attached } = await planRole(reader, plan, {
    roleName,
    accountId,
    trustPolicy: documents.trustPolicy,
    description: documents.description,
    maxSessionDuration: request.maxSessionDuration,
    managedPolicy: documents.policyName,
    reach: 'sts:AssumeRole on the grant roles',
    risk: 'the service runs with more rights than assuming its grant roles',
    allowExtraPolicies: request.allowExtraPolicies === true
  })
  if (role !== undefined) {
    plan.roleArn = role.arn
    plan.unchanged.push(`role ${roleName} exists and trusts only service account ${request.namespace}/${request.serviceAccount}`)
  }
  await planPolicy(reader, documents.policyName, documents.permissionPolicy, 'permission policy', documents.description,
    `sts:AssumeRole on ${request.grantRoleArns.length} grant role${request.grantRoleArns.length === 1 ? '' : 's'} only`, plan)
  if (attached.some((p) => p.policyType === 'Custom' && p.policyName === documents.policyName)) {
    plan.unchanged.push(`policy ${documents.policyName} is attached to role ${roleName}`)
  } else {
    plan.changes.push({ action: 'AttachPolicyToRole', policyType: 'Custom', policyName: documents.policyName, roleName })
  }
  return plan
}
