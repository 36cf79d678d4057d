// Where every credential comes from, written once for vending (vend.ts) and signing
// (sign.ts): this replica's cache, then the fleet's shared level (with Redis), then,
// behind the upstream budgets, one AssumeRole; and whatever comes back is checked
// against the freshness margin before anyone uses it (fail closed, whatever STS or
// another replica said).
//
// A use case decides what to assume and hands in an order (`order()`, built once per
// decision and remembered with it); `obtain(order)` is then one lookup in the local
// cache. Nothing is allocated and nothing more is awaited on a hit: the loader that a
// miss runs lives in the order. The margin check runs inside that loader, on what the
// shared level or STS returned; a local hit needs none, because the local cache is
// built here with the same margin and clock and never returns an entry below it.
//
// Budgets: a caller's order takes the caller's budget and then the fleet's; a grant's
// signing order takes the fleet's alone (the credential is the grant's, not a caller's).
// Signing's shift: the signing credential must outlive every form or URL signed with it,
// so its Expiration is moved `shiftSeconds` earlier as soon as STS answers, before any
// cache level stores it; the one margin rule then means "refresh while shiftSeconds +
// margin are left", and every replica stores the same shifted Expiration.
//
// Forgetting (a deny, redis/deny.ts): a caller's order notes its key in a bounded
// caller index (cache/caller-keys.ts) when it loads, on a miss only, so a hit stays one
// lookup. `forgetNamed` deletes those keys here and at the shared level; the next order
// after an `allow` is a miss and one fresh AssumeRole. A load that was on its way when
// its caller was forgotten still answers that request but leaves nothing behind, at
// either level. Signing orders are the grant's, not a caller's: never indexed, never
// forgotten.
import { UpstreamBadResponse } from './errors.js'
import { createCredentialCache, type CacheEvents, type CacheLookup } from './cache/credential-cache.js'
import { createCallerKeys, type CallerEntry } from './cache/caller-keys.js'
import type { StsCredentials } from './alicloud/sts-types.js'
import type { Upstream } from './alicloud/upstream/index.js'
import type { SharedCache } from './redis/shared-cache.js'
import type { UpstreamGate } from './redis/budget.js'

/** What to assume: the AssumeRole parameters (the policy built and checked by policy/). */
export interface Assumption {
  roleArn: string
  policy: string
  durationSeconds: number
  roleSessionName: string
  externalId?: string | undefined
  /** The end user, for ActionTrail (grants[].sourceIdentity). */
  sourceIdentity?: string | undefined
}

export interface OrderSpec {
  /** The cache key of these credentials at every level. */
  key: string
  assume: Assumption
  /** Whose upstream budget a miss takes: a caller's (`issuer\nsubject`, then the fleet's) or the fleet's alone. */
  budget: { callerId: string } | 'fleet'
  /** Seconds the Expiration is moved earlier before it is stored (signing); 0 or absent for vending. */
  shiftSeconds?: number
}

/** Built by `order()`; opaque to the use cases. */
export interface CredentialOrder {
  readonly key: string
  readonly load: () => Promise<CacheLookup>
}

export interface CredentialSourceOptions {
  upstream: Upstream
  now: () => number
  /** Never hand out credentials with less validity left (cache.minRemainingSeconds). */
  minRemainingSeconds: number
  /** This replica's cache: its size bound (0: no cache, no coalescing) and events. */
  local: { maxEntries: number, events?: CacheEvents }
  /** The second level, shared by the fleet (with Redis). */
  shared?: SharedCache | undefined
  /** Budgets taken right before an AssumeRole (per caller; per fleet with Redis). */
  gate?: UpstreamGate | undefined
  /** A caller's name in the fleet's deny list (an HMAC of its id), for `forgetNamed`. */
  denyName?: ((callerId: string) => string) | undefined
}

/**
 * Keys one caller may have indexed. A client asks for one or two shapes; a key past this
 * leaves the local cache with the index (still shared), so the bound must sit well above
 * any honest client's shapes (vend.ts remembers 8 per token, and a caller has tokens in turn).
 */
export const KEYS_PER_CALLER = 64
/** The caller index's floor: with a small (or no) local cache, the shared level's keys still need finding. */
export const MIN_INDEXED_CALLERS = 10_000

