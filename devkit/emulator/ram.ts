// A strict local stand-in for the RAM operations `sts-vending provision` calls, for tests.
// Like the STS emulator it verifies ACS3-HMAC-SHA256 (acs3.ts) and answers with RAM's
// JSON error shape, so the real @alicloud/ram20150501 SDK runs against it unchanged.
// It refuses what RAM refuses: bad names (role 1-64 of [A-Za-z0-9.-], policy 1-128 of
// [A-Za-z0-9-], user 1-64 of [A-Za-z0-9._-]), a custom policy over 6144 characters or
// outside RAM's grammar (policy-grammar.ts), a trust policy over 2048 characters or
// without a well-formed Principal, more than 5 versions of a policy, deleting the default
// version, and names that exist (EntityAlreadyExists.*) or do not (EntityNotExist.*).
// The SDK sends every parameter in the query (RPC style, POST, empty body); a form body
// is accepted too. Faults (NoPermission, any code, 5xx) are injected per action.
// Listens on 127.0.0.1 only.
import { listenLoopback, readBody } from './http.js'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { randomInt, randomUUID } from 'node:crypto'
import { NonceStore, parseQuery, verifyAcs3 } from './acs3.js'
import { checkPolicy } from './policy-grammar.js'

export const RAM_VERSION = '2015-05-01'
export const MAX_CUSTOM_POLICY_CHARS = 6144
export const MAX_TRUST_POLICY_CHARS = 2048
export const MAX_POLICY_VERSIONS = 5
const MAX_DESCRIPTION = 1024
const MAX_BODY_BYTES = 64 * 1024
const HOST_ID = 'ram.aliyuncs.com'

const ROLE_NAME = /^[A-Za-z0-9.-]+$/
const POLICY_NAME = /^[A-Za-z0-9-]+$/
const USER_NAME = /^[A-Za-z0-9._-]+$/
const VERSION_ID = /^v[1-9][0-9]{0,8}$/
const INTEGER = /^\d{1,9}$/
const RAM_PRINCIPAL = /^(?:\d{1,32}|acs:ram::\d{1,32}:(?:root|user\/[A-Za-z0-9._-]{1,64}|role\/[A-Za-z0-9.-]{1,64}))$/
const SERVICE_PRINCIPAL = /^[a-z0-9.-]+\.aliyuncs\.com$/
const TRUST_ACTIONS = new Set(['sts:assumerole', 'sts:assumerolewithsaml', 'sts:assumerolewithoidc'])

export const MUTATING_ACTIONS: ReadonlySet<string> = new Set([
  'CreateRole', 'UpdateRole', 'CreatePolicy', 'CreatePolicyVersion', 'DeletePolicyVersion', 'AttachPolicyToRole', 'AttachPolicyToUser'
])

export type RamFault =
  | { kind: 'no-permission', action?: string, count?: number }
  | { kind: 'reject', code: string, status?: number, message?: string, action?: string, count?: number }
  | { kind: 'server-error', action?: string, count?: number }

export interface EmulatorLogger {
  debug: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
}

export interface RamEmulatorOptions {
  /** AccessKey id → secret of the callers allowed to sign requests. */
  accessKeys: Record<string, string>
  /** The account the emulated RAM belongs to; appears in every ARN. */
  accountId?: string
  /** RAM users that exist. */
  users?: string[]
  now?: () => number
  logger?: EmulatorLogger
  port?: number
}

export interface RamCall {
  caller: string
  action: string
  params: Record<string, string>
  at: number
  /** 'ok' or the RAM error code. */
  outcome: string
}

export interface RoleView {
  roleName: string
  arn: string
  assumeRolePolicyDocument: string
  description: string
  maxSessionDuration: number
}

export interface PolicyVersionView { versionId: string, isDefaultVersion: boolean, document: string }

export interface PolicyView {
  policyName: string
  policyType: 'Custom' | 'System'
  description: string
  defaultVersion: string
  /** The default version's document. */
  document: string
  versions: PolicyVersionView[]
}

export interface AttachmentView { policyType: 'Custom' | 'System', policyName: string }

