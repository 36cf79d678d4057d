// Plan, then apply. planProvision() only reads RAM and returns the list of changes that
// would make RAM match the request; applyPlan() makes exactly those calls, in order.
// Nothing existing is ever replaced silently: a role whose trust policy differs is a
// refusal (with what differs), a permission policy that differs gets a new default
// version (the old ones stay in RAM's history, at most 5, oldest non-default dropped).
// A dry run plans against an empty account without any I/O, so it prints every call a
// first run makes.
import { canonicalActions } from '../../policy/build.js'
import {
  RamApiError, type AttachedPolicy, type PolicyType, type RamReader, type RamRole, type RamWriter
} from '../../alicloud/ram-types.js'
import {
  SYSTEM_ASSUME_POLICY, accountOfArn, buildAssumePolicy, trusteeText, buildDocuments, describeTrustDifference, renderPolicy,
  samePolicy, type ProvisionDocuments, type ProvisionRequest
} from './documents.js'

export const MAX_POLICY_VERSIONS = 5

/** Which document a call carries, so a printed plan can point at it instead of repeating it. */
export type DocumentName = 'trust policy' | 'permission policy' | 'user policy'

export type Change =
  | { action: 'CreateRole', roleName: string, document: string, description: string, maxSessionDuration: number }
  | { action: 'UpdateRole', roleName: string, maxSessionDuration: number, from: number }
  | { action: 'CreatePolicy', policyName: string, document: string, description: string, documentName: DocumentName, summary: string }
  | { action: 'DeletePolicyVersion', policyName: string, versionId: string }
  | { action: 'CreatePolicyVersion', policyName: string, document: string, documentName: DocumentName, summary: string }
  | { action: 'AttachPolicyToRole', policyType: PolicyType, policyName: string, roleName: string }
  | { action: 'AttachPolicyToUser', policyType: PolicyType, policyName: string, userName: string }

export interface ReadCall { action: string, params: Record<string, string> }

export interface Plan {
  request: ProvisionRequest
  documents: ProvisionDocuments
  /** The role ARN: RAM's when the role exists, the predicted one otherwise. */
  roleArn: string
  /** What already matches, one line each. */
  unchanged: string[]
  changes: Change[]
  /** Things the operator should know that are not changes (e.g. a broader policy already attached). */
  notes: string[]
  /** What the operator chose to accept although it widens the role (--allow-extra-policies). */
  warnings: string[]
}

/** A refusal or a failure the operator can act on. The message is one line and safe to print. */
export class ProvisionError extends Error {
  override name = 'ProvisionError'
  /** Set by applyPlan: how many changes were made before this failure. */
  appliedBefore = 0
}

function actionsText (r: ProvisionRequest): string {
  return canonicalActions(r.actions).join(', ')
}

/** What any plan has: enough to apply it and to report what it found. */
export type Changes = Pick<Plan, 'roleArn' | 'unchanged' | 'changes'>

export async function planPolicy (
  reader: RamReader, policyName: string, wanted: object, documentName: DocumentName, description: string,
  summary: string, plan: Changes
): Promise<void> {
  const existing = await reader.getPolicy(policyName, 'Custom')
  if (existing === undefined) {
    plan.changes.push({ action: 'CreatePolicy', policyName, document: renderPolicy(wanted), description, documentName, summary })
    return
  }
  if (samePolicy(existing.document, wanted)) {
    plan.unchanged.push(`policy ${policyName} is up to date (${existing.defaultVersion}: ${summary})`)
    return
  }
  const versions = await reader.listPolicyVersions(policyName)
  if (versions.length >= MAX_POLICY_VERSIONS) {
    const oldest = versions
      .filter((v) => !v.isDefaultVersion)
      .sort((a, b) => versionNumber(a.versionId) - versionNumber(b.versionId))[0]
    if (oldest === undefined) throw new ProvisionError(`policy ${policyName} has ${versions.length} versions and none can be deleted; delete one in the RAM console`)
    plan.changes.push({ action: 'DeletePolicyVersion', policyName, versionId: oldest.versionId })
  }
  plan.changes.push({ action: 'CreatePolicyVersion', policyName, document: renderPolicy(wanted), documentName, summary })
}

