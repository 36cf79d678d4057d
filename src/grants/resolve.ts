// Which grant a caller gets, and the narrowing they asked for. Narrowing only, never
// clipping: a request for anything outside the grant is refused, not silently cut
// down, so a client never believes it holds rights it does not have. A refusal says
// what is allowed instead (the caller's own directory, the grant's actions, the
// duration range, the grants this caller may name), from config and grant data only.
// Grant names do not leak: "no such grant" and "not yours" are the same answer, which
// lists only the grants available to this caller.
import { isAction, POLICY_MAX_BYTES, type Action } from '../core/index.js'
import type { GrantConfig } from '../config/schema.js'
import {
  ActionsNotAllowed, ClaimNotUsable, DurationNotAllowed, explained, GrantAmbiguous, GrantNotAllowed, PrefixNotAllowed
} from '../errors.js'
import { buildSessionPolicy, canonicalActions, serializePolicy } from '../policy/build.js'
import type { CompiledGrant } from './compile.js'
import { fillSourceIdentity } from './source-identity.js'
import { fillPrefix, hashClaim, HASHED_CLAIM_MAX_LENGTH, type PrefixTemplate } from './template.js'
import { isSafePrefix, isSafeSegment } from '../core/index.js'

export interface VendRequest { grant?: string, prefix?: string, actions?: Action[], durationSeconds?: number }

export interface ResolvedGrant {
  grant: GrantConfig
  /** Effective prefix: the caller's directory or a narrower one; ends with `/`. */
  prefix: string
  /** The caller's directory under this grant (the filled template). */
  grantPrefix: string
  /** Canonical order: list, read, write, delete. */
  actions: Action[]
  durationSeconds: number
  /** The serialised session policy for `prefix` and `actions` (≤ POLICY_MAX_BYTES). */
  policy: string
  /** The caller's SourceIdentity for AssumeRole, when the grant names one. */
  sourceIdentity?: string
}

/**
 * A `when` entry holds when the claim equals the value, or (array claim) contains it,
 * or (the space-separated OAuth `scope` string) has it as one of its words. Only
 * strings count: `true` does not match "true".
 */
function claimMatches (claims: Record<string, unknown>, name: string, want: string): boolean {
  if (!Object.hasOwn(claims, name)) return false
  const value = claims[name]
  if (typeof value === 'string') {
    if (value === want) return true
    return name === 'scope' && value.split(' ').includes(want)
  }
  return Array.isArray(value) && value.some((v) => v === want)
}

function isCandidate (g: CompiledGrant, issuerName: string, claims: Record<string, unknown>): boolean {
  if (!g.config.issuers.includes(issuerName)) return false
  const when = g.config.when ?? {}
  return Object.keys(when).every((name) => claimMatches(claims, name, when[name] as string))
}

function names (grants: readonly CompiledGrant[]): string {
  return grants.map((g) => g.config.name).join(', ')
}

function pickGrant (grants: readonly CompiledGrant[], issuerName: string, claims: Record<string, unknown>, name: unknown): CompiledGrant {
  const candidates = grants.filter((g) => isCandidate(g, issuerName, claims))
  const available = candidates.length > 0 ? `the grants available to this caller are: ${names(candidates)}` : 'no grant is available to this caller'
  if (name !== undefined) {
    const named = typeof name === 'string' ? candidates.find((g) => g.config.name === name) : undefined
    // The name asked for is not repeated: the answer is the same whether it exists or not.
    if (named === undefined) throw explained(new GrantNotAllowed(), `no grant of that name is available to this caller; ${available}`)
    return named
  }
  if (candidates.length === 0) throw explained(new GrantNotAllowed(), available)
  if (candidates.length > 1) throw explained(new GrantAmbiguous(), `one of: ${names(candidates)}`)
  return candidates[0] as CompiledGrant
}

function narrowActions (allowed: readonly Action[], asked: unknown): Action[] {
  if (asked === undefined) return canonicalActions(allowed)
  const refuse = (): never => { throw explained(new ActionsNotAllowed(), `this grant allows ${canonicalActions(allowed).join(', ')}`) }
  if (!Array.isArray(asked) || asked.length === 0) refuse()
  for (const a of asked as unknown[]) {
    if (!isAction(a) || !allowed.includes(a)) refuse()
  }
  return canonicalActions(asked as Action[])
}

function narrowDuration (min: number, max: number, asked: unknown): number {
  if (asked === undefined) return max
  if (typeof asked !== 'number' || !Number.isInteger(asked) || asked < min || asked > max) {
    throw explained(new DurationNotAllowed(), `this grant allows ${min} to ${max} seconds`)
  }
  return asked
}

