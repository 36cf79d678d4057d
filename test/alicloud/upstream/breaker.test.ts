// The breaker on a fake clock: it counts requests in a rolling window, opens on a failure
// ratio once enough requests were seen, never on a single failure, lets one probe through
// after the open period, doubles that period while probes fail and resets on success.
import t from 'tap'
import { createBreaker, type Breaker, type BreakerSettings, type BreakerState, type RequestOutcome, type Ticket } from '../../../src/alicloud/upstream/breaker.js'

const DEFAULTS: BreakerSettings = { failureRatio: 0.5, minimumRequests: 10, windowMs: 30_000, openMs: 2000, maxOpenMs: 30_000 }

function setup (settings: Partial<BreakerSettings> = {}): { b: Breaker, states: BreakerState[], advance: (ms: number) => void, run: (outcome: RequestOutcome, n?: number) => void } {
  let clock = 1_700_000_000_000
  const states: BreakerState[] = []
  const b = createBreaker({ ...DEFAULTS, ...settings, now: () => clock, onStateChange: (s) => states.push(s) })
  return {
    b,
    states,
    advance: (ms) => { clock += ms },
    run (outcome, n = 1) {
      for (let i = 0; i < n; i++) {
        const a = b.admit()
        if (!a.admitted) throw new Error('not admitted')
        b.record(a.ticket, outcome)
      }
    }
  }
}

function ticketOf (b: Breaker): Ticket {
  const a = b.admit()
  if (!a.admitted) throw new Error('not admitted')
  return a.ticket
}

t.test('when it opens', async (t) => {
  const cases: Array<{ desc: string, settings?: Partial<BreakerSettings>, before: Array<[RequestOutcome, number]>, failures: number, opens: boolean }> = [
    { desc: 'one failed request alone', before: [], failures: 1, opens: false },
    { desc: 'one failed request, even with the loosest settings', settings: { minimumRequests: 1, failureRatio: 0.01 }, before: [['success', 1]], failures: 1, opens: false },
    { desc: 'two failed requests with the loosest settings', settings: { minimumRequests: 1, failureRatio: 0.01 }, before: [], failures: 2, opens: true },
    { desc: 'below minimumRequests', before: [], failures: 9, opens: false },
    { desc: 'at minimumRequests, all failed', before: [], failures: 10, opens: true },
    { desc: 'ratio just below', before: [['success', 11]], failures: 10, opens: false },
    { desc: 'ratio reached', before: [['success', 10]], failures: 10, opens: true },
    { desc: 'neutral outcomes are not counted', before: [['neutral', 50]], failures: 10, opens: true },
    { desc: 'neutral outcomes do not make up the minimum', before: [['neutral', 50]], failures: 9, opens: false }
  ]
  for (const c of cases) {
    const { b, run } = setup(c.settings)
    for (const [outcome, n] of c.before) run(outcome, n)
    run('failure', c.failures)
    t.equal(b.state(), c.opens ? 'open' : 'closed', c.desc)
  }
})

t.test('the window rolls: old failures drop out', async (t) => {
  const { b, run, advance } = setup()
  run('failure', 9)
  advance(30_000)
  run('failure', 1)
  t.equal(b.state(), 'closed', 'the nine older failures left the window')
  advance(10_000)
  run('failure', 8)
  t.equal(b.state(), 'closed', '9 in the window')
  advance(10_000)
  run('failure', 1)
  t.equal(b.state(), 'open', '10 failures within 30 s')
})

t.test('open: refused at once with the time left; then one probe', async (t) => {
  const { b, run, advance, states } = setup()
  run('failure', 10)
  t.same(b.admit(), { admitted: false, retryAfterMs: 2000 })
  advance(1500)
  t.same(b.admit(), { admitted: false, retryAfterMs: 500 })
  advance(500)
  t.equal(b.state(), 'half-open')
  const probe = ticketOf(b)
  t.equal(probe.probe, true, 'the first request after the open period is the probe')
  t.same(b.admit(), { admitted: false, retryAfterMs: 1000 }, 'others are refused while it is out')
  b.record(probe, 'success')
  t.equal(b.state(), 'closed')
  t.same(states, ['open', 'half-open', 'closed'])
  run('failure', 1)
  t.equal(b.state(), 'closed', 'the window was reset: one failure does not reopen it')
})

t.test('failed probes double the open period up to maxOpenMs; success resets it', async (t) => {
  const { b, run, advance } = setup()
  run('failure', 10)
  const periods: number[] = []
  let period = 2000
  for (let i = 0; i < 6; i++) {
    advance(period)
    b.record(ticketOf(b), 'failure')
    const a = b.admit()
    if (a.admitted) throw new Error('should be open')
    period = a.retryAfterMs
    periods.push(period)
  }
  t.same(periods, [4000, 8000, 16_000, 30_000, 30_000, 30_000])
  advance(period - 1)
  t.equal(b.state(), 'open', 'not a millisecond early')
  advance(1)
  b.record(ticketOf(b), 'success')
  run('failure', 10)
  const a = b.admit()
  t.same(a, { admitted: false, retryAfterMs: 2000 }, 'the next outage starts short again')
})

t.test('maxOpenMs below openMs: a fixed open period', async (t) => {
  const { b, run, advance } = setup({ openMs: 5000, maxOpenMs: 1000 })
  run('failure', 10)
  advance(5000)
  b.record(ticketOf(b), 'failure')
  t.same(b.admit(), { admitted: false, retryAfterMs: 5000 })
})

t.test('a neutral probe leaves it half-open for the next request to probe', async (t) => {
  const { b, run, advance } = setup()
  run('failure', 10)
  advance(2000)
  b.record(ticketOf(b), 'neutral')
  t.equal(b.state(), 'half-open')
  const next = ticketOf(b)
  t.equal(next.probe, true)
})

t.test('outcomes of requests admitted under an earlier state are dropped', async (t) => {
  const { b, run, advance } = setup()
  const early = ticketOf(b)
  run('failure', 10)
  advance(2000)
  b.record(ticketOf(b), 'success')
  t.equal(b.state(), 'closed')
  run('failure', 9)
  b.record(early, 'failure')
  t.equal(b.state(), 'closed', 'the late failure of a request from before the outage is not counted')
  run('failure', 1)
  t.equal(b.state(), 'open')
})

t.test('settings are checked', async (t) => {
  const bad: Array<Partial<BreakerSettings>> = [{ failureRatio: 0 }, { failureRatio: 1.5 }, { minimumRequests: 0 }, { windowMs: 0 }, { openMs: 0 }]
  for (const s of bad) t.throws(() => createBreaker({ ...DEFAULTS, ...s, now: Date.now }), RangeError, JSON.stringify(s))
})
