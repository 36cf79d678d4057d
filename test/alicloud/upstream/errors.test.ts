// The two readings of how a request ended: what the caller is told, and what it says
// about STS's health. One table, so the two are checked side by side.
import t from 'tap'
import { StsError } from '../../../src/alicloud/sts-client.js'
import { BudgetSpent, breakerOutcome, isTransient, publicError } from '../../../src/alicloud/upstream/errors.js'
import { DeadlineExceeded } from '../../../src/alicloud/upstream/retry.js'

const sts = (kind: StsError['kind'], extra: { timedOut?: boolean, retryAfterMs?: number } = {}): StsError =>
  new StsError(kind, `STS ${kind}`, { code: 'X', ...extra })

const cases: Array<[string, unknown, { code: string, statusCode: number, retryAfterSeconds?: number }, 'success' | 'failure' | 'neutral', boolean]> = [
  ['deadline', new DeadlineExceeded(), { code: 'STS_VENDING_UPSTREAM_TIMEOUT', statusCode: 504, retryAfterSeconds: 2 }, 'failure', false],
  ['5xx / connection', sts('unavailable'), { code: 'STS_VENDING_UPSTREAM_UNAVAILABLE', statusCode: 503, retryAfterSeconds: 2 }, 'failure', true],
  ['call timed out', sts('unavailable', { timedOut: true }), { code: 'STS_VENDING_UPSTREAM_TIMEOUT', statusCode: 504, retryAfterSeconds: 2 }, 'failure', true],
  ['throttled, no hint', sts('throttled'), { code: 'STS_VENDING_UPSTREAM_THROTTLED', statusCode: 503, retryAfterSeconds: 1 }, 'failure', true],
  ['throttled, hint 2.5 s', sts('throttled', { retryAfterMs: 2500 }), { code: 'STS_VENDING_UPSTREAM_THROTTLED', statusCode: 503, retryAfterSeconds: 3 }, 'failure', true],
  ['rejected (4xx)', sts('rejected'), { code: 'STS_VENDING_UPSTREAM_REJECTED', statusCode: 500 }, 'neutral', false],
  ['unusable answer', sts('bad_response'), { code: 'STS_VENDING_UPSTREAM_BAD_RESPONSE', statusCode: 502 }, 'neutral', false],
  ['budget spent before any attempt', new BudgetSpent(undefined), { code: 'STS_VENDING_STS_BUDGET_EXHAUSTED', statusCode: 503, retryAfterSeconds: 1 }, 'neutral', false],
  ['budget spent after a 5xx', new BudgetSpent(sts('unavailable')), { code: 'STS_VENDING_UPSTREAM_UNAVAILABLE', statusCode: 503, retryAfterSeconds: 2 }, 'failure', false],
  ['our own bug', new TypeError('x'), { code: 'STS_VENDING_INTERNAL', statusCode: 500 }, 'neutral', false]
]

t.test('each ending: the answer, the breaker outcome, whether to retry', async (t) => {
  for (const [desc, err, answer, outcome, transient] of cases) {
    const pub = publicError(err) as Error & { code: string, statusCode: number, retryAfterSeconds?: number }
    t.match(pub, answer, `${desc}: answer`)
    if (answer.retryAfterSeconds === undefined) t.notOk('retryAfterSeconds' in pub, `${desc}: no Retry-After`)
    t.notMatch(pub.message, /STS (unavailable|throttled|rejected)/, `${desc}: no upstream text`)
    t.equal(breakerOutcome(err), outcome, `${desc}: breaker`)
    t.equal(isTransient(err), transient, `${desc}: retry`)
  }
})
