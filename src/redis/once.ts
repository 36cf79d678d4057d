// "Only once" for the fleet: the first claim of a name wins (SET NX PX), every later
// claim on any replica loses until the name expires. Used for upload-callback tickets.
// Redis is shared state, not a dependency to fail on: when a command fails the claim
// is decided by this replica's own memory (a replay to the same replica is still
// refused), and the error is counted.
import type { RedisClient } from './connection.js'

export interface OnceStore {
  /** True the first time `name` is claimed within `ttlMs`; false after. */
  claim (name: string, ttlMs: number): Promise<boolean>
}

/** This replica's memory: a bounded map of names to their expiry. */
export function createLocalOnce (opts: { now: () => number, maxEntries?: number }): OnceStore {
  const seen = new Map<string, number>()
  const max = opts.maxEntries ?? 100_000
  return {
    async claim (name, ttlMs) {
      const now = opts.now()
      const until = seen.get(name)
      if (until !== undefined && until > now) return false
      seen.delete(name)
      // Oldest first: drop what has expired, then, if still full, the oldest claim.
      for (const [k, v] of seen) {
        if (seen.size < max && v > now) break
        seen.delete(k)
      }
      seen.set(name, now + ttlMs)
      return true
    }
  }
}

export function createRedisOnce (redis: RedisClient, name: (n: string) => string, local: OnceStore, onError?: () => void): OnceStore {
  return {
    async claim (n, ttlMs) {
      try {
        const ok = await redis.set(name(n), '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')
        // Remember it here too, so a later fallback to memory still knows it.
        await local.claim(n, ttlMs)
        return ok === 'OK'
      } catch {
        onError?.()
        return await local.claim(n, ttlMs)
      }
    }
  }
}