function versionNumber (id: string): number {
  const n = Number(/^v(\d+)$/.exec(id)?.[1])
  return Number.isFinite(n) ? n : Number.MAX_SAFE_INTEGER
}

function hasPolicy (list: AttachedPolicy[], type: PolicyType, name: string): boolean {
  return list.some((p) => p.policyType === type && p.policyName === name)
}

export interface RoleSpec {
  roleName: string
  accountId: string
  trustPolicy: object
  description: string
  maxSessionDuration: number
  /** The one policy this command manages on the role. */
  managedPolicy: string
  /** What the managed policy reaches, for the refusal's words. */
  reach: string
  /** What an extra policy would mean, for the refusal's words. */
  risk: string
  allowExtraPolicies: boolean
}

/**
 * The role a plan creates or adopts. Absent: a CreateRole change. Present: adopted only
 * when it is in the account, trusts exactly what it should and carries no policy beyond
 * the managed one (or, with allowExtraPolicies, with a warning); anything else is a
 * ProvisionError and the role is left as it is.
 */
export async function planRole (reader: RamReader, plan: { changes: Change[], warnings: string[] }, spec: RoleSpec): Promise<{ role: RamRole | undefined, attached: AttachedPolicy[] }> {
  const role = await reader.getRole(spec.roleName)
  if (role === undefined) {
    plan.changes.push({
      action: 'CreateRole',
      roleName: spec.roleName,
      document: renderPolicy(spec.trustPolicy),
      description: spec.description,
      maxSessionDuration: spec.maxSessionDuration
    })
    return { role, attached: [] }
  }
  const roleAccount = accountOfArn(role.arn)
  if (roleAccount !== spec.accountId) {
    throw new ProvisionError(`role ${spec.roleName} belongs to account ${roleAccount ?? '(unknown)'}, not --account-id ${spec.accountId}: check --account-id`)
  }
  if (!samePolicy(role.assumeRolePolicyDocument, spec.trustPolicy)) {
    throw new ProvisionError(`role ${spec.roleName} already exists with a different trust policy: ${describeTrustDifference(role.assumeRolePolicyDocument, spec.trustPolicy)}. ` +
      'It was left unchanged; fix its trust policy in the RAM console or choose another --role-name')
  }
  const attached = await reader.listPoliciesForRole(spec.roleName)
  const warning = checkExtraPolicies(spec.roleName, attached, spec.managedPolicy, spec.reach, spec.risk, spec.allowExtraPolicies)
  if (warning !== undefined) plan.warnings.push(warning)
  return { role, attached }
}

/**
 * Anything attached to a role besides the one policy provisioning manages widens it.
 * Throws the refusal naming them, or returns the warning when the operator accepted it.
 */
export function checkExtraPolicies (
  roleName: string, attached: AttachedPolicy[], managed: string, scope: string, consequence: string, allow: boolean
): string | undefined {
  const extra = attached.filter((p) => !(p.policyType === 'Custom' && p.policyName === managed))
  if (extra.length === 0) return undefined
  const what = `role ${roleName} has ${extra.length === 1 ? 'another policy' : 'other policies'} attached besides ${managed}: ` +
    `${extra.map((p) => `${p.policyName} (${p.policyType})`).join(', ')}, so it reaches beyond ${scope}`
  if (!allow) {
    throw new ProvisionError(`${what}. It was left unchanged; detach ${extra.length === 1 ? 'it' : 'them'} in the RAM console ` +
      `(Identities > Roles > ${roleName} > Permissions), choose another --role-name, or accept this with --allow-extra-policies`)
  }
  return `${what}; ${consequence} (accepted with --allow-extra-policies)`
}

