// The circuit breaker: its job is a real STS outage, not a blip. Retries are already
// bounded by the retry quota and the call budget, so it counts *requests*, not attempts:
// a request whose retries ran out is one failure, a request that succeeded after retries
// is a success, and outcomes that say nothing about STS's health (a refusal of ours, a
// 4xx from STS) are not counted at all.
//
// Closed: outcomes go into a rolling window of `windowMs` (ten slices). It opens when the
// window holds at least `minimumRequests` outcomes, failures make up at least
// `failureRatio` of them, and at least two requests failed, so a single slow or failed
// request never opens it, whatever the settings (the shape of resilience4j's and Polly's
// breakers).
// Open: every request is refused at once with the time left. After the open period one
// request, the probe, goes through (half-open); the others are still refused meanwhile.
// A probe that succeeds closes the circuit and resets the window and the open period; a
// probe that fails opens it again for twice as long, up to `maxOpenMs` (never below
// `openMs`), so a long outage costs STS one call per open period, not one per blip.
//
// The clock is injected; transitions from open to half-open happen when asked.

export type BreakerState = 'closed' | 'open' | 'half-open'
/** How a request ended, as far as STS's health goes. */
export type RequestOutcome = 'success' | 'failure' | 'neutral'

export interface BreakerSettings {
  failureRatio: number
  minimumRequests: number
  windowMs: number
  openMs: number
  maxOpenMs: number
}

export interface BreakerOptions extends BreakerSettings {
  now: () => number
  onStateChange?: (state: BreakerState) => void
}

/** Handed to an admitted request; its outcome is recorded with it. */
export interface Ticket {
  readonly probe: boolean
  readonly generation: number
}

export type Admission = { admitted: true, ticket: Ticket } | { admitted: false, retryAfterMs: number }

export interface Breaker {
  state: () => BreakerState
  admit: () => Admission
  record: (ticket: Ticket, outcome: RequestOutcome) => void
}

const SLICES = 10
/** What a request refused while the probe is out is told to wait. */
const PROBE_RETRY_AFTER_MS = 1000

interface Slice { index: number, successes: number, failures: number }

export function createBreaker (opts: BreakerOptions): Breaker {
  if (!(opts.failureRatio > 0 && opts.failureRatio <= 1)) throw new RangeError('failureRatio must be in (0, 1]')
  if (!(Number.isInteger(opts.minimumRequests) && opts.minimumRequests >= 1)) throw new RangeError('minimumRequests must be a positive integer')
  if (!(opts.windowMs >= SLICES && opts.openMs > 0)) throw new RangeError('windowMs and openMs must be positive')
  const now = opts.now
  const sliceMs = opts.windowMs / SLICES
  const ceilingMs = Math.max(opts.openMs, opts.maxOpenMs)

  let state: BreakerState = 'closed'
  // Bumped on every transition: an outcome from a request admitted under an earlier state
  // says nothing about the current one and is dropped.
  let generation = 0
  let openedAt = 0
  let openForMs = opts.openMs
  let probing = false
  let slices: Slice[] = []

  function setState (next: BreakerState): void {
    if (next === state) return
    state = next
    generation++
    opts.onStateChange?.(next)
  }

  function open (forMs: number): void {
    openForMs = forMs
    openedAt = now()
    probing = false
    setState('open')
  }

  function current (): BreakerState {
    if (state === 'open' && now() - openedAt >= openForMs) setState('half-open')
    return state
  }

  function push (failed: boolean): { successes: number, failures: number } {
    const index = Math.floor(now() / sliceMs)
    // Drop slices that left the window (or lie ahead of a clock that stepped back).
    slices = slices.filter((s) => index - s.index < SLICES && s.index <= index)
    let slice = slices.find((s) => s.index === index)
    if (slice === undefined) {
      slice = { index, successes: 0, failures: 0 }
      slices.push(slice)
    }
    if (failed) slice.failures++
    else slice.successes++
    return slices.reduce((sum, s) => ({ successes: sum.successes + s.successes, failures: sum.failures + s.failures }), { successes: 0, failures: 0 })
  }

  return {
    state: current,

    admit () {
      const s = current()
      if (s === 'closed') return { admitted: true, ticket: { probe: false, generation } }
      if (s === 'open') return { admitted: false, retryAfterMs: openForMs - (now() - openedAt) }
      if (probing) return { admitted: false, retryAfterMs: PROBE_RETRY_AFTER_MS }
      probing = true
      return { admitted: true, ticket: { probe: true, generation } }
    },

    record (ticket, outcome) {
      if (ticket.generation !== generation) return
      if (ticket.probe) {
        probing = false
        if (outcome === 'success') {
          slices = []
          openForMs = opts.openMs
          setState('closed')
        } else if (outcome === 'failure') {
          open(Math.min(ceilingMs, openForMs * 2))
        }
        // neutral: STS neither proved healthy nor failed; the next request probes.
        return
      }
      if (outcome === 'neutral') return
      const { successes, failures } = push(outcome === 'failure')
      const total = successes + failures
      if (outcome === 'failure' && failures >= 2 && total >= opts.minimumRequests && failures / total >= opts.failureRatio) {
        open(opts.openMs)
      }
    }
  }
}
