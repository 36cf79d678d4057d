// Redis is shared state, not a dependency to fail on: garbage, a key of the wrong
// type, a dead, restarted or slow Redis never turn into failures beyond the
// documented 503s, and readiness stays 200 throughout.
import t from 'tap'
import { startFleet, type Fleet } from './fleet.js'

async function metric (f: Fleet, replica: number, name: string): Promise<number> {
  const body = (await (f.apps[replica] as Fleet['apps'][number]).inject('/metrics')).body
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(body)
  return m === null ? NaN : Number(m[1])
}

async function until (what: () => Promise<boolean>, withinMs: number): Promise<boolean> {
  const end = Date.now() + withinMs
  while (Date.now() < end) {
    if (await what()) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

t.test('values overwritten with garbage, and a key of the wrong type: never served, never a 500', async (t) => {
  const f = await startFleet(t, { replicas: 1 })
  const tokens = Array.from({ length: 6 }, (_, i) => f.token({ sub: `vandalised-${i}` }))
  const first = await Promise.all(tokens.map(async (tok) => await f.vend(tok)))
  t.ok(first.every((r) => r.statusCode === 200))
  const names = (await f.redis.admin.keys('stsv:c:*'))
  t.equal(names.length, 6, 'one entry per caller')
  const [wrongType, truncated, ...rest] = names as [string, string, ...string[]]
  await f.redis.admin.del(wrongType)
  await f.redis.admin.lpush(wrongType, 'not a string') // GET now answers WRONGTYPE
  const sealed = await f.redis.admin.getBuffer(truncated)
  await f.redis.admin.set(truncated, (sealed as Buffer).subarray(0, 30)) // a cut-off value
  for (const [i, name] of rest.entries()) {
    const value = i % 2 === 0 ? Buffer.from('{"accessKeyId":"STS.forged","accessKeySecret":"x","securityToken":"y"}') : Buffer.alloc(200, i)
    await f.redis.admin.set(name, value)
  }
  // A fresh replica has nothing in memory: every lookup goes to Redis.
  await f.addReplica()
  const again = await Promise.all(tokens.map(async (tok) => await f.vend(tok, {}, 1)))
  t.same(again.map((r) => r.statusCode), Array(6).fill(200), 'all 200')
  const known = new Set(first.map((r) => r.json.accessKeyId))
  t.ok(again.every((r) => !known.has(r.json.accessKeyId) && r.json.accessKeyId !== 'STS.forged'), 'nothing was served from the vandalised entries')
  t.equal(f.emulator.callCount, 12, 'each caller asked STS afresh')
  t.ok(await metric(f, 1, 'stsv_cache_shared_undecryptable_total') >= 6, 'undecryptable values counted, the key of the wrong type among them')
  t.equal(await f.redis.admin.type(wrongType), 'string', 'the key of the wrong type was replaced by an entry')
})

t.test('Redis killed under load: only documented 503s, readiness stays 200; restarted empty: sharing resumes', async (t) => {
  const f = await startFleet(t, { config: (c) => ({ ...c, redis: { ...c.redis, commandTimeoutMs: 200 } }) })
  const statuses: Record<string, number> = {}
  let n = 0
  const load = async (): Promise<void> => {
    for (let i = 0; i < 40; i++) {
      const r = await f.vend(f.token({ sub: `load-${n++ % 30}` }))
      const k = r.statusCode === 200 ? '200' : `${r.statusCode} ${r.json?.code as string}`
      statuses[k] = (statuses[k] ?? 0) + 1
    }
  }
  const running = Promise.all([load(), load(), load()])
  await new Promise((resolve) => setTimeout(resolve, 150))
  await f.redis.kill()
  await running
  const documented = new Set(['200', '503 STS_VENDING_STS_BUDGET_EXHAUSTED'])
  t.same(Object.keys(statuses).filter((k) => !documented.has(k)), [], `only 200 and documented 503s (${JSON.stringify(statuses)})`)
  for (const [i, app] of f.apps.entries()) {
    t.equal((await app.inject('/readyz')).statusCode, 200, `replica ${i} stays ready`)
    t.equal((await app.inject('/healthz')).statusCode, 200, `replica ${i} stays live`)
    t.equal(await metric(f, i, 'stsv_redis_up'), 0, `replica ${i} reports Redis down`)
  }
  const tok = f.token({ sub: 'during-outage' })
  t.equal((await f.vend(tok, {}, 0)).statusCode, 200, 'a new caller is served while Redis is down')
  t.equal((await f.vend(tok, {}, 0)).statusCode, 200, 'and then from memory')

  await f.redis.restart()
  t.ok(await until(async () => (await Promise.all(f.apps.map(async (_a, i) => await metric(f, i, 'stsv_redis_up')))).every((v) => v === 1), 10_000), 'every replica reconnects by itself')
  const before = f.emulator.callCount
  const late = f.token({ sub: 'after-restart' })
  t.equal((await f.vend(late, {}, 0)).statusCode, 200)
  t.equal((await f.vend(late, {}, 1)).statusCode, 200)
  t.equal((await f.vend(late, {}, 2)).statusCode, 200)
  t.equal(f.emulator.callCount - before, 1, 'shared again: one AssumeRole for three replicas')
})

t.test('a slow Redis (DEBUG SLEEP) stays inside the request deadline', async (t) => {
  const f = await startFleet(t, { config: (c) => ({ ...c, redis: { ...c.redis, commandTimeoutMs: 200 } }) })
  const warm = f.token({ sub: 'warm' })
  t.equal((await f.vend(warm, {}, 0)).statusCode, 200)
  const sleeper = f.redis.admin.duplicate()
  sleeper.on('error', () => {})
  t.teardown(() => sleeper.disconnect())
  let awake = false
  const asleep = sleeper.call('DEBUG', 'SLEEP', '3').finally(() => { awake = true })
  await new Promise((resolve) => setTimeout(resolve, 50))
  const started = Date.now()
  const replies = await Promise.all([
    f.vend(f.token({ sub: 'while-slow-1' }), {}, 1),
    f.vend(f.token({ sub: 'while-slow-2' }), {}, 2),
    f.vend(warm, {}, 1)
  ])
  const elapsed = Date.now() - started
  t.same(replies.map((r) => r.statusCode), [200, 200, 200], 'served without the shared level')
  // Inside the 3 s sleep (and so the 10 s deadline): answered while Redis still slept.
  t.notOk(awake, `answered before Redis woke up (${elapsed} ms)`)
  await asleep
})

t.test('300 new callers at once: the fleet budget holds (its tokens and its refill on Redis\'s clock, whichever replica asks)', async (t) => {
  const fleetBudget = 20
  const f = await startFleet(t, {
    config: (c) => ({ ...c, sts: { ...c.sts, fleetMaxCallsPerSecond: fleetBudget, maxCallsPerSecond: 100 }, rateLimit: { max: 100_000, timeWindowMs: 60_000 } })
  })
  // The fleet's bucket, read on Redis's own clock: it starts full and refills at the
  // budget's rate, so however long the burst takes on a busy machine, it may grant at most
  // its tokens plus what it refilled between the first and the last take, as Redis saw
  // them (per-replica budgets would allow 3 x 100).
  const bucket = 'stsv:fleet-budget'
  const redisNow = async (): Promise<number> => {
    const [s, us] = await f.redis.admin.time()
    return Number(s) * 1000 + Math.floor(Number(us) / 1000)
  }
  const tokens = Array.from({ length: 300 }, (_, i) => f.token({ sub: `crowd-${i}` }))
  const from = await redisNow()
  const replies = await Promise.all(tokens.map(async (tok) => await f.vend(tok)))
  const refilled = Math.floor((await redisNow() - from) * fleetBudget / 1000)
  const ok = replies.filter((r) => r.statusCode === 200)
  const refused = replies.filter((r) => r.statusCode !== 200)
  t.ok(refused.every((r) => r.statusCode === 503 && r.json.code === 'STS_VENDING_STS_BUDGET_EXHAUSTED' && Number(r.headers['retry-after']) >= 1), 'the excess gets 503 + Retry-After')
  t.ok(ok.length >= fleetBudget && ok.length <= fleetBudget + refilled, `the bucket's tokens were granted, and what it refilled, no more (${ok.length}, budget ${fleetBudget} + ${refilled} refilled)`)
  t.equal(new Set(refused.map((r) => r.replica)).size, 3, 'every replica was held to the one bucket')
  t.equal(f.emulator.callCount, ok.length, 'STS saw exactly the calls the bucket granted')
  t.ok(Number(await f.redis.admin.hget(bucket, 'tokens')) < 1, 'the bucket in Redis is empty')
  t.ok(await metric(f, 0, 'stsv_sts_fleet_budget_rejections_total') > 0, 'refusals counted')
})

t.test('a replica that starts while Redis is down: ready, serving, and sharing once Redis is back', async (t) => {
  const f = await startFleet(t, { replicas: 0 })
  await f.redis.kill()
  const app = await f.addReplica()
  t.equal((await app.inject('/readyz')).statusCode, 200, 'ready without Redis')
  const tok = f.token({ sub: 'early-bird' })
  t.equal((await f.vend(tok, {}, 0)).statusCode, 200, 'serves from its own state')
  await f.redis.restart()
  t.ok(await until(async () => await metric(f, 0, 'stsv_redis_up') === 1, 10_000), 'connects by itself')
  await f.addReplica()
  const late = f.token({ sub: 'late-bird' })
  t.equal((await f.vend(late, {}, 0)).statusCode, 200)
  t.equal((await f.vend(late, {}, 1)).statusCode, 200)
  t.equal(f.emulator.callCount, 2, 'the second replica found the late caller in Redis')
})
