// The upstream as the rest of the service sees it: one AssumeRole under an overall
// deadline, with bounded retries (capped exponential backoff, full jitter, honouring
// throttling hints), a retry quota so retries cannot multiply load during an outage
// (the AWS SDKs' standard mode: 500 tokens, 5 per retry, 10 per timeout retry, 1 back
// per success), a per-instance call budget (the account allows ~100 AssumeRole/s in
// all, shared by every replica), and a circuit breaker that fails fast while STS is
// down and lets a single probe through after resetTimeoutMs.
import * as E from '../errors.js'
import { withRetryAfter } from '../errors.js'
import { StsError, type AssumeRoleInput, type StsClient, type StsCredentials } from './sts-client.js'

export type BreakerState = 'closed' | 'open' | 'half-open'
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
  breaker: { failureThreshold: number, resetTimeoutMs: number }
  now?: () => number
  /** Backoff sleep; injectable so tests can record the spacing without waiting. */
  sleep?: (ms: number) => Promise<void>
  random?: () => number
  events?: UpstreamEvents
  log?: { warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
}

export interface Upstream {
  assumeRole (input: AssumeRoleInput): Promise<StsCredentials>
  breakerState (): BreakerState
}

const RETRY_QUOTA = 500
const RETRY_COST = 5
const TIMEOUT_RETRY_COST = 10

const realSleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

class DeadlineExceeded extends Error {}

export function createUpstream (opts: UpstreamOptions): Upstream {
  const now = opts.now ?? Date.now
  const sleep = opts.sleep ?? realSleep
  const random = opts.random ?? Math.random
  const ev = opts.events ?? {}

  // Token bucket for the per-instance call budget.
  let tokens = opts.maxCallsPerSecond
  let refilledAt = now()
  function takeCallToken (): boolean {
    const t = now()
    tokens = Math.min(opts.maxCallsPerSecond, tokens + (Math.max(0, t - refilledAt) / 1000) * opts.maxCallsPerSecond) // clocks may step back
    refilledAt = t
    if (tokens < 1) return false
    tokens -= 1
    return true
  }

  let retryQuota = RETRY_QUOTA

  // Circuit breaker.
  let state: BreakerState = 'closed'
  let failures = 0
  let openedAt = 0
  let probing = false
  function setState (s: BreakerState): void {
    if (s !== state) {
      state = s
      ev.breaker?.(s)
    }
  }
  function currentState (): BreakerState {
    if (state === 'open' && now() - openedAt >= opts.breaker.resetTimeoutMs) setState('half-open')
    return state
  }
  function recordSuccess (): void {
    failures = 0
    setState('closed')
  }
  function recordFailure (): void {
    failures++
    if (state === 'half-open' || failures >= opts.breaker.failureThreshold) {
      openedAt = now()
      setState('open')
    }
  }

  async function attemptWithin (input: AssumeRoleInput, deadline: number): Promise<StsCredentials> {
    const remaining = deadline - now()
    if (remaining <= 0) throw new DeadlineExceeded()
    let timer: NodeJS.Timeout | undefined
    const deadlineHit = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceeded()), remaining)
    })
    const started = performance.now()
    const call = opts.client.assumeRole(input)
    try {
      const creds = await Promise.race([call, deadlineHit])
      ev.attempt?.('ok', (performance.now() - started) / 1000)
      return creds
    } catch (err) {
      if (err instanceof DeadlineExceeded) {
        ev.attempt?.('unavailable', (performance.now() - started) / 1000)
        call.catch(() => {}) // the client's own timeout ends the socket
      } else if (err instanceof StsError) {
        ev.attempt?.(err.kind === 'bad_response' ? 'bad_response' : err.kind, (performance.now() - started) / 1000)
      }
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  function publicError (err: unknown, deadlineHit: boolean): Error {
    if (deadlineHit || err instanceof DeadlineExceeded) return withRetryAfter(new E.UpstreamTimeout(), 2)
    if (!(err instanceof StsError)) return new E.Internal()
    switch (err.kind) {
      case 'throttled': return withRetryAfter(new E.UpstreamThrottled(), Math.max(1, (err.retryAfterMs ?? 1000) / 1000))
      case 'unavailable': return withRetryAfter(err.timedOut ? new E.UpstreamTimeout() : new E.UpstreamUnavailable(), 2)
      case 'bad_response': return new E.UpstreamBadResponse()
      default: return new E.UpstreamRejected()
    }
  }

  async function assumeRole (input: AssumeRoleInput): Promise<StsCredentials> {
    const s = currentState()
    if (s === 'open' || (s === 'half-open' && probing)) {
      const wait = s === 'open' ? (opts.breaker.resetTimeoutMs - (now() - openedAt)) / 1000 : 1
      throw withRetryAfter(new E.CircuitOpen(), wait)
    }
    const isProbe = s === 'half-open'
    if (isProbe) probing = true
    const deadline = now() + opts.deadlineMs
    let lastErr: unknown
    try {
      for (let attempt = 1; attempt <= opts.maxAttempts; attempt++) {
        if (!takeCallToken()) {
          ev.budgetExhausted?.()
          if (attempt === 1) throw withRetryAfter(new E.StsBudgetExhausted(), 1)
          throw publicError(lastErr, false)
        }
        try {
          const creds = await attemptWithin(input, deadline)
          recordSuccess()
          if (attempt === 1) retryQuota = Math.min(RETRY_QUOTA, retryQuota + 1)
          return creds
        } catch (err) {
          lastErr = err
          if (err instanceof DeadlineExceeded) {
            recordFailure()
            throw publicError(err, true)
          }
          if (!(err instanceof StsError)) throw publicError(err, false)
          if (err.kind === 'rejected' || err.kind === 'bad_response') {
            // Not the upstream's fault: retrying would not help, and the breaker stays as it is.
            ev.rejected?.(err.code)
            opts.log?.error({ err }, 'STS refused the request: check the role, its trust policy and the RAM user')
            throw publicError(err, false)
          }
          recordFailure()
          if (attempt === opts.maxAttempts || isProbe || currentState() === 'open') throw publicError(err, false)
          const cost = err.timedOut ? TIMEOUT_RETRY_COST : RETRY_COST
          if (retryQuota < cost) throw publicError(err, false)
          const cap = Math.min(opts.backoffMaxMs, opts.backoffBaseMs * 2 ** (attempt - 1))
          let delay = random() * cap
          if (err.kind === 'throttled' && err.retryAfterMs !== undefined) delay = Math.max(delay, err.retryAfterMs)
          if (now() + delay >= deadline) throw publicError(err, false)
          retryQuota -= cost
          ev.retry?.()
          opts.log?.warn({ err, attempt, delayMs: Math.round(delay) }, 'retrying AssumeRole')
          await sleep(delay)
        }
      }
      throw publicError(lastErr, false)
    } finally {
      if (isProbe) probing = false
    }
  }

  return { assumeRole, breakerState: currentState }
}
