// A thin wrapper over @alicloud/ram20150501 implementing RamOperations. Each method is
// one RAM call (RPC style, parameters in the query, ACS3-HMAC-SHA256 signed by
// openapi-core). "Not found" answers of reads become undefined; every other failure
// becomes a RamApiError carrying only the action, code, status, request id and a
// trimmed, redacted message (sdk-errors.ts): SDK errors are never passed on.
import RamModule, {
  AttachPolicyToRoleRequest, AttachPolicyToUserRequest, CreatePolicyRequest, CreatePolicyVersionRequest, CreateRoleRequest,
  DeletePolicyVersionRequest, GetPolicyRequest, GetRoleRequest, GetUserRequest, ListPoliciesForRoleRequest,
  ListPoliciesForUserRequest, ListPolicyVersionsRequest, UpdateRoleRequest
} from '@alicloud/ram20150501'
import { sdkConfig } from './sdk-config.js'
import { parseEndpoint as parseSdkEndpoint, type CredentialLike } from './sdk-base.js'
import { readSdkError, str } from './sdk-errors.js'
import { RamApiError, type AttachedPolicy, type PolicyType, type RamOperations, type RamRole } from './ram-types.js'

// CommonJS: under Node's ESM loader the default import is module.exports.
const SdkClient = RamModule.default

export interface RamClientOptions {
  /** http(s)://host[:port], no path. */
  endpoint: string
  credential: CredentialLike
  /** Per call, connect and read. Default 10 s. */
  timeoutMs?: number
}

export function parseEndpoint (endpoint: string): { host: string, protocol: 'http' | 'https' } {
  return parseSdkEndpoint(endpoint, 'the RAM endpoint')
}

/** Maps whatever the SDK threw to a RamApiError (safe fields only, see sdk-errors.ts). */
export function toRamApiError (action: string, err: unknown): RamApiError {
  if (err instanceof RamApiError) return err
  const f = readSdkError(err)
  switch (f.kind) {
    case 'answer': return new RamApiError(action, f.code, f.message ?? '', f.status, f.requestId)
    case 'credential': return new RamApiError(action, 'CredentialUnavailable', 'credential lookup failed')
    case 'timeout': return new RamApiError(action, 'TIMEOUT', 'the call timed out')
    case 'network': return new RamApiError(action, f.code, f.code)
    case 'not-json': return new RamApiError(action, 'InvalidJSON', 'RAM answered with something that is not JSON')
    case 'unknown': return new RamApiError(action, 'Unknown', 'unknown failure')
  }
}

function bad (action: string, what: string): RamApiError {
  return new RamApiError(action, 'BadResponse', `the answer lacks ${what}`, 200)
}

function toRole (action: string, r: { roleName?: string, arn?: string, assumeRolePolicyDocument?: string, maxSessionDuration?: number } | undefined): RamRole {
  const roleName = str(r?.roleName)
  const arn = str(r?.arn)
  if (roleName === undefined || arn === undefined) throw bad(action, 'Role.RoleName or Role.Arn')
  return {
    roleName,
    arn,
    assumeRolePolicyDocument: r?.assumeRolePolicyDocument ?? '',
    maxSessionDuration: typeof r?.maxSessionDuration === 'number' ? r.maxSessionDuration : 3600
  }
}

function toAttached (list: Array<{ policyName?: string, policyType?: string }> | undefined): AttachedPolicy[] {
  return (list ?? []).flatMap((p) => {
    const policyName = str(p.policyName)
    const policyType = str(p.policyType)
    return policyName === undefined || policyType === undefined ? [] : [{ policyName, policyType }]
  })
}