export interface CredentialSource {
  order (spec: OrderSpec): CredentialOrder
  obtain (order: CredentialOrder): Promise<CacheLookup>
  /** What obtain would answer from this replica's cache, without a promise; undefined when it would have to load. */
  cached (order: CredentialOrder): CacheLookup | undefined
  /**
   * Drop every credential this replica loaded for each indexed caller whose deny-list
   * name is in `names`, here and at the shared level (resolves when the shared level has
   * answered). How many keys it dropped.
   */
  forgetNamed (names: ReadonlySet<string>): Promise<number>
  /** Entries in the local cache (the cache-size gauge). */
  readonly size: number
}

export function createCredentialSource (opts: CredentialSourceOptions): CredentialSource {
  const { upstream, now, shared, gate } = opts
  const marginMs = opts.minRemainingSeconds * 1000
  // The index lets a key go only with the local entry under it (onRelease), so every local entry of a caller can be forgotten.
  const callers = createCallerKeys({ maxCallers: Math.max(opts.local.maxEntries, MIN_INDEXED_CALLERS), keysPerCaller: KEYS_PER_CALLER, name: opts.denyName, onRelease: (key) => { cache.delete(key) } })
  const cache = createCredentialCache({ maxEntries: opts.local.maxEntries, minRemainingSeconds: opts.minRemainingSeconds, now, onDrop: callers.drop, ...(opts.local.events !== undefined ? { events: opts.local.events } : {}) })

  async function forgetEntries (entries: CallerEntry[]): Promise<number> {
    const keys = entries.flatMap((e) => [...e.keys])
    for (const key of keys) cache.delete(key)
    if (shared !== undefined) await Promise.all(keys.map(async (key) => { await shared.forget(key) }))
    return keys.length
  }

  function order (spec: OrderSpec): CredentialOrder {
    const { key, budget } = spec
    const shiftMs = (spec.shiftSeconds ?? 0) * 1000
    const input = Object.freeze({
      roleArn: spec.assume.roleArn,
      roleSessionName: spec.assume.roleSessionName,
      durationSeconds: spec.assume.durationSeconds,
      policy: spec.assume.policy,
      ...(spec.assume.externalId !== undefined ? { externalId: spec.assume.externalId } : {}),
      ...(spec.assume.sourceIdentity !== undefined ? { sourceIdentity: spec.assume.sourceIdentity } : {})
    })
    const take = budget === 'fleet'
      ? async () => { await gate?.takeFleet() }
      : async () => { await gate?.take(budget.callerId) }
    // With the shared level, the call gets what is left of the request's deadline after
    // any wait for another replica (and after the budgets' own Redis round trip).
    const assumeRole = async (remainingMs?: () => number): Promise<StsCredentials> => {
      await take()
      // A fresh object per call: upstreams (and the tests' recorders) may keep what they are handed.
      const c = await upstream.assumeRole({ ...input }, { withinMs: remainingMs?.() })
      return shiftMs === 0 ? c : { ...c, expiration: new Date(c.expiration.getTime() - shiftMs) }
    }
    const callerId = budget === 'fleet' ? undefined : budget.callerId
    const load = async (): Promise<CacheLookup> => {
      const noted = callerId === undefined ? undefined : callers.note(callerId, key)
      const found = shared !== undefined
        ? await shared.getOrLoad(key, assumeRole)
        : { credentials: await assumeRole(), fromCache: false }
      // Forgotten while loading: the local cache will not keep it (cache.delete); nor may the shared level.
      if (noted?.forgotten === true && shared !== undefined) await shared.forget(key)
      // Fail closed: never hand out credentials below the margin, whatever STS or a shared entry said.
      if (found.credentials.expiration.getTime() - now() < marginMs) throw new UpstreamBadResponse()
      return found
    }
    return Object.freeze({ key, load })
  }

  return {
    order,
    obtain: (o) => cache.getOrLoad(o.key, o.load),
    cached: (o) => cache.cached(o.key),
    forgetNamed: async (names) => await forgetEntries(callers.takeNamed(names)),
    get size () { return cache.size }
  }
}
