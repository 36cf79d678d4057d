// Which grant a caller gets, and the narrowing they asked for. Narrowing only, never
// clipping: a request for anything outside the grant is refused, not silently cut
// down, so a client never believes it holds rights it does not have. Grant names do
// not leak: "no such grant" and "not yours" are the same GrantNotAllowed.
import { isAction, MIN_DURATION_SECONDS, POLICY_MAX_BYTES, type Action } from '../core/index.js'
import type { GrantConfig } from '../config/schema.js'
import {
  ActionsNotAllowed, ClaimNotUsable, DurationNotAllowed, GrantAmbiguous, GrantNotAllowed, PrefixNotAllowed
} from '../errors.js'
import { buildSessionPolicy, canonicalActions, serializePolicy } from '../policy/build.js'
import type { CompiledGrant } from './compile.js'
import { fillPrefix, isSafePrefix } from './template.js'

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

function pickGrant (grants: readonly CompiledGrant[], issuerName: string, claims: Record<string, unknown>, name: unknown): CompiledGrant {
  const candidates = grants.filter((g) => isCandidate(g, issuerName, claims))
  if (name !== undefined) {
    const named = typeof name === 'string' ? candidates.find((g) => g.config.name === name) : undefined
    if (named === undefined) throw new GrantNotAllowed()
    return named
  }
  if (candidates.length === 0) throw new GrantNotAllowed()
  if (candidates.length > 1) throw new GrantAmbiguous()
  return candidates[0] as CompiledGrant
}

function narrowActions (allowed: readonly Action[], asked: unknown): Action[] {
  if (asked === undefined) return canonicalActions(allowed)
  if (!Array.isArray(asked) || asked.length === 0) throw new ActionsNotAllowed()
  for (const a of asked) {
    if (!isAction(a) || !allowed.includes(a)) throw new ActionsNotAllowed()
  }
  return canonicalActions(asked as Action[])
}

function narrowDuration (max: number, asked: unknown): number {
  if (asked === undefined) return max
  if (typeof asked !== 'number' || !Number.isInteger(asked) || asked < MIN_DURATION_SECONDS || asked > max) {
    throw new DurationNotAllowed()
  }
  return asked
}

function narrowPrefix (grantPrefix: string, asked: unknown): string {
  if (asked === undefined) return grantPrefix
  // grantPrefix ends with "/", so a string prefix test is a directory test.
  if (!isSafePrefix(asked) || !asked.startsWith(grantPrefix)) throw new PrefixNotAllowed()
  return asked
}

export function resolveGrant (
  grants: readonly CompiledGrant[], issuerName: string, claims: Record<string, unknown>, req: VendRequest
): ResolvedGrant {
  // The verifier hands in an object; anything else is not a usable identity.
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new ClaimNotUsable()
  const picked = pickGrant(grants, issuerName, claims, req.grant)
  const grant = picked.config
  const grantPrefix = fillPrefix(picked.template, claims, issuerName)
  if (grantPrefix === undefined) throw new ClaimNotUsable()
  const prefix = narrowPrefix(grantPrefix, req.prefix)
  const actions = narrowActions(grant.actions, req.actions)
  const durationSeconds = narrowDuration(grant.durationSeconds, req.durationSeconds)
  const policy = serializePolicy(buildSessionPolicy(grant.bucket, prefix, actions))
  // Grant compilation bounds the grant's own directory; a longer requested prefix can
  // still push the policy over what STS takes.
  if (Buffer.byteLength(policy, 'utf8') > POLICY_MAX_BYTES) throw new PrefixNotAllowed()
  return { grant, prefix, grantPrefix, actions, durationSeconds, policy }
}