/** Reads RAM and decides. Throws ProvisionError for a refusal, RamApiError for a failed read. */
export async function planProvision (request: ProvisionRequest, reader: RamReader): Promise<Plan> {
  const documents = buildDocuments(request)
  const { roleName, ramUser: userName, trustRoleArn, accountId } = request
  const names = documents.policyNames
  const plan: Plan = { request, documents, roleArn: documents.roleArn, unchanged: [], changes: [], notes: [], warnings: [] }

  if (userName !== undefined) {
    if (!(await reader.userExists(userName))) {
      throw new ProvisionError(`RAM user "${userName}" does not exist in this account: create it first (RAM console > Identities > Users, with OpenAPI access) or check --ram-user`)
    }
    plan.unchanged.push(`RAM user ${userName} exists`)
  } else if (trustRoleArn !== undefined) {
    const trusted = await reader.getRole(trustRoleArn.slice(trustRoleArn.indexOf(':role/') + ':role/'.length))
    if (trusted === undefined || trusted.arn !== trustRoleArn) {
      throw new ProvisionError(`role ${trustRoleArn} does not exist in this account: create the service's role first (sts-vending provision-rrsa) or check --trust-role-arn`)
    }
    plan.unchanged.push(`role ${trustRoleArn} exists`)
  }

  // Whatever else is attached widens the role beyond the directory: the service's
  // session policy would be its only limit, and whoever assumes it without one (the
  // RAM user itself) gets all of it. Adopting such a role is a refusal by default.
  const { role, attached: rolePolicies } = await planRole(reader, plan, {
    roleName,
    accountId,
    trustPolicy: documents.trustPolicy,
    description: documents.description,
    maxSessionDuration: request.maxSessionDuration,
    managedPolicy: names.rolePolicy,
    reach: `oss://${request.bucket}/${request.prefix}`,
    risk: 'the service\'s session policy is the only limit on what its credentials reach',
    allowExtraPolicies: request.allowExtraPolicies === true
  })
  if (role !== undefined) {
    plan.roleArn = role.arn
    // The user's policy names the role by the ARN RAM reports.
    documents.userPolicy = buildAssumePolicy(role.arn)
    if (request.maxSessionDurationExplicit && role.maxSessionDuration !== request.maxSessionDuration) {
      plan.changes.push({ action: 'UpdateRole', roleName, maxSessionDuration: request.maxSessionDuration, from: role.maxSessionDuration })
    } else {
      plan.unchanged.push(`role ${roleName} exists and trusts only ${trusteeText(request)}`)
    }
  }

  await planPolicy(reader, names.rolePolicy, documents.rolePolicy, 'permission policy', documents.description,
    `${actionsText(request)} on oss://${request.bucket}/${request.prefix}`, plan)

  if (hasPolicy(rolePolicies, 'Custom', names.rolePolicy)) {
    plan.unchanged.push(`policy ${names.rolePolicy} is attached to role ${roleName}`)
  } else {
    plan.changes.push({ action: 'AttachPolicyToRole', policyType: 'Custom', policyName: names.rolePolicy, roleName })
  }

  if (userName === undefined) {
    // The trusted role's own right to assume this one is provision-rrsa's business
    // (a policy on the service's role naming every grant role).
    plan.notes.push(`${trustRoleArn ?? ''} needs sts:AssumeRole on ${plan.roleArn}: give it with sts-vending provision-rrsa --grant-role-arn ${plan.roleArn}`)
    return plan
  }
  if (!request.systemPolicy) {
    await planPolicy(reader, names.userPolicy, documents.userPolicy, 'user policy', documents.description,
      `sts:AssumeRole on ${plan.roleArn} only`, plan)
  }
  const userPolicies = await reader.listPoliciesForUser(userName)
  const [type, name]: [PolicyType, string] = request.systemPolicy ? ['System', SYSTEM_ASSUME_POLICY] : ['Custom', names.userPolicy]
  if (hasPolicy(userPolicies, type, name)) {
    plan.unchanged.push(`policy ${name} is attached to user ${userName}`)
  } else {
    plan.changes.push({ action: 'AttachPolicyToUser', policyType: type, policyName: name, userName })
  }
  if (!request.systemPolicy && hasPolicy(userPolicies, 'System', SYSTEM_ASSUME_POLICY)) {
    plan.notes.push(`user ${userName} also has ${SYSTEM_ASSUME_POLICY}, which lets it assume any role that trusts it; detach it if ${name} should be its only STS right`)
  }
  return plan
}