export function createRamClient (opts: RamClientOptions): RamOperations {
  const sdk = new SdkClient(sdkConfig({ endpoint: opts.endpoint, what: 'the RAM endpoint', timeoutMs: opts.timeoutMs ?? 10_000, credential: opts.credential, userAgent: 'sts-vending-provision' }))

  async function call<T> (action: string, fn: () => Promise<T>, notFound?: string): Promise<T | undefined> {
    try {
      return await fn()
    } catch (err) {
      const e = toRamApiError(action, err)
      if (notFound !== undefined && e.code === notFound) return undefined
      throw e
    }
  }
  async function must<T> (action: string, fn: () => Promise<T>): Promise<T> {
    return (await call(action, fn)) as T
  }

  return {
    async userExists (userName) {
      const res = await call('GetUser', async () => await sdk.getUser(new GetUserRequest({ userName })), 'EntityNotExist.User')
      return res !== undefined
    },
    async getRole (roleName) {
      const res = await call('GetRole', async () => await sdk.getRole(new GetRoleRequest({ roleName })), 'EntityNotExist.Role')
      return res === undefined ? undefined : toRole('GetRole', res.body?.role)
    },
    async getPolicy (policyName, policyType) {
      const res = await call('GetPolicy', async () => await sdk.getPolicy(new GetPolicyRequest({ policyName, policyType })), 'EntityNotExist.Policy')
      if (res === undefined) return undefined
      const p = res.body?.policy
      const v = res.body?.defaultPolicyVersion
      const name = str(p?.policyName)
      const defaultVersion = str(p?.defaultVersion) ?? str(v?.versionId)
      const document = str(v?.policyDocument) ?? str(p?.policyDocument)
      if (name === undefined || defaultVersion === undefined || document === undefined) throw bad('GetPolicy', 'the policy name, default version or document')
      return { policyName: name, policyType: p?.policyType === 'System' ? 'System' : 'Custom', defaultVersion, document }
    },
    async listPolicyVersions (policyName) {
      const res = await must('ListPolicyVersions', async () => await sdk.listPolicyVersions(new ListPolicyVersionsRequest({ policyName, policyType: 'Custom' })))
      return (res.body?.policyVersions?.policyVersion ?? []).flatMap((v) => {
        const versionId = str(v.versionId)
        return versionId === undefined ? [] : [{ versionId, isDefaultVersion: v.isDefaultVersion === true, createDate: v.createDate ?? '' }]
      })
    },
    async listPoliciesForRole (roleName) {
      const res = await must('ListPoliciesForRole', async () => await sdk.listPoliciesForRole(new ListPoliciesForRoleRequest({ roleName })))
      return toAttached(res.body?.policies?.policy)
    },
    async listPoliciesForUser (userName) {
      const res = await must('ListPoliciesForUser', async () => await sdk.listPoliciesForUser(new ListPoliciesForUserRequest({ userName })))
      return toAttached(res.body?.policies?.policy)
    },
    async createRole (input) {
      const res = await must('CreateRole', async () => await sdk.createRole(new CreateRoleRequest({
        roleName: input.roleName,
        assumeRolePolicyDocument: input.document,
        description: input.description,
        maxSessionDuration: input.maxSessionDuration
      })))
      return toRole('CreateRole', res.body?.role)
    },
    async updateRoleMaxSessionDuration (roleName, maxSessionDuration) {
      await must('UpdateRole', async () => await sdk.updateRole(new UpdateRoleRequest({ roleName, newMaxSessionDuration: maxSessionDuration })))
    },
    async createPolicy (input) {
      await must('CreatePolicy', async () => await sdk.createPolicy(new CreatePolicyRequest({
        policyName: input.policyName,
        policyDocument: input.document,
        description: input.description
      })))
    },
    async createPolicyVersion (policyName, document) {
      const res = await must('CreatePolicyVersion', async () => await sdk.createPolicyVersion(new CreatePolicyVersionRequest({
        policyName,
        policyDocument: document,
        setAsDefault: true
      })))
      const id = str(res.body?.policyVersion?.versionId)
      if (id === undefined) throw bad('CreatePolicyVersion', 'PolicyVersion.VersionId')
      return id
    },
    async deletePolicyVersion (policyName, versionId) {
      await must('DeletePolicyVersion', async () => await sdk.deletePolicyVersion(new DeletePolicyVersionRequest({ policyName, versionId })))
    },
    async attachPolicyToRole (policyType: PolicyType, policyName, roleName) {
      await must('AttachPolicyToRole', async () => await sdk.attachPolicyToRole(new AttachPolicyToRoleRequest({ policyType, policyName, roleName })))
    },
    async attachPolicyToUser (policyType: PolicyType, policyName, userName) {
      await must('AttachPolicyToUser', async () => await sdk.attachPolicyToUser(new AttachPolicyToUserRequest({ policyType, policyName, userName })))
    }
  }
}
