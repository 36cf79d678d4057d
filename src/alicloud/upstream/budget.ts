// The per-instance call budget: a token bucket of `perSecond` tokens, full at start and
// refilled continuously. The account allows ~100 AssumeRole/s for every replica together,
// so each instance spends at most its share and answers the excess itself instead of
// letting STS throttle everyone. The clock is injected; one that steps back adds nothing.

export interface CallBudget {
  /** Takes one call from the budget; false when it is spent for now. */
  take: () => boolean
}

export function createCallBudget (opts: { perSecond: number, now: () => number }): CallBudget {
  if (!(opts.perSecond > 0)) throw new RangeError('perSecond must be positive')
  let tokens = opts.perSecond
  let refilledAt = opts.now()
  return {
    take () {
      const t = opts.now()
      tokens = Math.min(opts.perSecond, tokens + (Math.max(0, t - refilledAt) / 1000) * opts.perSecond)
      refilledAt = t
      if (tokens < 1) return false
      tokens -= 1
      return true
    }
  }
}