export interface RamEmulator {
  url: string
  endpoint: string
  accountId: string
  /** Every call that passed the signature checks, in arrival order. */
  calls: RamCall[]
  readonly callCount: number
  /** Every HTTP request received, including ones refused before they became a call. */
  readonly requestCount: number
  /** The calls that would change RAM (whatever their outcome). */
  readonly mutations: RamCall[]
  inject: (fault: RamFault) => void
  clearFaults: () => void
  addUser: (userName: string) => void
  /** Seeds a role directly (no call recorded), e.g. one with a foreign trust policy. */
  putRole: (role: { roleName: string, assumeRolePolicyDocument: string, maxSessionDuration?: number, description?: string }) => void
  role: (roleName: string) => RoleView | undefined
  policy: (policyName: string, policyType?: 'Custom' | 'System') => PolicyView | undefined
  rolePolicies: (roleName: string) => AttachmentView[]
  userPolicies: (userName: string) => AttachmentView[]
  /** Forgets calls, the request count, faults and nonces; RAM's state stays. */
  reset: () => void
  close: () => Promise<void>
}

interface Version { versionId: string, document: string, createDate: string }
interface Policy {
  policyName: string
  policyType: 'Custom' | 'System'
  description: string
  versions: Version[]
  defaultVersion: string
  nextVersion: number
  createDate: string
  updateDate: string
}
interface Role {
  roleId: string
  roleName: string
  arn: string
  assumeRolePolicyDocument: string
  description: string
  maxSessionDuration: number
  createDate: string
  updateDate: string
}
interface Attachment { policyType: 'Custom' | 'System', policyName: string, attachDate: string }

class Refusal {
  constructor (readonly status: number, readonly code: string, readonly message: string) {}
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isoSeconds (ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}

/** Why a trust policy (AssumeRolePolicyDocument) is malformed, or undefined. */
export function trustPolicyProblem (text: string): string | undefined {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    return 'the policy is not JSON'
  }
  if (!isPlainObject(doc)) return 'the policy must be a JSON object'
  if (!Array.isArray(doc.Statement) || doc.Statement.length === 0) return 'Statement must be a non-empty array'
  const rest: unknown[] = []
  for (const [i, s] of doc.Statement.entries()) {
    if (!isPlainObject(s)) return `Statement[${i}] must be an object`
    const { Principal, ...others } = s
    if (!isPlainObject(Principal) || Object.keys(Principal).length === 0) return `Statement[${i}].Principal must be a non-empty object`
    for (const [kind, value] of Object.entries(Principal)) {
      const list = typeof value === 'string' ? [value] : value
      if (!Array.isArray(list) || list.length === 0 || !list.every((v) => typeof v === 'string')) return `Statement[${i}].Principal.${kind} must be a string or a non-empty list of strings`
      const pattern = kind === 'RAM' ? RAM_PRINCIPAL : kind === 'Service' ? SERVICE_PRINCIPAL : kind === 'Federated' ? /^acs:ram::\d+:(?:saml|oidc)-provider\/[A-Za-z0-9.-]+$/ : undefined
      if (pattern === undefined) return `Statement[${i}].Principal has an unknown kind "${kind.slice(0, 32)}"`
      for (const v of list as string[]) if (!pattern.test(v)) return `Statement[${i}].Principal.${kind} "${v.slice(0, 64)}" is not well-formed`
    }
    if ('Resource' in others || 'NotResource' in others) return `Statement[${i}] of a trust policy takes no Resource`
    const actions = typeof others.Action === 'string' ? [others.Action] : others.Action
    if (Array.isArray(actions) && actions.some((a) => typeof a !== 'string' || !TRUST_ACTIONS.has(a.toLowerCase()))) {
      return `Statement[${i}].Action must be sts:AssumeRole (or the SAML/OIDC variants)`
    }
    rest.push({ ...others, Resource: '*' })
  }
  // The rest of the grammar is the permission-policy grammar, Resource aside.
  return checkPolicy(JSON.stringify({ ...doc, Statement: rest }), Number.MAX_SAFE_INTEGER)?.reason
}

