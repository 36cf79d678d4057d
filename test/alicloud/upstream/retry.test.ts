// The retry loop on fake time: the clock, the sleeps and the deadline timer are the
// test's own, so spacing and deadlines are asserted exactly and nothing waits.
import t from 'tap'
import { DeadlineExceeded, withRetries, type RetryClock, type RetryHooks, type RetryPolicy } from '../../../src/alicloud/upstream/retry.js'

const POLICY: RetryPolicy = { maxAttempts: 3, backoffBaseMs: 100, backoffMaxMs: 2000, deadlineMs: 5000 }

class Transient extends Error {
  override name = 'Transient'
  constructor (readonly hintMs = 0, readonly tag = '') { super('transient') }
}
class Fatal extends Error { override name = 'Fatal' }

interface Fake { clock: RetryClock, sleeps: number[], timers: number[], fire: () => void, advance: (ms: number) => void }

function fake (random = 1): Fake {
  let now = 0
  const sleeps: number[] = []
  const timers: number[] = []
  let fireLast: () => void = () => {}
  return {
    sleeps,
    timers,
    fire: () => fireLast(),
    advance: (ms) => { now += ms },
    clock: {
      now: () => now,
      random: () => random,
      sleep: async (ms) => { sleeps.push(ms); now += ms },
      timer: (ms) => {
        timers.push(ms)
        let fire: () => void = () => {}
        const fired = new Promise<void>((resolve) => { fire = resolve })
        fireLast = fire
        return { fired, cancel: () => {} }
      }
    }
  }
}

/** Answers attempt n with script[n-1]: a value, or an error to throw. */
function scripted (script: unknown[], extra: Partial<RetryHooks<string>> = {}): RetryHooks<string> & { calls: number } {
  const hooks = {
    calls: 0,
    attempt: async (n: number) => {
      hooks.calls++
      const r = script[n - 1]
      if (r instanceof Error) throw r
      return r as string
    },
    retryable: (err: unknown) => err instanceof Transient ? { minDelayMs: err.hintMs } : undefined,
    ...extra
  }
  return hooks
}

t.test('success at once: no sleep', async (t) => {
  const f = fake()
  const h = scripted(['ok'])
  t.equal(await withRetries(POLICY, f.clock, h), 'ok')
  t.same(f.sleeps, [])
  t.same(f.timers, [5000], 'the attempt runs under the whole deadline')
})

t.test('capped exponential backoff with full jitter', async (t) => {
  const f = fake(1)
  const h = scripted([new Transient(), new Transient(), 'ok'])
  t.equal(await withRetries(POLICY, f.clock, h), 'ok')
  t.same(f.sleeps, [100, 200], 'upper bounds base·2^n at random() = 1')
  t.same(f.timers, [5000, 4900, 4700], 'each attempt gets what is left of the deadline')

  const g = fake(0.5)
  await withRetries({ ...POLICY, maxAttempts: 5, backoffMaxMs: 300 }, g.clock, scripted([new Transient(), new Transient(), new Transient(), new Transient(), 'ok']))
  t.same(g.sleeps, [50, 100, 150, 150], 'jittered and capped at backoffMaxMs')
})

t.test('a throttling hint raises the delay', async (t) => {
  const f = fake(1)
  await withRetries(POLICY, f.clock, scripted([new Transient(1500), 'ok']))
  t.same(f.sleeps, [1500])
})

t.test('when it gives up (and with what)', async (t) => {
  const cases: Array<{ desc: string, script: unknown[], extra?: Partial<RetryHooks<string>>, policy?: Partial<RetryPolicy>, calls: number, sleeps: number[], error: { name: string, tag?: string } }> = [
    { desc: 'attempts exhausted: the last failure', script: [new Transient(), new Transient(), new Transient(0, 'last')], calls: 3, sleeps: [100, 200], error: { name: 'Transient', tag: 'last' } },
    { desc: 'not retryable', script: [new Fatal()], calls: 1, sleeps: [], error: { name: 'Fatal' } },
    { desc: 'the quota says no: no sleep', script: [new Transient(), 'ok'], extra: { permit: () => false }, calls: 1, sleeps: [], error: { name: 'Transient' } },
    { desc: 'the delay would pass the deadline', script: [new Transient(5000), 'ok'], calls: 1, sleeps: [], error: { name: 'Transient' } },
    { desc: 'one attempt allowed', script: [new Transient(), 'ok'], policy: { maxAttempts: 1 }, calls: 1, sleeps: [], error: { name: 'Transient' } }
  ]
  for (const c of cases) {
    const f = fake(1)
    const h = scripted(c.script, c.extra)
    await t.rejects(withRetries({ ...POLICY, ...c.policy }, f.clock, h), c.error, c.desc)
    t.equal(h.calls, c.calls, `${c.desc}: attempts`)
    t.same(f.sleeps, c.sleeps, `${c.desc}: sleeps`)
  }
})

t.test('the deadline cuts off a hanging attempt', async (t) => {
  const f = fake()
  const seen: unknown[] = []
  let settle: (v: string) => void = () => {}
  const p = withRetries(POLICY, f.clock, {
    attempt: async () => await new Promise<string>((resolve) => { settle = resolve }),
    retryable: () => ({ minDelayMs: 0 }),
    onAttempt: (err) => seen.push(err)
  })
  f.fire()
  await t.rejects(p, DeadlineExceeded)
  t.equal(seen.length, 1)
  t.type(seen[0], DeadlineExceeded, 'the attempt is reported as cut off')
  settle('late') // the abandoned call settling later changes nothing
})

t.test('no attempt starts after the deadline', async (t) => {
  const f = fake(1)
  const h = scripted([new Transient(), 'ok'], { onRetry: () => f.advance(10_000) })
  await t.rejects(withRetries(POLICY, f.clock, h), DeadlineExceeded)
  t.equal(h.calls, 1)
})

t.test('beforeAttempt ends the loop with its own error and sees the last failure', async (t) => {
  const f = fake(1)
  const seen: unknown[] = []
  const first = new Transient()
  const h = scripted([first, 'ok'], {
    beforeAttempt: (n, last) => {
      seen.push(last)
      if (n === 2) throw new Fatal('budget')
    }
  })
  await t.rejects(withRetries(POLICY, f.clock, h), Fatal)
  t.same(seen, [undefined, first])
  t.equal(h.calls, 1)
})

t.test('onAttempt and onRetry report every attempt and retry', async (t) => {
  const f = fake(1)
  const attempts: string[] = []
  const retries: Array<[number, number]> = []
  await withRetries(POLICY, f.clock, scripted([new Transient(), 'ok'], {
    onAttempt: (err) => attempts.push(err === undefined ? 'ok' : 'failed'),
    onRetry: (_err, n, delay) => retries.push([n, delay])
  }))
  t.same(attempts, ['failed', 'ok'])
  t.same(retries, [[1, 100]])
})
