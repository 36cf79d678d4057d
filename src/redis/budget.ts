// Token buckets for upstream calls: the fleet's AssumeRole budget and each caller's
// budget of upstream calls. A bucket starts full, holds `capacity` tokens and refills
// at `ratePerSecond`; taking a token either succeeds or says how long until the next
// one. The Redis form is one Lua script on Redis's own clock (pods' clocks differ),
// atomic across replicas; the local form is the same arithmetic in memory, used
// without Redis and whenever Redis fails.
import { growingLru } from '../cache/lru.js'
import type { RedisClient } from './connection.js'
import { CallerBudgetExhausted, StsBudgetExhausted, withRetryAfter } from '../errors.js'

export interface Take { ok: boolean, retryAfterMs: number }

export interface Buckets {
  take (name: string, capacity: number, ratePerSecond: number): Promise<Take>
}

// KEYS[1] bucket; ARGV capacity, rate/s. Stores tokens and the time of the last refill
// in a hash that expires once the bucket would be full again anyway.
const TAKE = `
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then tokens = cap; at = now end
if now > at then tokens = math.min(cap, tokens + (now - at) * rate / 1000) end
at = math.max(at, now)
local ok = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', at)
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) * 1000 / rate) + 1000)
return { ok, wait }`

export function createRedisBuckets (redis: RedisClient): Buckets {
  return {
    async take (name, capacity, ratePerSecond) {
      const [ok, wait] = await redis.eval(TAKE, 1, name, capacity, ratePerSecond) as [number, number]
      return { ok: ok === 1, retryAfterMs: wait }
    }
  }
}

export function createLocalBuckets (opts: { now: () => number, maxBuckets: number }): Buckets {
  const buckets = growingLru<string, { tokens: number, at: number }>(opts.maxBuckets)
  return {
    async take (name, capacity, rate) {
      const t = opts.now()
      const b = buckets.get(name) ?? { tokens: capacity, at: t }
      if (t > b.at) b.tokens = Math.min(capacity, b.tokens + (t - b.at) * rate / 1000)
      b.at = Math.max(b.at, t) // clocks may step back
      let result: Take
      if (b.tokens >= 1) {
        b.tokens -= 1
        result = { ok: true, retryAfterMs: 0 }
      } else {
        result = { ok: false, retryAfterMs: Math.ceil((1 - b.tokens) * 1000 / rate) }
      }
      buckets.set(name, b)
      return result
    }
  }
}

export interface GateEvents {
  callerRefused?: () => void
  fleetRefused?: () => void
  error?: (err: unknown) => void
}

export interface UpstreamGateOptions {
  /** Each caller's budget of upstream calls; max 0 turns it off. */
  perCaller: { max: number, timeWindowMs: number }
  /** The fleet's AssumeRole calls per second, with `shared`. */
  fleetPerSecond?: number | undefined
  local: Buckets
  shared?: Buckets | undefined
  /** The bucket name of a caller in Redis (an HMAC: names must not reveal who is active). */
  callerName: (callerId: string) => string
  events?: GateEvents
}

/**
 * Taken right before an AssumeRole, after every cache level missed: first the caller's
 * own budget (429), then the fleet's (503). A Redis failure falls back to the local
 * caller bucket and to the per-replica cap that the upstream enforces anyway.
 */
export interface UpstreamGate {
  take (callerId: string): Promise<void>
  /** The fleet's budget alone, for calls made for no caller in particular (a grant's signing credential). */
  takeFleet (): Promise<void>
}

export function createUpstreamGate (opts: UpstreamGateOptions): UpstreamGate {
  const ev = opts.events ?? {}
  const perCallerRate = opts.perCaller.max * 1000 / opts.perCaller.timeWindowMs
  async function shared (name: string, capacity: number, rate: number): Promise<Take | undefined> {
    if (opts.shared === undefined) return undefined
    try {
      return await opts.shared.take(name, capacity, rate)
    } catch (err) {
      ev.error?.(err)
      return undefined
    }
  }
  async function takeFleet (): Promise<void> {
    if (opts.fleetPerSecond === undefined) return
    const fleet = await shared('fleet-budget', opts.fleetPerSecond, opts.fleetPerSecond)
    if (fleet !== undefined && !fleet.ok) {
      ev.fleetRefused?.()
      throw withRetryAfter(new StsBudgetExhausted(), fleet.retryAfterMs / 1000)
    }
  }
  return {
    async take (callerId) {
      if (opts.perCaller.max > 0) {
        const name = opts.callerName(callerId)
        const mine = await shared(name, opts.perCaller.max, perCallerRate) ?? await opts.local.take(name, opts.perCaller.max, perCallerRate)
        if (!mine.ok) {
          ev.callerRefused?.()
          throw withRetryAfter(new CallerBudgetExhausted(), mine.retryAfterMs / 1000)
        }
      }
      await takeFleet()
    },
    takeFleet
  }
}
