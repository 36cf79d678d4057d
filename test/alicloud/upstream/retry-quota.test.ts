// The retry quota: 500 tokens, 5 per retry, 10 per retry after a timeout, 1 back per
// first-attempt success, never above the capacity.
import t from 'tap'
import { createRetryQuota } from '../../../src/alicloud/upstream/retry-quota.js'

function spendAll (q: { spend: (timedOut: boolean) => boolean }, timedOut: boolean): number {
  let n = 0
  while (n < 10_000 && q.spend(timedOut)) n++
  return n
}

t.test('an outage drains it: 100 retries, or 50 after timeouts', async (t) => {
  t.equal(spendAll(createRetryQuota(), false), 100)
  t.equal(spendAll(createRetryQuota(), true), 50)
})

t.test('a refused retry pays nothing; successes bring retries back', async (t) => {
  const q = createRetryQuota()
  spendAll(q, false)
  t.equal(q.available, 0)
  t.notOk(q.spend(false))
  for (let i = 0; i < 9; i++) q.refund()
  t.notOk(q.spend(true), '9 tokens do not pay for a timeout retry (10)')
  t.equal(q.available, 9, 'and the refusal cost nothing')
  t.ok(q.spend(false), 'but pay for a plain one (5)')
  t.equal(q.available, 4)
})

t.test('refunds never exceed the capacity', async (t) => {
  const q = createRetryQuota({ capacity: 20 })
  for (let i = 0; i < 50; i++) q.refund()
  t.equal(q.available, 20)
  t.equal(spendAll(q, false), 4)
})
