// The call budget on a fake clock: full at start, refilled continuously, capped, and a
// clock that steps back adds nothing.
import t from 'tap'
import { createCallBudget } from '../../../src/alicloud/upstream/budget.js'

function takeAll (b: { take: () => boolean }, max = 1000): number {
  let n = 0
  while (n < max && b.take()) n++
  return n
}

t.test('full at start, then refused until time refills it', async (t) => {
  let clock = 1_000_000
  const b = createCallBudget({ perSecond: 20, now: () => clock })
  t.equal(takeAll(b), 20, 'a full second of budget at start')
  t.notOk(b.take(), 'spent')
  clock += 49
  t.notOk(b.take(), '49 ms refill less than one call at 20/s')
  clock += 1
  t.ok(b.take(), '50 ms refill one call')
  t.notOk(b.take())
  clock += 500
  t.equal(takeAll(b), 10, 'half a second: half the budget')
})

t.test('idle time does not bank more than one second of calls', async (t) => {
  let clock = 0
  const b = createCallBudget({ perSecond: 5, now: () => clock })
  takeAll(b)
  clock += 3_600_000
  t.equal(takeAll(b), 5)
})

t.test('a clock that steps back adds nothing', async (t) => {
  let clock = 10_000
  const b = createCallBudget({ perSecond: 4, now: () => clock })
  takeAll(b)
  clock -= 5000
  t.notOk(b.take(), 'stepping back refills nothing')
  clock += 250
  t.ok(b.take(), 'time counts again from the stepped-back reading')
})

t.test('refuses a budget that is not positive', async (t) => {
  t.throws(() => createCallBudget({ perSecond: 0, now: Date.now }), RangeError)
})
