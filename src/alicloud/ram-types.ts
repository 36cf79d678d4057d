// What the RAM client offers the CLI's provisioning: the calls it makes, the shapes it
// returns, and the one error it throws. Pure types (and one error class) so that a planner
// and a dry run can be written against them without loading the RAM SDK.

export const DEFAULT_RAM_ENDPOINT = 'https://ram.aliyuncs.com'

export type PolicyType = 'Custom' | 'System'

export interface RamRole {
  roleName: string
  arn: string
  assumeRolePolicyDocument: string
  maxSessionDuration: number
}

export interface RamPolicy {
  policyName: string
  policyType: PolicyType
  defaultVersion: string
  /** The default version's document. */
  document: string
}

export interface RamPolicyVersion {
  versionId: string
  isDefaultVersion: boolean
  createDate: string
}

export interface AttachedPolicy {
  policyName: string
  policyType: string
}

/** RAM reads. "Not found" is undefined; every other failure throws. */
export interface RamReader {
  userExists: (userName: string) => Promise<boolean>
  getRole: (roleName: string) => Promise<RamRole | undefined>
  getPolicy: (policyName: string, policyType: PolicyType) => Promise<RamPolicy | undefined>
  listPolicyVersions: (policyName: string) => Promise<RamPolicyVersion[]>
  listPoliciesForRole: (roleName: string) => Promise<AttachedPolicy[]>
  listPoliciesForUser: (userName: string) => Promise<AttachedPolicy[]>
}

export interface RamWriter {
  createRole: (input: { roleName: string, document: string, description: string, maxSessionDuration: number }) => Promise<RamRole>
  updateRoleMaxSessionDuration: (roleName: string, maxSessionDuration: number) => Promise<void>
  createPolicy: (input: { policyName: string, document: string, description: string }) => Promise<void>
  createPolicyVersion: (policyName: string, document: string) => Promise<string>
  deletePolicyVersion: (policyName: string, versionId: string) => Promise<void>
  attachPolicyToRole: (policyType: PolicyType, policyName: string, roleName: string) => Promise<void>
  attachPolicyToUser: (policyType: PolicyType, policyName: string, userName: string) => Promise<void>
}

export type RamOperations = RamReader & RamWriter

/** A RAM call that failed. Carries only safe fields. */
export class RamApiError extends Error {
  override name = 'RamApiError'
  /** Set by applyPlan: how many changes were made before this failure. */
  appliedBefore = 0
  constructor (
    readonly action: string,
    readonly code: string,
    message: string,
    readonly status?: number,
    readonly requestId?: string
  ) {
    super(message)
  }
}
