// Credentials cache. An entry lives until its Expiration minus the margin
// (cache.minRemainingSeconds) and is never returned with less validity left than
// that; concurrent misses for one key share one upstream call; failures are never
// stored; memory is bounded by maxEntries (LRU). maxEntries = 0 disables both the
// cache and the coalescing (the "naive" design, kept for benchmarks). With Redis,
// this is the first level: its loader reads the shared level (redis/shared-cache.ts).
//
// lru-cache's own fetch() was weighed for the single-flight and not used: the ttl
// depends on the fetched Expiration (set by mutating the fetch options), an entry
// evicted while in flight aborts every waiter unless told otherwise, and
// maxEntries = 0 would still need this path; the map below is shorter than that.
import { createHash } from 'node:crypto'
import { growingLru } from './lru.js'
import type { StsCredentials } from '../alicloud/sts-types.js'

export interface CacheEvents {
  hit?: () => void
  miss?: () => void
  coalesced?: () => void
  evicted?: () => void
}

export interface CacheLookup { credentials: StsCredentials, fromCache: boolean }

export interface CredentialCache {
  /** Fresh-enough cached credentials, else the fetcher's result (shared by concurrent callers). */
  getOrFetch (key: string, fetch: () => Promise<StsCredentials>): Promise<CacheLookup>
  /** The same, with a loader that says itself whether it found them in a cache (the shared level). */
  getOrLoad (key: string, load: () => Promise<CacheLookup>): Promise<CacheLookup>
  /** Cached credentials still above the margin, without fetching. */
  peek (key: string): StsCredentials | undefined
  /** A hit, counted as getOrLoad counts one, without a promise; undefined otherwise (nothing is loaded). */
  cached (key: string): CacheLookup | undefined
  /**
   * Drop the entry under this key; a load in flight for it still answers those waiting
   * on it but is not kept (a deny forgets a caller whose request was on its way).
   */
  delete (key: string): void
  readonly size: number
  clear (): void
}

export interface CacheOptions {
  maxEntries: number
  minRemainingSeconds: number
  now?: () => number
  events?: CacheEvents
  /** An entry left the cache (expired, deleted, or evicted when no longer usable), by key: the caller index follows it. */
  onDrop?: (key: string) => void
}

/**
 * The cache key: everything that shapes the credentials, hashed to a fixed size. A
 * SourceIdentity is appended only when there is one, so keys without it stay what
 * they were (a rolling upgrade keeps the fleet's shared entries).
 */
export function cacheKey (parts: { roleArn: string, policy: string, durationSeconds: number, roleSessionName: string, externalId?: string | undefined, sourceIdentity?: string | undefined }): string {
  const shape: unknown[] = [parts.roleArn, parts.policy, parts.durationSeconds, parts.roleSessionName, parts.externalId ?? null]
  if (parts.sourceIdentity !== undefined) shape.push(parts.sourceIdentity)
  return createHash('sha256').update(JSON.stringify(shape)).digest('base64url')
}

export function createCredentialCache (opts: CacheOptions): CredentialCache {
  const now = opts.now ?? Date.now
  const marginMs = opts.minRemainingSeconds * 1000
  const ev = opts.events ?? {}
  const onDrop = opts.onDrop
  const inflight = new Map<string, Promise<CacheLookup>>()
  /** Keys deleted while their load was in flight: that load's result is not kept. */
  const discarded = new Set<string>()
  const lru = opts.maxEntries > 0
    ? growingLru<string, StsCredentials>(opts.maxEntries, {
      ttlAutopurge: false,
      perf: { now },
      dispose: (v, k, reason) => {
        if (reason === 'evict') ev.evicted?.()
        // Evicted for room while still usable, it may still be in the shared level: its
        // key stays known (the index has its own bound) so that a deny can reach it there.
        if (onDrop !== undefined && reason !== 'set' && (reason !== 'evict' || !usable(v))) onDrop(k)
      }
    })
    : undefined

  function usable (c: StsCredentials): boolean {
    return c.expiration.getTime() - now() >= marginMs
  }

  function peek (key: string): StsCredentials | undefined {
    const c = lru?.get(key)
    if (c === undefined) return undefined
    if (!usable(c)) {
      lru?.delete(key)
      return undefined
    }
    return c
  }

  function cached (key: string): CacheLookup | undefined {
    const credentials = peek(key)
    if (credentials === undefined) return undefined
    ev.hit?.()
    return { credentials, fromCache: true }
  }

  async function getOrLoad (key: string, load: () => Promise<CacheLookup>): Promise<CacheLookup> {
    if (lru === undefined) {
      ev.miss?.()
      return await load()
    }
    const hit = cached(key)
    if (hit !== undefined) return hit
    const pending = inflight.get(key)
    if (pending !== undefined) {
      ev.coalesced?.()
      return await pending
    }
    ev.miss?.()
    const p = load().then((r) => {
      const ttl = r.credentials.expiration.getTime() - marginMs - now()
      if (ttl > 0 && !discarded.has(key)) lru.set(key, r.credentials, { ttl })
      return r
    }).finally(() => {
      inflight.delete(key)
      discarded.delete(key)
    })
    inflight.set(key, p)
    return await p
  }

  return {
    peek,
    cached,
    get size () { return lru?.size ?? 0 },
    clear () { lru?.clear() },
    delete (key) {
      lru?.delete(key)
      if (inflight.has(key)) discarded.add(key)
    },
    getOrLoad,
    async getOrFetch (key, fetch) {
      return await getOrLoad(key, async () => ({ credentials: await fetch(), fromCache: false }))
    }
  }
}
