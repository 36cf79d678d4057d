// Token buckets for upstream calls: the fleet's AssumeRole budget and each caller's
// budget of upstream calls. A bucket starts full, holds `capacity` tokens and refills
// at `ratePerSecond`; taking a token either succeeds or says how long until the next
// one. The arithmetic is one function (takeToken); the Redis form runs it as a Lua
// script on Redis's own clock, atomic across replicas; the local form runs it in
// memory, without Redis and whenever Redis fails.
import { takeToken, type BucketState } from '../core/index.js'
import { growingLru } from '../cache/lru.js'
import type { RedisClient } from './connection.js'
import { CallerBudgetExhausted, StsBudgetExhausted, withRetryAfter } from '../errors.js'

export interface Take { ok: boolean, retryAfterMs: number }

export interface Buckets {
  take (name: string, capacity: number, ratePerSecond: number): Promise<Take>
}

// takeToken (core/token-bucket.ts) in Lua, line for line, atomic across replicas. KEYS[1] bucket; ARGV capacity,
// rate/s and, optionally, the time in ms. The time is Redis's own clock (pods' clocks
// differ); ARGV[3] exists only so that test/redis/budget.test.ts can drive this script
// and takeToken with the same times: the service never passes it. The state is a hash
// that expires once the bucket would be full again anyway; tokens are stored with 17
// significant digits (tostring keeps 14), so that a stored count reads back exactly.
// Redis is writable by others: a key of another type is replaced and a state outside
// its range (negative or NaN tokens, say) is reset to a full bucket, as takeToken does,
// so no writer can refuse the fleet's calls for good.
const TAKE = `
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'hash' then redis.call('DEL', KEYS[1]) end
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil or not (tokens >= 0 and tokens <= cap) or at ~= at or at == math.huge or at == -math.huge then tokens = cap; at = now end
if now > at then tokens = math.min(cap, tokens + (now - at) * rate / 1000) end
local ok = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) * 1000 / rate) + 1000)
return { ok, wait }`

export function createRedisBuckets (redis: RedisClient, opts: { nowForTest?: () => number } = {}): Buckets {
  return {
    async take (name, capacity, ratePerSecond) {
      const args = opts.nowForTest === undefined ? [capacity, ratePerSecond] : [capacity, ratePerSecond, opts.nowForTest()]
      const [ok, wait] = await redis.eval(TAKE, 1, name, ...args) as [number, number]
      return { ok: ok === 1, retryAfterMs: wait }
    }
  }
}

export function createLocalBuckets (opts: { now: () => number, maxBuckets: number }): Buckets {
  const buckets = growingLru<string, BucketState>(opts.maxBuckets)
  return {
    async take (name, capacity, rate) {
      const { ok, retryAfterMs, state } = takeToken(buckets.get(name), opts.now(), capacity, rate)
      buckets.set(name, state)
      return { ok, retryAfterMs }
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
