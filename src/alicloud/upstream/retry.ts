// The retry loop of one request: attempts under one overall deadline, capped exponential
// backoff with full jitter (delay = random() x min(max, base x 2^(n-1))), raised to the
// least delay a failure asks for (a throttling hint). A retry that could not start before
// the deadline is not made. What may be retried, and whether the retry quota or the
// breaker still allow it, the caller decides through the hooks; the loop knows nothing of
// STS. Clock, sleep, randomness and the deadline timer are injected.

/** The overall deadline passed; the attempt under way was abandoned. */
export class DeadlineExceeded extends Error {
  override name = 'DeadlineExceeded'
  constructor () { super('the request deadline passed') }
}

export interface Timer {
  fired: Promise<void>
  cancel: () => void
}

export interface RetryClock {
  now: () => number
  sleep: (ms: number) => Promise<void>
  random: () => number
  /** A one-shot timer for the deadline. */
  timer: (ms: number) => Timer
}

export interface RetryPolicy {
  maxAttempts: number
  backoffBaseMs: number
  backoffMaxMs: number
  deadlineMs: number
}

export interface RetryHooks<T> {
  /** Before each attempt; whatever it throws ends the loop as is (the call budget). */
  beforeAttempt?: (attempt: number, lastError: unknown) => void
  attempt: (attempt: number) => Promise<T>
  /** After a failed attempt (never the last): the least delay a retry needs, or undefined to give up. */
  retryable: (err: unknown, attempt: number) => { minDelayMs: number } | undefined
  /** Last word once the delay fits the deadline (the retry quota pays here); false gives up. */
  permit?: (err: unknown) => boolean
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void
  /** Every attempt that started, when it ended (error undefined on success). */
  onAttempt?: (err: unknown, seconds: number) => void
}

export const realTimer = (ms: number): Timer => {
  let handle: NodeJS.Timeout | undefined
  const fired = new Promise<void>((resolve) => { handle = setTimeout(resolve, ms) })
  return { fired, cancel: () => clearTimeout(handle) }
}

export const realSleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function within<T> (call: Promise<T>, ms: number, timer: RetryClock['timer']): Promise<T> {
  const t = timer(ms)
  try {
    return await Promise.race([call, t.fired.then((): never => { throw new DeadlineExceeded() })])
  } finally {
    t.cancel()
  }
}

export async function withRetries<T> (policy: RetryPolicy, clock: RetryClock, hooks: RetryHooks<T>): Promise<T> {
  const deadline = clock.now() + policy.deadlineMs
  let lastError: unknown
  for (let attempt = 1; ; attempt++) {
    const remaining = deadline - clock.now()
    if (remaining <= 0) throw new DeadlineExceeded()
    hooks.beforeAttempt?.(attempt, lastError)
    const started = performance.now()
    const call = hooks.attempt(attempt)
    try {
      const value = await within(call, remaining, clock.timer)
      hooks.onAttempt?.(undefined, (performance.now() - started) / 1000)
      return value
    } catch (err) {
      hooks.onAttempt?.(err, (performance.now() - started) / 1000)
      // An abandoned attempt still settles later (the client's own timeout ends the socket).
      if (err instanceof DeadlineExceeded) { call.catch(() => {}); throw err }
      lastError = err
      if (attempt >= policy.maxAttempts) throw err
      const need = hooks.retryable(err, attempt)
      if (need === undefined) throw err
      const cap = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (attempt - 1))
      const delay = Math.max(clock.random() * cap, need.minDelayMs)
      if (clock.now() + delay >= deadline) throw err
      if (hooks.permit?.(err) === false) throw err
      hooks.onRetry?.(err, attempt, delay)
      await clock.sleep(delay)
    }
  }
}
