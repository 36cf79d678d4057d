// createUpstream wired to the real STS client against the emulator over loopback HTTP,
// on a fake clock with recorded sleeps: how the parts meet (a probe is one attempt, the
// budget ends retries with the upstream's answer, refusals never trip the breaker, the
// events the metrics hang on).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { startStsEmulator, type StsEmulator } from '../../../devkit/emulator/sts.js'
import { createStsClient } from '../../../src/alicloud/sts-client.js'
import { createStaticCredential } from '../../../src/alicloud/credentials.js'
import { createUpstream, type Upstream, type UpstreamOptions, type AttemptOutcome } from '../../../src/alicloud/upstream/index.js'
import { type BreakerState } from '../../../src/alicloud/upstream/breaker.js'

const ROLE = 'acs:ram::1234567890123456:role/uploader'

interface Rig {
  emu: StsEmulator
  up: Upstream
  sleeps: number[]
  states: BreakerState[]
  attempts: AttemptOutcome[]
  events: string[]
  advance: (ms: number) => void
  call: (sub?: string) => Promise<{ ok: true } | { ok: false, code: string, statusCode: number, retryAfterSeconds?: number }>
}

async function rig (t: { teardown: (fn: () => unknown) => void }, extra: Partial<UpstreamOptions> = {}): Promise<Rig> {
  const id = `test${randomBytes(6).toString('hex')}`
  const secret = randomBytes(24).toString('base64url')
  const emu = await startStsEmulator({ accessKeys: { [id]: secret }, roles: { [ROLE]: { maxSessionDuration: 3600 } } })
  t.teardown(() => emu.close())
  let clock = Date.now()
  const sleeps: number[] = []
  const states: BreakerState[] = []
  const attempts: AttemptOutcome[] = []
  const events: string[] = []
  const up = createUpstream({
    client: createStsClient({ endpoint: emu.url, timeoutMs: 5000, credential: createStaticCredential(id, secret) }),
    maxAttempts: 3,
    backoffBaseMs: 100,
    backoffMaxMs: 2000,
    deadlineMs: 10_000,
    maxCallsPerSecond: 100,
    breaker: { failureRatio: 0.5, minimumRequests: 4, windowMs: 30_000, openMs: 2000, maxOpenMs: 30_000 },
    now: () => clock,
    sleep: async (ms) => { sleeps.push(ms) },
    random: () => 1,
    events: {
      attempt: (o) => attempts.push(o),
      breaker: (s) => states.push(s),
      retry: () => events.push('retry'),
      budgetExhausted: () => events.push('budget'),
      rejected: (code) => events.push(`rejected:${code}`)
    },
    ...extra
  })
  return {
    emu,
    up,
    sleeps,
    states,
    attempts,
    events,
    advance: (ms) => { clock += ms },
    async call (sub = 'alice') {
      try {
        await up.assumeRole({ roleArn: ROLE, roleSessionName: sub, durationSeconds: 900 })
        return { ok: true }
      } catch (err) {
        const e = err as { code: string, statusCode: number, retryAfterSeconds?: number }
        return { ok: false, code: e.code, statusCode: e.statusCode, ...(e.retryAfterSeconds !== undefined ? { retryAfterSeconds: e.retryAfterSeconds } : {}) }
      }
    }
  }
}

t.test('a request that meets 2×5xx then success is one success', async (t) => {
  const r = await rig(t)
  for (let i = 0; i < 3; i++) {
    r.emu.inject({ kind: 'server-error', count: 2, status: 503 })
    t.same(await r.call(), { ok: true }, `request ${i + 1}: success on the third attempt`)
  }
  t.equal(r.emu.callCount, 9)
  t.same(r.attempts, Array(3).fill(['unavailable', 'unavailable', 'ok']).flat())
  t.same(r.sleeps, Array(3).fill([100, 200]).flat())
  t.equal(r.events.filter((e) => e === 'retry').length, 6)
  t.equal(r.up.breakerState(), 'closed', 'six failed attempts, no failed request')
  t.same(r.states, [])
})

t.test('an outage opens it after minimumRequests failed requests; a probe is one attempt', async (t) => {
  const r = await rig(t)
  r.emu.inject({ kind: 'server-error', status: 500 })
  for (let i = 0; i < 3; i++) t.match(await r.call(), { ok: false, code: 'STS_VENDING_UPSTREAM_UNAVAILABLE' })
  t.equal(r.up.breakerState(), 'closed', 'three failed requests (nine attempts) are below minimumRequests')
  t.match(await r.call(), { ok: false, code: 'STS_VENDING_UPSTREAM_UNAVAILABLE' }, 'the fourth request still got its own answer')
  t.equal(r.up.breakerState(), 'open')
  const calls = r.emu.callCount
  t.same(await r.call(), { ok: false, code: 'STS_VENDING_CIRCUIT_OPEN', statusCode: 503, retryAfterSeconds: 2 })
  t.equal(r.emu.callCount, calls, 'no call while open')

  r.advance(2000)
  t.match(await r.call(), { ok: false, code: 'STS_VENDING_UPSTREAM_UNAVAILABLE' }, 'the probe fails')
  t.equal(r.emu.callCount, calls + 1, 'the probe made one attempt, no retries')
  t.same(await r.call(), { ok: false, code: 'STS_VENDING_CIRCUIT_OPEN', statusCode: 503, retryAfterSeconds: 4 }, 'open twice as long')

  r.advance(4000)
  r.emu.clearFaults()
  t.same(await r.call(), { ok: true }, 'the next probe succeeds')
  t.same(r.states, ['open', 'half-open', 'open', 'half-open', 'closed'])
})