function narrowPrefix (grantPrefix: string, asked: unknown): string {
  if (asked === undefined) return grantPrefix
  // grantPrefix ends with "/", so a string prefix test is a directory test.
  if (!isSafePrefix(asked) || !asked.startsWith(grantPrefix)) {
    throw explained(new PrefixNotAllowed(), `your directory is ${grantPrefix}`)
  }
  return asked
}

/**
 * Why the caller's directory cannot be made: the first placeholder that fails, by the
 * claim's name (never its value), with the hashed form when that would take any string.
 */
function claimProblem (template: PrefixTemplate, claims: Record<string, unknown>, issuerName: string): string {
  for (const part of template.parts) {
    if (part.kind === 'issuer' && !isSafeSegment(issuerName)) return 'the issuer\'s name cannot be used in a directory name'
    if (part.kind !== 'claim') continue
    const value = Object.hasOwn(claims, part.claim) ? claims[part.claim] : undefined
    if (part.hash) {
      if (hashClaim(value) === undefined) {
        return `the claim "${part.claim}" is missing or is not a string of 1 to ${HASHED_CLAIM_MAX_LENGTH} characters`
      }
    } else if (!isSafeSegment(value)) {
      return `the claim "${part.claim}" is missing or holds characters a directory name cannot (letters, digits, . _ @ - only, at most 128); ` +
        `a grant prefix can use it hashed, as {${part.claim}:sha256}`
    }
  }
  return 'the directory it makes is not a safe name'
}

export function resolveGrant (
  grants: readonly CompiledGrant[], issuerName: string, claims: Record<string, unknown>, req: VendRequest
): ResolvedGrant {
  // The verifier hands in an object; anything else is not a usable identity.
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new ClaimNotUsable()
  const picked = pickGrant(grants, issuerName, claims, req.grant)
  const grant = picked.config
  const grantPrefix = fillPrefix(picked.template, claims, issuerName)
  if (grantPrefix === undefined) throw explained(new ClaimNotUsable(), claimProblem(picked.template, claims, issuerName))
  const prefix = narrowPrefix(grantPrefix, req.prefix)
  const actions = narrowActions(grant.actions, req.actions)
  const durationSeconds = narrowDuration(picked.minDurationSeconds, grant.durationSeconds, req.durationSeconds)
  const policy = serializePolicy(buildSessionPolicy(grant.bucket, prefix, actions))
  // Grant compilation bounds the grant's own directory; a longer requested prefix can
  // still push the policy over what STS takes.
  if (Buffer.byteLength(policy, 'utf8') > POLICY_MAX_BYTES) {
    throw explained(new PrefixNotAllowed(), `the requested prefix makes a session policy over STS's ${POLICY_MAX_BYTES} bytes; your directory is ${grantPrefix}`)
  }
  if (picked.sourceIdentity === undefined) return { grant, prefix, grantPrefix, actions, durationSeconds, policy }
  const sourceIdentity = fillSourceIdentity(picked.sourceIdentity, claims, issuerName)
  if (sourceIdentity === undefined) {
    throw explained(new ClaimNotUsable(), `this grant names the caller to Alibaba Cloud as ${picked.sourceIdentity.source}, and this token's claims do not make 2 to 64 of A-Z a-z 0-9 _ + = , . @ -`)
  }
  return { grant, prefix, grantPrefix, actions, durationSeconds, policy, sourceIdentity }
}

/** A grant this caller may use, with the caller's directory under it. */
export interface AvailableGrant { grant: CompiledGrant, prefix: string }
/** A grant whose `issuers` and `when` match this caller but whose directory cannot be made from its claims. */
export interface UnusableGrant { name: string, reason: string }

/**
 * What this caller may get (GET /grants): the same candidates and the same directory
 * resolveGrant would use, so the list can never promise what vending refuses. A grant
 * whose directory cannot be made is reported by name with the same reason a request
 * naming it would get (CLAIM_NOT_USABLE), and nothing else of it.
 */
export function availableGrants (
  grants: readonly CompiledGrant[], issuerName: string, claims: Record<string, unknown>
): { usable: AvailableGrant[], unusable: UnusableGrant[] } {
  const usable: AvailableGrant[] = []
  const unusable: UnusableGrant[] = []
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return { usable, unusable }
  for (const g of grants) {
    if (!isCandidate(g, issuerName, claims)) continue
    const prefix = fillPrefix(g.template, claims, issuerName)
    if (prefix === undefined) unusable.push({ name: g.config.name, reason: claimProblem(g.template, claims, issuerName) })
    else usable.push({ grant: g, prefix })
  }
  return { usable, unusable }
}
