// Per-caller request counters for @fastify/rate-limit, shared by the fleet through
// Redis, so that `rateLimit.max` holds for all replicas together instead of once per
// replica. The window is the plugin's own (a fixed window: the first request sets its
// TTL), the counter's name an HMAC of the caller (nothing in Redis names who is active).
//
// Why a store of our own rather than the plugin's `redis` option: with that option a
// Redis error either fails the request or, with `skipOnError`, drops the limit
// altogether. Here a Redis error (down, slow, WRONGTYPE) makes the replica count in
// memory instead: the request is served and the limit still holds per replica until
// Redis is back, as the upstream budgets do (redis/budget.ts).
import { growingLru } from '../cache/lru.js'
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { RedisClient } from './connection.js'

// KEYS[1] counter; ARGV[1] window (ms). What others may have written is not obeyed: a
// value that is not a counter starts again at 1, and a counter without a TTL or with
// one longer than the window gets the window, so that no caller is limited for good.
const INCR = `
local window = tonumber(ARGV[1])
local n = redis.pcall('INCR', KEYS[1])
if type(n) == 'table' then
  redis.call('DEL', KEYS[1])
  n = redis.call('INCR', KEYS[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 or ttl > window then
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
end
return { n, ttl }`

export interface SharedRateLimitOptions {
  redis: RedisClient
  /** The counter's Redis name for a rate-limit key (an HMAC, never the caller in plaintext). */
  name: (key: string) => string
  now?: () => number
  /** Callers counted in memory while Redis fails. */
  maxLocal?: number
  onError?: (err: unknown) => void
}

interface Window { count: number, resetAt: number }

/** A `store` for @fastify/rate-limit: one per surface, each with its own counter names. */
export function sharedRateLimitStore (opts: SharedRateLimitOptions): FastifyRateLimitStoreCtor {
  const now = opts.now ?? Date.now
  const local = growingLru<string, Window>(opts.maxLocal ?? 10_000)

  function countLocally (key: string, timeWindow: number): { current: number, ttl: number } {
    const t = now()
    let w = local.get(key)
    if (w === undefined || w.resetAt <= t) {
      w = { count: 0, resetAt: t + timeWindow }
      local.set(key, w)
    }
    w.count++
    return { current: w.count, ttl: w.resetAt - t }
  }

  class SharedStore implements FastifyRateLimitStore {
    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number): void {
      opts.redis.eval(INCR, 1, opts.name(key), timeWindow).then((reply) => {
        const [current, ttl] = reply as [number, number]
        callback(null, { current, ttl })
      }, (err: unknown) => {
        opts.onError?.(err)
        callback(null, countLocally(key, timeWindow))
      })
    }

    // Per-route limits are not used; a child counts under the same names.
    child (): FastifyRateLimitStore { return new SharedStore() }
  }
  return SharedStore
}
