// The documents `sts-vending provision` puts into RAM, built as objects and compared
// semantically. Pure: no SDK, no I/O. Three documents:
//
//   trust policy       on the role: exactly one RAM user (never the whole account) may assume it
//   permission policy  attached to the role: the OSS actions on <bucket>/<prefix>*, built by
//                      policy/build.ts so the role and every session policy share one shape
//   assume policy      attached to the user: sts:AssumeRole on this role's ARN only
//
// Names are derived deterministically from the request so a second run finds what the
// first one made. The default role name carries a hash of the exact bucket/prefix, so two
// directories whose names slug alike (`a_b/`, `a-b/`) never share a role.
import { createHash } from 'node:crypto'
import type { Action } from '../../config/schema.js'
import { buildSessionPolicy, canonicalActions, type PolicyDocument } from '../../policy/build.js'
import { parsePrefixTemplate } from '../../grants/template.js'
import { isSafePrefix } from '../../core/index.js'
import { BUCKET_PATTERN, NAME_PATTERN } from '../../core/index.js'

/** RAM's limits (CreateRole, CreatePolicy, CreatePolicyVersion). */
export const ROLE_NAME = /^[A-Za-z0-9.-]{1,64}$/
export const POLICY_NAME = /^[A-Za-z0-9-]{1,128}$/
export const USER_NAME = /^[A-Za-z0-9._-]{1,64}$/
export const ACCOUNT_ID = /^[0-9]{1,32}$/
export const BUCKET = new RegExp(BUCKET_PATTERN)
export const GRANT_NAME = new RegExp(NAME_PATTERN)
export const REGION = /^[a-z]{2}-[a-z0-9-]{2,40}$/
export const CUSTOM_POLICY_MAX_CHARS = 6144
export const MIN_MAX_SESSION_DURATION = 3600
export const MAX_MAX_SESSION_DURATION = 43_200
/** The system policy that lets a RAM user assume any role that trusts it. */
export const SYSTEM_ASSUME_POLICY = 'AliyunSTSAssumeRoleAccess'

export interface TrustStatement {
  Effect: 'Allow'
  Action: string[]
  Principal: { RAM: string[] }
}
export interface TrustPolicyDocument { Version: '1', Statement: TrustStatement[] }

export interface AssumeStatement { Effect: 'Allow', Action: string[], Resource: string[] }
export interface AssumePolicyDocument { Version: '1', Statement: AssumeStatement[] }

export function ramUserPrincipal (accountId: string, userName: string): string {
  return `acs:ram::${accountId}:user/${userName}`
}

export function roleArnFor (accountId: string, roleName: string): string {
  return `acs:ram::${accountId}:role/${roleName}`
}

/** The account id inside an `acs:ram::<id>:…` ARN, or undefined. */
export function accountOfArn (arn: string): string | undefined {
  return /^acs:ram::([0-9]+):/.exec(arn)?.[1]
}

export function buildTrustPolicy (accountId: string, userName: string): TrustPolicyDocument {
  if (!ACCOUNT_ID.test(accountId)) throw new Error('the account id must be digits')
  if (!USER_NAME.test(userName)) throw new Error('the RAM user name is not valid')
  return {
    Version: '1',
    Statement: [{ Effect: 'Allow', Action: ['sts:AssumeRole'], Principal: { RAM: [ramUserPrincipal(accountId, userName)] } }]
  }
}

export const ROLE_ARN = /^acs:ram::[0-9]{1,32}:role\/[A-Za-z0-9.-]{1,64}$/

/** Trust for RRSA: the service runs as a role of its own, and only that role may assume this one. */
export function buildRoleTrustPolicy (roleArn: string): TrustPolicyDocument {
  if (!ROLE_ARN.test(roleArn)) throw new Error('the role ARN is not valid')
  return {
    Version: '1',
    Statement: [{ Effect: 'Allow', Action: ['sts:AssumeRole'], Principal: { RAM: [roleArn] } }]
  }
}

