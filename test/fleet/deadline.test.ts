// A waiter never outlives its request's deadline: when the replica holding the lock
// dies, the waiter that takes over calls STS with what is left of sts.deadlineMs, not
// with a fresh one, so wait and call together end by the deadline with 504.
import t from 'tap'
import { startFleet } from './fleet.js'

// Short real time: an STS timeout of 1500 ms gives a lock TTL of 2500 ms (timeout + 1 s),
// inside a request deadline of 3000 ms. A waiter that took over with a fresh deadline
// would wait 2500 ms and then hang for at least one timeout: 4000 ms or more.
const TIMEOUT_MS = 1500
const DEADLINE_MS = 3000
const LOCK_TTL_MS = TIMEOUT_MS + 1000

t.test('a lock holder that died, then a hanging STS: the waiter answers 504 by the request deadline', async (t) => {
  const f = await startFleet(t, {
    replicas: 2,
    config: (c) => ({ ...c, sts: { ...c.sts, timeoutMs: TIMEOUT_MS, deadlineMs: DEADLINE_MS } })
  })
  const tok = f.token({ sub: 'orphaned' })

  // Learn the caller's lock and entry names from a first, slow call on replica 0.
  f.emulator.inject({ kind: 'slow', delayMs: 250, count: 1 })
  const first = f.vend(tok, {}, 0)
  let lock: string | undefined
  while (lock === undefined) {
    lock = (await f.redis.admin.keys('stsv:l:*'))[0]
    if (lock === undefined) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal((await first).statusCode, 200)
  const [entry] = await f.redis.admin.keys('stsv:c:*')
  t.ok(entry !== undefined, 'the entry was shared')

  // Now a holder that died mid-call: its lock stays until the TTL, and no entry.
  await f.redis.admin.del(entry as string)
  await f.redis.admin.set(lock, 'dead-holder', 'PX', LOCK_TTL_MS)
  f.emulator.inject({ kind: 'hang', count: 10 })
  const before = f.emulator.callCount
  const started = Date.now()
  const r = await f.vend(tok, {}, 1)
  const elapsed = Date.now() - started
  t.equal(r.statusCode, 504)
  t.equal(r.json.code, 'STS_VENDING_UPSTREAM_TIMEOUT')
  t.ok(Number(r.headers['retry-after']) >= 1, 'Retry-After')
  t.ok(f.emulator.callCount > before, 'the waiter took over and asked STS itself')
  t.ok(elapsed >= LOCK_TTL_MS - 50, `it waited for the dead holder's lock (${elapsed} ms)`)
  t.ok(elapsed < LOCK_TTL_MS + TIMEOUT_MS - 300, `the whole request ended by the deadline (${elapsed} ms of ${DEADLINE_MS})`)
})