/** Applies the plan's changes in order; returns (and reports as it goes) one line per change made. */
export async function applyPlan (plan: Changes, writer: RamWriter, onApplied?: (line: string) => void): Promise<string[]> {
  const done: string[] = []
  for (const change of plan.changes) {
    try {
      await applyChange(plan, change, writer)
    } catch (err) {
      if (err instanceof RamApiError || err instanceof ProvisionError) err.appliedBefore = done.length
      throw err
    }
    const line = describeChange(change)
    done.push(line)
    onApplied?.(line)
  }
  return done
}

async function applyChange (plan: Changes, c: Change, w: RamWriter): Promise<void> {
  switch (c.action) {
    case 'CreateRole': {
      const role = await w.createRole({ roleName: c.roleName, document: c.document, description: c.description, maxSessionDuration: c.maxSessionDuration })
      // The user policy was written for the predicted ARN; refuse to go on if RAM disagrees.
      if (role.arn !== plan.roleArn) {
        throw new ProvisionError(`RAM created role ${c.roleName} as ${role.arn}, not ${plan.roleArn}: check --account-id, then delete the role in the RAM console and run again`)
      }
      return
    }
    case 'UpdateRole': return await w.updateRoleMaxSessionDuration(c.roleName, c.maxSessionDuration)
    case 'CreatePolicy': return await w.createPolicy({ policyName: c.policyName, document: c.document, description: c.description })
    case 'DeletePolicyVersion': return await w.deletePolicyVersion(c.policyName, c.versionId)
    case 'CreatePolicyVersion': {
      await w.createPolicyVersion(c.policyName, c.document)
      return
    }
    case 'AttachPolicyToRole': return await w.attachPolicyToRole(c.policyType, c.policyName, c.roleName)
    case 'AttachPolicyToUser': return await w.attachPolicyToUser(c.policyType, c.policyName, c.userName)
  }
}

/** One line, for the run's log. */
export function describeChange (c: Change): string {
  switch (c.action) {
    case 'CreateRole': return `created role ${c.roleName} (MaxSessionDuration ${c.maxSessionDuration})`
    case 'UpdateRole': return `changed role ${c.roleName} MaxSessionDuration ${c.from} -> ${c.maxSessionDuration}`
    case 'CreatePolicy': return `created policy ${c.policyName}: ${c.summary}`
    case 'DeletePolicyVersion': return `deleted version ${c.versionId} of policy ${c.policyName} (RAM keeps at most ${MAX_POLICY_VERSIONS})`
    case 'CreatePolicyVersion': return `set a new default version of policy ${c.policyName}: ${c.summary}`
    case 'AttachPolicyToRole': return `attached ${c.policyType} policy ${c.policyName} to role ${c.roleName}`
    case 'AttachPolicyToUser': return `attached ${c.policyType} policy ${c.policyName} to user ${c.userName}`
  }
}

/** The API call a change makes, documents named rather than repeated. */
export function changeCall (c: Change): ReadCall {
  switch (c.action) {
    case 'CreateRole': return { action: c.action, params: { RoleName: c.roleName, AssumeRolePolicyDocument: '<trust policy>', Description: c.description, MaxSessionDuration: String(c.maxSessionDuration) } }
    case 'UpdateRole': return { action: c.action, params: { RoleName: c.roleName, NewMaxSessionDuration: String(c.maxSessionDuration) } }
    case 'CreatePolicy': return { action: c.action, params: { PolicyName: c.policyName, PolicyDocument: `<${c.documentName}>`, Description: c.description } }
    case 'DeletePolicyVersion': return { action: c.action, params: { PolicyName: c.policyName, VersionId: c.versionId } }
    case 'CreatePolicyVersion': return { action: c.action, params: { PolicyName: c.policyName, PolicyDocument: `<${c.documentName}>`, SetAsDefault: 'true' } }
    case 'AttachPolicyToRole': return { action: c.action, params: { PolicyType: c.policyType, PolicyName: c.policyName, RoleName: c.roleName } }
    case 'AttachPolicyToUser': return { action: c.action, params: { PolicyType: c.policyType, PolicyName: c.policyName, UserName: c.userName } }
  }
}

