// How a request's upstream work ended, in two readings: the answer the caller gets (an
// error of the registry, never upstream text) and what it says about STS's health (the
// breaker's outcome). Kept together so that the two cannot drift apart.
import * as E from '../../errors.js'
import { withRetryAfter } from '../../errors.js'
import { StsError } from '../sts-client.js'
import { DeadlineExceeded } from './retry.js'
import type { RequestOutcome } from './breaker.js'

/** The call budget was spent before an attempt; `after` is the failure of the attempt before, if any. */
export class BudgetSpent extends Error {
  override name = 'BudgetSpent'
  constructor (readonly after: unknown) { super('the call budget is spent') }
}

/** What the caller is told. */
export function publicError (err: unknown): Error {
  if (err instanceof BudgetSpent) return err.after === undefined ? withRetryAfter(new E.StsBudgetExhausted(), 1) : publicError(err.after)
  if (err instanceof DeadlineExceeded) return withRetryAfter(new E.UpstreamTimeout(), 2)
  if (!(err instanceof StsError)) return new E.Internal()
  switch (err.kind) {
    case 'throttled': return withRetryAfter(new E.UpstreamThrottled(), Math.max(1, (err.retryAfterMs ?? 1000) / 1000))
    case 'unavailable': return withRetryAfter(err.timedOut ? new E.UpstreamTimeout() : new E.UpstreamUnavailable(), 2)
    case 'bad_response': return new E.UpstreamBadResponse()
    default: return new E.UpstreamRejected()
  }
}

/**
 * What it says about STS: timeouts, 5xx, throttling and connection failures that outlived
 * the retries are failures; a refusal of ours before any attempt, a 4xx or an unusable
 * answer (STS is up, the service is misconfigured) and our own bugs are neutral.
 */
export function breakerOutcome (err: unknown): RequestOutcome {
  if (err instanceof BudgetSpent) return err.after === undefined ? 'neutral' : breakerOutcome(err.after)
  if (err instanceof DeadlineExceeded) return 'failure'
  if (err instanceof StsError) return err.kind === 'throttled' || err.kind === 'unavailable' ? 'failure' : 'neutral'
  return 'neutral'
}

/** Worth another attempt: the upstream may answer differently next time. */
export function isTransient (err: unknown): err is StsError {
  return err instanceof StsError && (err.kind === 'throttled' || err.kind === 'unavailable')
}