export async function startRamEmulator (opts: RamEmulatorOptions): Promise<RamEmulator> {
  const now = opts.now ?? Date.now
  const accountId = opts.accountId ?? '1234567890123456'
  const accessKeys = new Map(Object.entries(opts.accessKeys))
  const nonces = new NonceStore()
  const calls: RamCall[] = []
  let faults: Array<{ fault: RamFault, remaining: number }> = []
  const sockets = new Set<Socket>()
  let closed = false
  let requestCount = 0

  const users = new Map<string, { userId: string, createDate: string }>()
  const roles = new Map<string, Role>()
  const policies = new Map<string, Policy>()
  const roleAttachments = new Map<string, Attachment[]>()
  const userAttachments = new Map<string, Attachment[]>()

  const id = (): string => `${randomInt(1e8, 1e9)}${randomInt(1e8, 1e9)}`
  const stamp = (): string => isoSeconds(now())

  function addUser (userName: string): void {
    if (!users.has(userName)) users.set(userName, { userId: id(), createDate: stamp() })
  }
  for (const u of opts.users ?? []) addUser(u)

  function addSystemPolicy (policyName: string, document: object): void {
    const at = stamp()
    policies.set(`System:${policyName}`, {
      policyName,
      policyType: 'System',
      description: '',
      defaultVersion: 'v1',
      nextVersion: 2,
      createDate: at,
      updateDate: at,
      versions: [{ versionId: 'v1', document: JSON.stringify(document), createDate: at }]
    })
  }
  addSystemPolicy('AliyunSTSAssumeRoleAccess', { Version: '1', Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Resource: '*' }] })
  addSystemPolicy('AliyunOSSFullAccess', { Version: '1', Statement: [{ Action: 'oss:*', Effect: 'Allow', Resource: '*' }] })
  addSystemPolicy('AliyunRAMFullAccess', { Version: '1', Statement: [{ Action: 'ram:*', Effect: 'Allow', Resource: '*' }] })

  function nextFault (action: string): RamFault | undefined {
    const i = faults.findIndex((f) => f.fault.action === undefined || f.fault.action === action)
    const active = faults[i]
    if (active === undefined) return undefined
    active.remaining -= 1
    if (active.remaining <= 0) faults.splice(i, 1)
    return active.fault
  }

  // ---- parameter checks ----

  function need (p: Map<string, string>, name: string): string {
    const v = p.get(name)
    if (v === undefined || v === '') throw new Refusal(400, `MissingParameter.${name}`, `${name} is mandatory for this action.`)
    return v
  }

  function name (p: Map<string, string>, param: string, kind: string, max: number, pattern: RegExp): string {
    const v = need(p, param)
    if (v.length > max) throw new Refusal(400, `InvalidParameter.${kind}.Length`, `The parameter - "${param}" beyond the length limit.`)
    if (!pattern.test(v)) throw new Refusal(400, `InvalidParameter.${kind}.InvalidChars`, `The parameter - "${param}" contains invalid chars.`)
    return v
  }
  const roleName = (p: Map<string, string>): string => name(p, 'RoleName', 'RoleName', 64, ROLE_NAME)
  const policyName = (p: Map<string, string>): string => name(p, 'PolicyName', 'PolicyName', 128, POLICY_NAME)
  const userName = (p: Map<string, string>): string => name(p, 'UserName', 'UserName', 64, USER_NAME)

  function policyType (p: Map<string, string>): 'Custom' | 'System' {
    const v = need(p, 'PolicyType')
    if (v !== 'Custom' && v !== 'System') throw new Refusal(400, 'InvalidParameter.PolicyType', 'The parameter - "PolicyType" is incorrect.')
    return v
  }

  function descriptionParam (p: Map<string, string>, param = 'Description'): string {
    const v = p.get(param) ?? ''
    if (v.length > MAX_DESCRIPTION) throw new Refusal(400, `InvalidParameter.${param}.Length`, `The parameter - "${param}" beyond the length limit.`)
    return v
  }

  function maxSession (p: Map<string, string>, param: string): number | undefined {
    const v = p.get(param)
    if (v === undefined) return undefined
    const n = INTEGER.test(v) ? Number(v) : NaN
    if (!(n >= 3600 && n <= 43_200)) throw new Refusal(400, `InvalidParameter.${param}`, `The parameter - "${param}" must be 3600 to 43200.`)
    return n
  }

  function policyDocument (p: Map<string, string>): string {
    const text = need(p, 'PolicyDocument')
    if (text.length > MAX_CUSTOM_POLICY_CHARS) {
      throw new Refusal(400, 'InvalidParameter.PolicyDocument.Length', `The maximum length of the policy document is exceeded. It must not exceed ${MAX_CUSTOM_POLICY_CHARS} characters.`)
    }
    const problem = checkPolicy(text, Number.MAX_SAFE_INTEGER)
    if (problem !== undefined) throw new Refusal(400, 'MalformedPolicyDocument', `The policy document is malformed: ${problem.reason}.`)
    return text
  }

  function trustDocument (p: Map<string, string>, param: string): string {
    const text = need(p, param)
    if (text.length > MAX_TRUST_POLICY_CHARS) {
      throw new Refusal(400, `InvalidParameter.${param}.Length`, `The maximum length of the trust policy is exceeded. It must not exceed ${MAX_TRUST_POLICY_CHARS} characters.`)
    }
    const problem = trustPolicyProblem(text)
    if (problem !== undefined) throw new Refusal(400, 'MalformedPolicyDocument', `The trust policy is malformed: ${problem}.`)
    return text
  }

  function bool (p: Map<string, string>, param: string): boolean {
    const v = p.get(param)
    if (v === undefined || v === 'false') return false
    if (v === 'true') return true
    throw new Refusal(400, `InvalidParameter.${param}`, `The parameter - "${param}" must be true or false.`)
  }

  // ---- lookups ----

  function getRole (name: string): Role {
    const role = roles.get(name)
    if (role === undefined) throw new Refusal(404, 'EntityNotExist.Role', 'The role does not exist.')
    return role
  }
  function requireUser (name: string): void {
    if (!users.has(name)) throw new Refusal(404, 'EntityNotExist.User', 'The user does not exist.')
  }
  function getPolicy (name: string, type: 'Custom' | 'System'): Policy {
    const policy = policies.get(`${type}:${name}`)
    if (policy === undefined) throw new Refusal(404, 'EntityNotExist.Policy', 'The policy does not exist.')
    return policy
  }

  // ---- views ----

  function roleBody (r: Role): object {
    return {
      RoleId: r.roleId,
      RoleName: r.roleName,
      Arn: r.arn,
      Description: r.description,
      AssumeRolePolicyDocument: r.assumeRolePolicyDocument,
      MaxSessionDuration: r.maxSessionDuration,
      CreateDate: r.createDate,
      UpdateDate: r.updateDate
    }
  }
  function versionBody (p: Policy, v: Version): object {
    return { VersionId: v.versionId, IsDefaultVersion: v.versionId === p.defaultVersion, PolicyDocument: v.document, CreateDate: v.createDate }
  }
  function defaultOf (p: Policy): Version {
    return p.versions.find((v) => v.versionId === p.defaultVersion) as Version
  }
  function attachmentCount (p: Policy): number {
    let n = 0
    for (const list of [...roleAttachments.values(), ...userAttachments.values()]) {
      n += list.filter((a) => a.policyType === p.policyType && a.policyName === p.policyName).length
    }
    return n
  }
  function attachmentsBody (list: Attachment[]): object {
    return {
      Policies: {
        Policy: list.map((a) => {
          const p = policies.get(`${a.policyType}:${a.policyName}`)
          return { PolicyName: a.policyName, PolicyType: a.policyType, Description: p?.description ?? '', DefaultVersion: p?.defaultVersion ?? 'v1', AttachDate: a.attachDate }
        })
      }
    }
  }

  function attach (map: Map<string, Attachment[]>, owner: string, type: 'Custom' | 'System', policy: string, alreadyCode: string): void {
    getPolicy(policy, type)
    const list = map.get(owner) ?? []
    if (list.some((a) => a.policyType === type && a.policyName === policy)) {
      throw new Refusal(409, alreadyCode, 'The policy is already attached.')
    }
    list.push({ policyType: type, policyName: policy, attachDate: stamp() })
    map.set(owner, list)
  }

  function addVersion (policy: Policy, document: string, setAsDefault: boolean, rotate: boolean): Version {
    if (policy.versions.length >= MAX_POLICY_VERSIONS) {
      const oldest = policy.versions.find((v) => v.versionId !== policy.defaultVersion)
      if (!rotate || oldest === undefined) throw new Refusal(409, 'LimitExceeded.Policy.Version', 'The count of policy version beyond the current limits.')
      policy.versions.splice(policy.versions.indexOf(oldest), 1)
    }
    const version: Version = { versionId: `v${policy.nextVersion++}`, document, createDate: stamp() }
    policy.versions.push(version)
    if (setAsDefault) policy.defaultVersion = version.versionId
    policy.updateDate = version.createDate
    return version
  }

  type Handler = (p: Map<string, string>) => object
  const handlers: Record<string, Handler> = {
    GetUser (p) {
      const name = userName(p)
      const user = users.get(name)
      if (user === undefined) throw new Refusal(404, 'EntityNotExist.User', 'The user does not exist.')
      return { User: { UserId: user.userId, UserName: name, DisplayName: name, CreateDate: user.createDate, UpdateDate: user.createDate, Comments: '' } }
    },
    GetRole (p) {
      return { Role: roleBody(getRole(roleName(p))) }
    },
    CreateRole (p) {
      const name = roleName(p)
      const document = trustDocument(p, 'AssumeRolePolicyDocument')
      const description = descriptionParam(p)
      const maxSessionDuration = maxSession(p, 'MaxSessionDuration') ?? 3600
      if (roles.has(name)) throw new Refusal(409, 'EntityAlreadyExists.Role', 'The role already exists.')
      const at = stamp()
      const role: Role = {
        roleId: id(),
        roleName: name,
        arn: `acs:ram::${accountId}:role/${name}`,
        assumeRolePolicyDocument: document,
        description,
        maxSessionDuration,
        createDate: at,
        updateDate: at
      }
      roles.set(name, role)
      return { Role: roleBody(role) }
    },
    UpdateRole (p) {
      const role = getRole(roleName(p))
      const document = p.has('NewAssumeRolePolicyDocument') ? trustDocument(p, 'NewAssumeRolePolicyDocument') : undefined
      const description = p.has('NewDescription') ? descriptionParam(p, 'NewDescription') : undefined
      const duration = maxSession(p, 'NewMaxSessionDuration')
      if (document !== undefined) role.assumeRolePolicyDocument = document
      if (description !== undefined) role.description = description
      if (duration !== undefined) role.maxSessionDuration = duration
      role.updateDate = stamp()
      return { Role: roleBody(role) }
    },
    CreatePolicy (p) {
      const name = policyName(p)
      const document = policyDocument(p)
      const description = descriptionParam(p)
      if (policies.has(`Custom:${name}`) || policies.has(`System:${name}`)) throw new Refusal(409, 'EntityAlreadyExists.Policy', 'The policy already exists.')
      const at = stamp()
      const policy: Policy = {
        policyName: name,
        policyType: 'Custom',
        description,
        defaultVersion: 'v1',
        nextVersion: 2,
        createDate: at,
        updateDate: at,
        versions: [{ versionId: 'v1', document, createDate: at }]
      }
      policies.set(`Custom:${name}`, policy)
      return { Policy: { PolicyName: name, PolicyType: 'Custom', Description: description, DefaultVersion: 'v1', CreateDate: at } }
    },
    GetPolicy (p) {
      const policy = getPolicy(policyName(p), policyType(p))
      const v = defaultOf(policy)
      return {
        Policy: {
          PolicyName: policy.policyName,
          PolicyType: policy.policyType,
          Description: policy.description,
          DefaultVersion: policy.defaultVersion,
          CreateDate: policy.createDate,
          UpdateDate: policy.updateDate,
          AttachmentCount: attachmentCount(policy),
          PolicyDocument: v.document
        },
        DefaultPolicyVersion: versionBody(policy, v)
      }
    },
    GetPolicyVersion (p) {
      const policy = getPolicy(policyName(p), policyType(p))
      const versionId = need(p, 'VersionId')
      if (!VERSION_ID.test(versionId)) throw new Refusal(400, 'InvalidParameter.VersionId.Format', 'The format of the parameter - "VersionId" is incorrect.')
      const v = policy.versions.find((x) => x.versionId === versionId)
      if (v === undefined) throw new Refusal(404, 'EntityNotExist.Policy.Version', 'The policy version does not exist.')
      return { PolicyVersion: versionBody(policy, v) }
    },
    ListPolicyVersions (p) {
      const policy = getPolicy(policyName(p), policyType(p))
      return { PolicyVersions: { PolicyVersion: policy.versions.map((v) => versionBody(policy, v)) } }
    },
    CreatePolicyVersion (p) {
      const policy = getPolicy(policyName(p), 'Custom')
      const document = policyDocument(p)
      const setAsDefault = bool(p, 'SetAsDefault')
      const strategy = p.get('RotateStrategy') ?? 'None'
      if (strategy !== 'None' && strategy !== 'DeleteOldestNonDefaultVersionWhenLimitExceeded') {
        throw new Refusal(400, 'InvalidParameter.RotateStrategy', 'The parameter - "RotateStrategy" is incorrect.')
      }
      return { PolicyVersion: versionBody(policy, addVersion(policy, document, setAsDefault, strategy !== 'None')) }
    },
    DeletePolicyVersion (p) {
      const policy = getPolicy(policyName(p), 'Custom')
      const versionId = need(p, 'VersionId')
      if (!VERSION_ID.test(versionId)) throw new Refusal(400, 'InvalidParameter.VersionId.Format', 'The format of the parameter - "VersionId" is incorrect.')
      const i = policy.versions.findIndex((v) => v.versionId === versionId)
      if (i === -1) throw new Refusal(404, 'EntityNotExist.Policy.Version', 'The policy version does not exist.')
      if (versionId === policy.defaultVersion) throw new Refusal(409, 'DeleteConflict.Policy.Version.Default', 'The default policy version CAN NOT been deleted directly.')
      policy.versions.splice(i, 1)
      return {}
    },
    AttachPolicyToRole (p) {
      const type = policyType(p)
      const policy = policyName(p)
      const role = getRole(roleName(p)).roleName
      attach(roleAttachments, role, type, policy, 'EntityAlreadyExists.Role.Policy')
      return {}
    },
    ListPoliciesForRole (p) {
      const role = getRole(roleName(p)).roleName
      return attachmentsBody(roleAttachments.get(role) ?? [])
    },
    AttachPolicyToUser (p) {
      const type = policyType(p)
      const policy = policyName(p)
      const user = userName(p)
      requireUser(user)
      attach(userAttachments, user, type, policy, 'EntityAlreadyExists.User.Policy')
      return {}
    },
    ListPoliciesForUser (p) {
      const user = userName(p)
      requireUser(user)
      return attachmentsBody(userAttachments.get(user) ?? [])
    }
  }

  // ---- HTTP ----

  function errorBody (requestId: string, code: string, message: string): object {
    return { RequestId: requestId, HostId: HOST_ID, Code: code, Message: message, Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(code)}&product=Ram` }
  }

  function send (res: ServerResponse, requestId: string, status: number, body: object): void {
    if (res.destroyed || closed) return
    const payload = JSON.stringify(body)
    res.writeHead(status, {
      'content-type': 'application/json;charset=utf-8',
      'content-length': Buffer.byteLength(payload),
      'x-acs-request-id': requestId
    })
    res.end(payload)
  }

  function answerFault (fault: RamFault, requestId: string): { status: number, body: object } {
    switch (fault.kind) {
      case 'no-permission':
        return { status: 403, body: errorBody(requestId, 'NoPermission', 'You are not authorized to do this action. You should be authorized by RAM.') }
      case 'reject':
        return { status: fault.status ?? 400, body: errorBody(requestId, fault.code, fault.message ?? `Injected refusal: ${fault.code}.`) }
      case 'server-error':
        return { status: 500, body: errorBody(requestId, 'InternalError', 'The request processing has failed due to some unknown error.') }
    }
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    requestCount++
    const requestId = randomUUID().toUpperCase()
    const fail = (status: number, code: string, message: string): void => {
      opts.logger?.debug({ requestId, code }, 'ram emulator refused a call')
      send(res, requestId, status, errorBody(requestId, code, message))
    }
    const body = await readBody(req, MAX_BODY_BYTES)
    if (body === undefined) return fail(413, 'InvalidParameter.BodyTooLarge', 'The request body is too large.')

    const verdict = verifyAcs3({ method: req.method ?? '', url: req.url ?? '/', headers: req.headersDistinct, body }, {
      secretFor: (k) => accessKeys.get(k),
      nowMs: now(),
      nonces
    })
    if (!verdict.ok) return fail(verdict.status, verdict.code, verdict.message)

    const action = req.headers['x-acs-action']
    const path = (req.url ?? '/').split('?')[0]
    if ((req.method !== 'POST' && req.method !== 'GET') || path !== '/' || typeof action !== 'string' || !Object.hasOwn(handlers, action)) {
      return fail(404, 'InvalidAction.NotFound', 'Specified api is not found, please check your url and method.')
    }
    if (req.headers['x-acs-version'] !== RAM_VERSION) return fail(400, 'InvalidVersion', 'Specified parameter Version is not valid.')

    const params = new Map(verdict.params)
    if (body.length > 0 && (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      const form = parseQuery(body.toString('utf8'))
      if (form === undefined || [...form.keys()].some((k) => params.has(k))) return fail(400, 'InvalidParameter', 'The form body is malformed or repeats a parameter.')
      for (const [k, v] of form) params.set(k, v)
    }

    const call: RamCall = { caller: verdict.accessKeyId, action, params: Object.fromEntries(params), at: now(), outcome: 'pending' }
    calls.push(call)

    const fault = nextFault(action)
    let status = 200
    let answer: object
    if (fault !== undefined) {
      ({ status, body: answer } = answerFault(fault, requestId))
    } else {
      try {
        answer = { RequestId: requestId, ...(handlers[action] as Handler)(params) }
      } catch (err) {
        if (!(err instanceof Refusal)) throw err
        status = err.status
        answer = errorBody(requestId, err.code, err.message)
      }
    }
    call.outcome = status === 200 ? 'ok' : (answer as { Code: string }).Code
    opts.logger?.debug({ requestId, action, outcome: call.outcome }, 'ram emulator call')
    send(res, requestId, status, answer)
  }

  // A 6144-character policy percent-encodes to ~18 KB of query string.
  const server = createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'ram emulator failed')
      if (!res.headersSent && !res.destroyed) send(res, 'emulator', 500, errorBody('emulator', 'InternalError', 'Emulator failure.'))
    })
  })
  const url = await listenLoopback(server, opts.port ?? 0, sockets)

  function attachmentsView (list: Attachment[] | undefined): AttachmentView[] {
    return (list ?? []).map((a) => ({ policyType: a.policyType, policyName: a.policyName }))
  }

  return {
    url,
    endpoint: url,
    accountId,
    calls,
    get callCount () { return calls.length },
    get requestCount () { return requestCount },
    get mutations () { return calls.filter((c) => MUTATING_ACTIONS.has(c.action)) },
    inject (fault) {
      const count = fault.count ?? Infinity
      if (!(count >= 1)) throw new RangeError('fault count must be at least 1')
      faults.push({ fault, remaining: count })
    },
    clearFaults () { faults = [] },
    addUser,
    putRole (r) {
      const at = stamp()
      roles.set(r.roleName, {
        roleId: id(),
        roleName: r.roleName,
        arn: `acs:ram::${accountId}:role/${r.roleName}`,
        assumeRolePolicyDocument: r.assumeRolePolicyDocument,
        description: r.description ?? '',
        maxSessionDuration: r.maxSessionDuration ?? 3600,
        createDate: at,
        updateDate: at
      })
    },
    role (name) {
      const r = roles.get(name)
      return r === undefined
        ? undefined
        : { roleName: r.roleName, arn: r.arn, assumeRolePolicyDocument: r.assumeRolePolicyDocument, description: r.description, maxSessionDuration: r.maxSessionDuration }
    },
    policy (name, type = 'Custom') {
      const p = policies.get(`${type}:${name}`)
      if (p === undefined) return undefined
      return {
        policyName: p.policyName,
        policyType: p.policyType,
        description: p.description,
        defaultVersion: p.defaultVersion,
        document: defaultOf(p).document,
        versions: p.versions.map((v) => ({ versionId: v.versionId, isDefaultVersion: v.versionId === p.defaultVersion, document: v.document }))
      }
    },
    rolePolicies (name) { return attachmentsView(roleAttachments.get(name)) },
    userPolicies (name) { return attachmentsView(userAttachments.get(name)) },
    reset () {
      calls.length = 0
      requestCount = 0
      faults = []
      nonces.clear()
    },
    async close () {
      if (closed) return
      closed = true
      const done = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await done
    }
  }
}