export function formatCall (call: ReadCall): string {
  return [call.action, ...Object.entries(call.params).map(([k, v]) => `${k}=${/[\s"]/.test(v) ? JSON.stringify(v) : v}`)].join(' ')
}

/**
 * A reader over an account where the user (and the given roles) exist and nothing else does, recording the
 * reads it is asked for. Planning against it is the dry run: no I/O at all.
 */
export function emptyAccountReader (existingRoleArns: string[] = []): RamReader & { calls: ReadCall[] } {
  const calls: ReadCall[] = []
  return {
    calls,
    async userExists (UserName) { calls.push({ action: 'GetUser', params: { UserName } }); return true },
    async getRole (RoleName) {
      calls.push({ action: 'GetRole', params: { RoleName } })
      const arn = existingRoleArns.find((a) => a.endsWith(`:role/${RoleName}`))
      return arn === undefined ? undefined : { roleName: RoleName, arn, assumeRolePolicyDocument: '', maxSessionDuration: 3600 }
    },
    async getPolicy (PolicyName, PolicyType) { calls.push({ action: 'GetPolicy', params: { PolicyName, PolicyType } }); return undefined },
    async listPolicyVersions (PolicyName) { calls.push({ action: 'ListPolicyVersions', params: { PolicyName, PolicyType: 'Custom' } }); return [] },
    async listPoliciesForRole (RoleName) { calls.push({ action: 'ListPoliciesForRole', params: { RoleName } }); return [] },
    async listPoliciesForUser (UserName) { calls.push({ action: 'ListPoliciesForUser', params: { UserName } }); return [] }
  }
}

/** One line for the operator: what failed, and what to do about it. Never includes a secret. */
export function explainError (err: unknown): string {
  const partial = (err instanceof RamApiError || err instanceof ProvisionError) && err.appliedBefore > 0
    ? ` (after ${err.appliedBefore} change${err.appliedBefore === 1 ? ' was' : 's were'} applied; run again to continue)`
    : ''
  return explain(err) + partial
}

function explain (err: unknown): string {
  if (err instanceof ProvisionError) return err.message
  if (err instanceof RamApiError) {
    if (err.code === 'NoPermission' || err.code.startsWith('NoPermission.')) {
      return `RAM refused ${err.action} (NoPermission): the credential running this command needs the RAM permission ram:${err.action} ` +
        '(AliyunRAMFullAccess, or a custom policy with the ram:* actions listed in docs/operator-guide.md)' + requestIdText(err)
    }
    if (err.code === 'CredentialUnavailable') {
      return 'no Alibaba Cloud credentials found: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or configure a profile or instance role for the default credential chain'
    }
    if (err.status === undefined) return `cannot reach RAM for ${err.action}: ${err.message}`
    return `RAM ${err.action} failed: ${err.code}${err.message === '' ? '' : ` - ${err.message}`}${requestIdText(err)}`
  }
  // RAM's answers arrive as RamApiError, sanitised by the client; anything else is a fault
  // of this program, whose first line (bounded) is what helps.
  const text = err instanceof Error ? (err.message.split('\n')[0] ?? '').slice(0, 160) : ''
  return `unexpected failure: ${text === '' ? 'unknown error' : text}`
}

function requestIdText (err: RamApiError): string {
  return err.requestId === undefined ? '' : ` (request ${err.requestId})`
}
