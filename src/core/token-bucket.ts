// The token bucket, written once: a bucket holds up to `capacity` tokens, starts full and
// refills continuously at `ratePerSecond`. Pure (the time comes in), so every counter of
// tokens uses it: the per-instance call budget (alicloud/upstream/budget.ts), the local
// upstream budgets (redis/budget.ts) and, transcribed line for line into Lua, the fleet's
// buckets in Redis (test/redis/budget.test.ts runs both over the same takes and compares).

/** A bucket between takes: its tokens and the time (ms) they were counted at. */
export interface BucketState { tokens: number, at: number }

/**
 * One take at `nowMs` from a bucket in `state` (undefined: never seen, so full). Refills
 * for the time since `at`, then takes a token or says how long until one. A clock that
 * stepped back refills nothing and counts again from its new reading: the budget never
 * grows from a step, and never stalls for one either.
 */
export function takeToken (state: BucketState | undefined, nowMs: number, capacity: number, ratePerSecond: number): { ok: boolean, retryAfterMs: number, state: BucketState } {
  // A state outside its range (it may come from Redis, which others can write) is
  // reset to a full bucket, never obeyed: it could otherwise refuse every call for good.
  const sane = state !== undefined && state.tokens >= 0 && state.tokens <= capacity && Number.isFinite(state.at)
  let tokens = sane ? state.tokens : capacity
  const at = sane ? state.at : nowMs
  if (nowMs > at) tokens = Math.min(capacity, tokens + (nowMs - at) * ratePerSecond / 1000)
  let ok = false
  let retryAfterMs = 0
  if (tokens >= 1) {
    tokens = tokens - 1
    ok = true
  } else {
    retryAfterMs = Math.ceil((1 - tokens) * 1000 / ratePerSecond)
  }
  return { ok, retryAfterMs, state: { tokens, at: nowMs } }
}