/** Who the trust policy names, in words. */
export function trusteeText (r: ProvisionRequest): string {
  return r.trustRoleArn !== undefined ? `role ${r.trustRoleArn}` : `RAM user ${r.ramUser ?? ''}`
}

/** The role's OSS permission policy: the same document shape as a session policy. */
export function buildRolePolicy (bucket: string, prefix: string, actions: readonly Action[]): PolicyDocument {
  const doc = buildSessionPolicy(bucket, prefix, actions)
  if (renderPolicy(doc).length > CUSTOM_POLICY_MAX_CHARS) throw new Error(`the permission policy would exceed RAM's ${CUSTOM_POLICY_MAX_CHARS} characters`)
  return doc
}

export function buildAssumePolicy (roleArn: string): AssumePolicyDocument {
  if (!/^acs:ram::[0-9]+:role\/[A-Za-z0-9.-]{1,64}$/.test(roleArn)) throw new Error('the role ARN is not valid')
  return { Version: '1', Statement: [{ Effect: 'Allow', Action: ['sts:AssumeRole'], Resource: [roleArn] }] }
}

/** What is sent to RAM: indented, so the console shows it readably. */
export function renderPolicy (doc: object): string {
  return JSON.stringify(doc, null, 2)
}

function slug (s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')
}

/** `sts-<bucket>-<prefix slug>-<8 hex of sha256(bucket/prefix)>`, at most 64 characters. */
export function defaultRoleName (bucket: string, prefix: string): string {
  const hash = createHash('sha256').update(`${bucket}/${prefix}`, 'utf8').digest('hex').slice(0, 8)
  const body = slug(`${bucket}-${prefix}`).slice(0, 64 - 'sts-'.length - 1 - hash.length).replace(/-+$/, '')
  return `sts-${body}-${hash}`
}

export interface PolicyNames { rolePolicy: string, userPolicy: string }

/** Names of the two custom policies, derived from the role name (RAM policy names have no `.`). */
export function policyNames (roleName: string): PolicyNames {
  const base = roleName.replace(/\./g, '-')
  return { rolePolicy: `${base}-oss`, userPolicy: `${base}-assume` }
}

export function defaultGrantName (bucket: string, prefix: string): string {
  const last = prefix.slice(0, -1).split('/').at(-1) ?? ''
  const name = `${bucket}-${last}`.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').slice(0, 63).replace(/-+$/, '')
  return GRANT_NAME.test(name) ? name : 'uploads'
}

export function description (bucket: string, prefix: string): string {
  const text = `Managed by sts-vending provision: oss://${bucket}/${prefix}`
  return text.length <= 1024 ? text : text.slice(0, 1021) + '...'
}

// ---- semantic comparison ----

const LIST_KEYS = new Set(['Action', 'NotAction', 'Resource', 'NotResource'])

function asList (v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v]
}

function sortedUnique (values: unknown[], fold = false): unknown[] {
  const mapped = values.map((v) => (fold && typeof v === 'string' ? v.toLowerCase() : v))
  const byKey = new Map(mapped.map((v) => [JSON.stringify(v), v]))
  return [...byKey.keys()].sort().map((k) => byKey.get(k))
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function canonicalStatement (s: unknown): unknown {
  if (!isPlainObject(s)) return s
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(s).sort()) {
    const v = s[key]
    if (LIST_KEYS.has(key)) {
      // RAM compares actions case-insensitively; resources exactly.
      out[key] = sortedUnique(asList(v), key.endsWith('Action'))
    } else if (key === 'Principal' && isPlainObject(v)) {
      out[key] = Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortedUnique(asList(v[k]))]))
    } else if (key === 'Condition' && isPlainObject(v)) {
      out[key] = Object.fromEntries(Object.keys(v).sort().map((op) => {
        const block = v[op]
        return [op, isPlainObject(block)
          ? Object.fromEntries(Object.keys(block).sort().map((k) => [k, sortedUnique(asList(block[k]))]))
          : block]
      }))
    } else {
      out[key] = v
    }
  }
  return out
}

/**
 * A canonical text of a policy document (key order, string-vs-list, list order, action
 * case and statement order do not matter), or undefined when it is not a JSON object.
 */
