// The upstream as the rest of the service sees it: one AssumeRole per request, admitted
// by the circuit breaker (breaker.ts), each attempt paid from the per-instance call budget
// (budget.ts), retried within one overall deadline (retry.ts) while the retry quota
// (retry-quota.ts) affords it, and every failure mapped to an error of the registry
// (errors.ts). Each part is small and takes its clock; this file only wires them.
//
// Why not cockatiel (evaluated, 3.2 and 4.0): its breaker, sampling windows and timers
// read Date.now() and setTimeout directly, so the injected clock (and the fake time the
// tests run on) would not reach them; in half-open it makes other callers *wait* for the
// probe instead of refusing them at once with Retry-After; its SamplingBreaker has a
// minimum rate, not a minimum number of requests; and it has no retry quota, no call
// budget and no backoff that can see a throttling hint without a custom backoff class.
// Wrapping it to keep those behaviours would take more code than these small parts
// (each under 150 lines with its comments), and 4.0 needs Node 22 (we support 20.18).
// Revisit if a later version takes a clock.
import type { StsClient } from '../sts-client.js'
import type { AssumeRoleInput, StsCredentials } from '../sts-types.js'
import { createBreaker, type BreakerSettings, type BreakerState } from './breaker.js'
import { createCallBudget } from './budget.js'
import { createRetryQuota } from './retry-quota.js'
import { realSleep, realTimer, withRetries, type Timer } from './retry.js'
import { BudgetSpent, breakerOutcome, isTransient, publicError } from './errors.js'
import * as E from '../../errors.js'
import { withRetryAfter } from '../../errors.js'
import { StsError } from '../sts-client.js'

export type AttemptOutcome = 'ok' | 'throttled' | 'unavailable' | 'rejected' | 'bad_response'

export interface UpstreamEvents {
  attempt?: (outcome: AttemptOutcome, seconds: number) => void
  retry?: () => void
  breaker?: (state: BreakerState) => void
  budgetExhausted?: () => void
  /** A non-retryable refusal: the service is misconfigured (alert on it). */
  rejected?: (code: string) => void
}

export interface UpstreamOptions {
  client: StsClient
  maxAttempts: number
  backoffBaseMs: number
  backoffMaxMs: number
  deadlineMs: number
  maxCallsPerSecond: number
  breaker: BreakerSettings
  now?: () => number
  /** Backoff sleep; injectable so tests can record the spacing without waiting. */
  sleep?: (ms: number) => Promise<void>
  random?: () => number
  /** The deadline timer; injectable for fake time. */
  timer?: (ms: number) => Timer
  events?: UpstreamEvents
  log?: { warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
}

/** Per call: `withinMs` shortens the deadline to what is left of the request's (a fleet waiter's own call). */
export interface CallOptions { withinMs?: number | undefined }

export interface Upstream {
  assumeRole (input: AssumeRoleInput, call?: CallOptions): Promise<StsCredentials>
  breakerState (): BreakerState
}

function attemptOutcome (err: unknown): AttemptOutcome {
  if (err === undefined) return 'ok'
  if (err instanceof StsError) return err.kind
  return 'unavailable' // the deadline cut the attempt off
}

export function createUpstream (opts: UpstreamOptions): Upstream {
  const now = opts.now ?? Date.now
  const clock = { now, sleep: opts.sleep ?? realSleep, random: opts.random ?? Math.random, timer: opts.timer ?? realTimer }
  const ev = opts.events ?? {}
  const budget = createCallBudget({ perSecond: opts.maxCallsPerSecond, now })
  const quota = createRetryQuota()
  const breaker = createBreaker({ ...opts.breaker, now, ...(ev.breaker !== undefined ? { onStateChange: ev.breaker } : {}) })

  async function assumeRole (input: AssumeRoleInput, call: CallOptions = {}): Promise<StsCredentials> {
    // A request with no time left gets its 504 without an attempt, which would only
    // count against the breaker although STS was never asked.
    if (call.withinMs !== undefined && call.withinMs <= 0) throw withRetryAfter(new E.UpstreamTimeout(), 2)
    const policy = call.withinMs !== undefined && call.withinMs < opts.deadlineMs ? { ...opts, deadlineMs: call.withinMs } : opts
    const admission = breaker.admit()
    if (!admission.admitted) throw withRetryAfter(new E.CircuitOpen(), admission.retryAfterMs / 1000)
    const { ticket } = admission
    let attempts = 0
    try {
      const creds = await withRetries(policy, clock, {
        beforeAttempt: (attempt, lastError) => {
          // The circuit opened while this request waited to retry: its last answer stands.
          if (attempt > 1 && breaker.state() !== 'closed') throw lastError
          if (!budget.take()) {
            ev.budgetExhausted?.()
            throw new BudgetSpent(lastError)
          }
          attempts = attempt
        },
        attempt: async () => await opts.client.assumeRole(input),
        // A probe is one attempt; once the circuit opened, nobody else retries either.
        retryable: (err) => isTransient(err) && !ticket.probe && breaker.state() === 'closed'
          ? { minDelayMs: err.kind === 'throttled' ? err.retryAfterMs ?? 0 : 0 }
          : undefined,
        permit: (err) => quota.spend(err instanceof StsError && err.timedOut),
        onRetry: (err, attempt, delayMs) => {
          ev.retry?.()
          opts.log?.warn({ err, attempt, delayMs: Math.round(delayMs) }, 'retrying AssumeRole')
        },
        onAttempt: (err, seconds) => ev.attempt?.(attemptOutcome(err), seconds)
      })
      if (attempts === 1) quota.refund()
      breaker.record(ticket, 'success')
      return creds
    } catch (err) {
      breaker.record(ticket, breakerOutcome(err))
      if (err instanceof StsError && (err.kind === 'rejected' || err.kind === 'bad_response')) {
        ev.rejected?.(err.code)
        opts.log?.error({ err }, 'STS refused the request: check the role, its trust policy and the RAM user')
      }
      throw publicError(err)
    }
  }

  return { assumeRole, breakerState: breaker.state }
}