t.test('the call budget: spent before the first attempt is ours and neutral; spent on a retry ends it with the upstream answer', async (t) => {
  const r = await rig(t, { maxCallsPerSecond: 2, breaker: { failureRatio: 0.5, minimumRequests: 2, windowMs: 30_000, openMs: 2000, maxOpenMs: 30_000 } })
  r.emu.inject({ kind: 'server-error', status: 500 })
  t.match(await r.call(), { ok: false, code: 'STS_VENDING_UPSTREAM_UNAVAILABLE', retryAfterSeconds: 2 }, 'two attempts, then the budget: the 5xx is the answer')
  t.equal(r.emu.callCount, 2)
  for (let i = 0; i < 5; i++) t.match(await r.call(), { ok: false, code: 'STS_VENDING_STS_BUDGET_EXHAUSTED', retryAfterSeconds: 1 })
  t.equal(r.emu.callCount, 2, 'STS saw only the budget')
  t.equal(r.events.filter((e) => e === 'budget').length, 6)
  t.equal(r.up.breakerState(), 'closed', 'our own refusals say nothing about STS')
})

t.test('refusals from STS (4xx): one attempt, logged, never open the circuit', async (t) => {
  const logged: string[] = []
  const r = await rig(t, { log: { warn: () => {}, error: (_o, msg) => logged.push(msg) } })
  r.emu.inject({ kind: 'reject', code: 'NoPermission', status: 403 })
  for (let i = 0; i < 10; i++) t.match(await r.call(), { ok: false, code: 'STS_VENDING_UPSTREAM_REJECTED', statusCode: 500 })
  t.equal(r.emu.callCount, 10, 'no retries')
  t.equal(r.events.filter((e) => e === 'rejected:NoPermission').length, 10)
  t.equal(logged.length, 10)
  t.equal(r.up.breakerState(), 'closed')
})

t.test('once the circuit opens, a request waiting to retry does not', async (t) => {
  let hold: Promise<void> | undefined
  let release: () => void = () => {}
  const r = await rig(t, {
    breaker: { failureRatio: 0.5, minimumRequests: 2, windowMs: 30_000, openMs: 2000, maxOpenMs: 30_000 },
    sleep: async (ms) => {
      r.sleeps.push(ms)
      const h = hold
      hold = undefined
      if (h !== undefined) await h
    }
  })
  r.emu.inject({ kind: 'server-error', status: 500 })
  hold = new Promise((resolve) => { release = resolve })
  const waiting = r.call('c')
  for (let i = 0; i < 1000 && r.sleeps.length === 0; i++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(r.emu.callCount, 1, 'c failed once and waits in its backoff')
  t.match(await r.call('a'), { ok: false })
  t.match(await r.call('b'), { ok: false })
  t.equal(r.up.breakerState(), 'open', 'a and b opened the circuit meanwhile')
  release()
  t.match(await waiting, { ok: false, code: 'STS_VENDING_UPSTREAM_UNAVAILABLE' }, 'c ends with the answer it had')
  t.equal(r.emu.callCount, 7, 'c made no second attempt (1 + 3 + 3)')
})

t.test('withinMs: a call gets only what is left of its request\'s deadline', async (t) => {
  // The deadline timer is fake too (it never fires): with a real one, a busy machine that
  // takes 50 ms to answer the 5xx turns it into a 504.
  const r = await rig(t, { timer: () => ({ fired: new Promise(() => {}), cancel: () => {} }) })
  const input = { roleArn: ROLE, roleSessionName: 'late', durationSeconds: 900 }
  await t.rejects(r.up.assumeRole(input, { withinMs: 0 }), { statusCode: 504, code: 'STS_VENDING_UPSTREAM_TIMEOUT', retryAfterSeconds: 2 }, 'nothing left: 504 at once')
  t.equal(r.emu.callCount, 0, 'without an attempt')
  t.same(r.states, [], 'and without a mark on the breaker')
  // A 5xx is retried after 100 ms (random 1, base 100) when the deadline allows it; with 50 ms left it is not.
  r.emu.inject({ kind: 'server-error', count: 1, status: 503 })
  await t.rejects(r.up.assumeRole(input, { withinMs: 50 }), { statusCode: 503, code: 'STS_VENDING_UPSTREAM_UNAVAILABLE' }, 'the 5xx stands')
  t.equal(r.emu.callCount, 1, 'one attempt: no retry past the request deadline')
  r.emu.inject({ kind: 'server-error', count: 1, status: 503 })
  t.ok(await r.up.assumeRole(input, { withinMs: 5000 }), 'with time left, the retry is made')
  t.equal(r.emu.callCount, 3)
})