export function canonicalPolicy (doc: unknown): string | undefined {
  let value = doc
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value)
    } catch {
      return undefined
    }
  }
  if (!isPlainObject(value)) return undefined
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value).sort()) {
    const v = value[key]
    out[key] = key === 'Statement' && Array.isArray(v) ? sortedUnique(v.map(canonicalStatement)) : v
  }
  return JSON.stringify(out)
}

export function samePolicy (a: unknown, b: unknown): boolean {
  const ca = canonicalPolicy(a)
  return ca !== undefined && ca === canonicalPolicy(b)
}

/** `RAM acs:ram::1:user/x`-style entries of every principal an Allow statement names. */
function trustedPrincipals (doc: unknown): Set<string> | undefined {
  const text = canonicalPolicy(doc)
  if (text === undefined) return undefined
  const parsed = JSON.parse(text) as { Statement?: unknown }
  const out = new Set<string>()
  for (const s of Array.isArray(parsed.Statement) ? parsed.Statement : []) {
    if (!isPlainObject(s) || s.Effect !== 'Allow') continue
    const p = s.Principal
    if (p === '*') out.add('*')
    if (!isPlainObject(p)) continue
    for (const [kind, list] of Object.entries(p)) {
      for (const v of asList(list)) out.add(`${kind} ${String(v)}`)
    }
  }
  return out
}

/**
 * One sentence on how an existing trust policy differs from the wanted one, for the
 * refusal message. Names the principals it adds or lacks; otherwise says that the
 * statements differ (conditions, actions or effects).
 */
export function describeTrustDifference (actual: unknown, wanted: object): string {
  const have = trustedPrincipals(actual)
  if (have === undefined) return 'its trust policy is not valid JSON'
  const want = trustedPrincipals(wanted) ?? new Set<string>()
  const facts: string[] = []
  const extra = [...have].filter((p) => !want.has(p))
  const missing = [...want].filter((p) => !have.has(p))
  if (extra.length > 0) facts.push(`it also trusts ${extra.join(', ')}`)
  if (missing.length > 0) facts.push(`it does not trust ${missing.join(', ')}`)
  if (facts.length === 0) facts.push('it trusts the same principal but its statements differ (actions, effect or conditions)')
  return facts.join('; ')
}

// ---- inputs ----

export interface ProvisionRequest {
  accountId: string
  bucket: string
  prefix: string
  /** Who may assume the role: a RAM user of the account, or (with RRSA) the service's own role. Exactly one. */
  ramUser?: string
  trustRoleArn?: string
  region: string
  roleName: string
  actions: Action[]
  maxSessionDuration: number
  /** Whether --max-session-duration was given (only then is an existing role changed). */
  maxSessionDurationExplicit: boolean
  systemPolicy: boolean
  /** Adopt an existing role although other policies are attached to it (with a warning). */
  allowExtraPolicies?: boolean
  grantName: string
  grantPrefix: string
  issuers: string[]
}

