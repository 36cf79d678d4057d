// The per-instance call budget: a token bucket of `perSecond` tokens, full at start and
// refilled continuously. The account allows ~100 AssumeRole/s for every replica together,
// so each instance spends at most its share and answers the excess itself instead of
// letting STS throttle everyone. The clock is injected; one that steps back adds nothing
// (the bucket arithmetic is core/token-bucket.ts, shared with the upstream budgets).
import { takeToken, type BucketState } from '../../core/index.js'

export interface CallBudget {
  /** Takes one call from the budget; false when it is spent for now. */
  take: () => boolean
}

export function createCallBudget (opts: { perSecond: number, now: () => number }): CallBudget {
  if (!(opts.perSecond > 0)) throw new RangeError('perSecond must be positive')
  let state: BucketState | undefined
  return {
    take () {
      const taken = takeToken(state, opts.now(), opts.perSecond, opts.perSecond)
      state = taken.state
      return taken.ok
    }
  }
}