/** Why a request is not acceptable, in words for the operator; undefined when it is fine. */
export function checkRequest (r: ProvisionRequest): string | undefined {
  if (!ACCOUNT_ID.test(r.accountId)) return '--account-id must be the numeric Alibaba Cloud account id (the number in acs:ram::<id>:…)'
  if (!BUCKET.test(r.bucket)) return `--bucket "${r.bucket}" is not a valid OSS bucket name (3-63 of a-z 0-9 -, not starting or ending with -)`
  if (!isSafePrefix(r.prefix)) {
    return `--prefix "${r.prefix}" is not a safe directory: use segments of A-Z a-z 0-9 _ . @ -, separated by "/", ending with "/", no leading "/", "." or ".."`
  }
  if ((r.ramUser === undefined) === (r.trustRoleArn === undefined)) return 'give either --ram-user or --trust-role-arn'
  if (r.ramUser !== undefined) {
    if (r.ramUser.includes('@')) return `--ram-user takes the user name ("${r.ramUser.split('@')[0] ?? ''}"), not the logon name "${r.ramUser}"`
    if (!USER_NAME.test(r.ramUser)) return `--ram-user "${r.ramUser}" is not a valid RAM user name (1-64 of A-Z a-z 0-9 . _ -)`
  }
  if (r.trustRoleArn !== undefined) {
    if (!ROLE_ARN.test(r.trustRoleArn)) return `--trust-role-arn "${r.trustRoleArn}" is not a RAM role ARN (acs:ram::<account-id>:role/<name>)`
    if (accountOfArn(r.trustRoleArn) !== r.accountId) return `--trust-role-arn names account ${accountOfArn(r.trustRoleArn) ?? ''}, not --account-id ${r.accountId}`
  }
  if (!REGION.test(r.region)) return `--region "${r.region}" is not a region id such as cn-hangzhou`
  if (!ROLE_NAME.test(r.roleName)) return `--role-name "${r.roleName}" is not a valid RAM role name (1-64 of A-Z a-z 0-9 . -)`
  if (r.actions.length === 0) return '--actions must name at least one of list, read, write, delete'
  if (!Number.isInteger(r.maxSessionDuration) || r.maxSessionDuration < MIN_MAX_SESSION_DURATION || r.maxSessionDuration > MAX_MAX_SESSION_DURATION) {
    return `--max-session-duration must be an integer from ${MIN_MAX_SESSION_DURATION} to ${MAX_MAX_SESSION_DURATION} seconds`
  }
  if (!GRANT_NAME.test(r.grantName)) return `--grant-name "${r.grantName}" must be 1-63 of a-z 0-9 _ -, starting with a letter or digit`
  for (const issuer of r.issuers) {
    if (!GRANT_NAME.test(issuer)) return `--issuer "${issuer}" is not an issuer name (a-z 0-9 _ -)`
  }
  try {
    parsePrefixTemplate(r.grantPrefix)
  } catch (err) {
    return `--grant-prefix: ${(err as Error).message}`
  }
  // A template that starts with the directory only ever fills to paths inside it.
  if (!r.grantPrefix.startsWith(r.prefix)) return `--grant-prefix "${r.grantPrefix}" must lie inside --prefix "${r.prefix}"`
  try {
    buildRolePolicy(r.bucket, r.prefix, r.actions)
  } catch (err) {
    return (err as Error).message
  }
  return undefined
}

export interface ProvisionDocuments {
  roleArn: string
  trustPolicy: TrustPolicyDocument
  rolePolicy: PolicyDocument
  userPolicy: AssumePolicyDocument
  policyNames: PolicyNames
  description: string
}

export function buildDocuments (r: ProvisionRequest): ProvisionDocuments {
  const roleArn = roleArnFor(r.accountId, r.roleName)
  return {
    roleArn,
    trustPolicy: r.trustRoleArn !== undefined ? buildRoleTrustPolicy(r.trustRoleArn) : buildTrustPolicy(r.accountId, r.ramUser ?? ''),
    rolePolicy: buildRolePolicy(r.bucket, r.prefix, r.actions),
    userPolicy: buildAssumePolicy(roleArn),
    policyNames: policyNames(r.roleName),
    description: description(r.bucket, r.prefix)
  }
}

function yamlString (s: string): string {
  // A JSON string is a valid YAML double-quoted scalar.
  return JSON.stringify(s)
}

/** The grant block for the service's config (YAML), for the operator to paste. */
export function grantYaml (r: ProvisionRequest, roleArn: string): string {
  const duration = Math.min(3600, r.maxSessionDuration)
  return [
    'grants:',
    `  - name: ${r.grantName}`,
    `    issuers: [${r.issuers.join(', ')}]   # the issuers whose callers may use this grant`,
    `    roleArn: ${roleArn}`,
    `    bucket: ${r.bucket}`,
    `    region: ${r.region}`,
    `    prefix: ${yamlString(r.grantPrefix)}`,
    `    actions: [${canonicalActions(r.actions).join(', ')}]`,
    `    durationSeconds: ${duration}`,
    ''
  ].join('\n')
}
