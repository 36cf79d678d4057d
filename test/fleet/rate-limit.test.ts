// The per-caller request limit (rateLimit.max) holds for the fleet, not per replica:
// three replicas on one Redis count one caller's requests together. While Redis is
// down every replica counts in memory: requests are served, the limit is per replica.
import t from 'tap'
import { startFleet, type Fleet } from './fleet.js'

const DIR = 'dir111/dir111_secondline1'
const MAX = 6

const limited = (c: Record<string, any>): Record<string, any> => ({
  ...c,
  rateLimit: { ...c.rateLimit, max: MAX },
  grants: c.grants.map((g: Record<string, unknown>) => ({ ...g, signing: { maxBytes: 64, expiresSeconds: 600 } }))
})

async function metric (f: Fleet, replica: number, name: string): Promise<number> {
  const body = (await (f.apps[replica] as Fleet['apps'][number]).inject('/metrics')).body
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(body)
  return m === null ? NaN : Number(m[1])
}

t.test('one caller spread over three replicas hits rateLimit.max in total, not three times it', async (t) => {
  for (const shared of [true, false]) {
    const f = await startFleet(t, { shared, config: limited })
    const tok = f.token({ sub: 'chatty' })
    const replies = []
    for (let i = 0; i < 2 * MAX; i++) replies.push(await f.vend(tok))
    const statuses = replies.map((r) => r.statusCode)
    if (!shared) {
      t.same(statuses, Array(2 * MAX).fill(200), `without Redis: each replica counts alone (${3 * MAX} in all)`)
      continue
    }
    t.same(statuses, [...Array(MAX).fill(200), ...Array(MAX).fill(429)], `with Redis: ${MAX} in total, then 429`)
    const refused = replies.filter((r) => r.statusCode === 429)
    t.same(new Set(refused.map((r) => r.replica)).size, 3, 'every replica refuses once the fleet count is spent')
    t.ok(refused.every((r) => r.json.code === 'STS_VENDING_RATE_LIMITED' && Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 60), '429 RATE_LIMITED with a Retry-After inside the window')
    t.equal((await f.vend(f.token({ sub: 'quiet' }))).statusCode, 200, 'another caller has a count of its own')

    // The uploads surface counts apart, as it does without Redis, and fleet-wide too.
    const signs = []
    for (let i = 0; i < MAX + 3; i++) signs.push((await f.upload('url', tok, { key: `${DIR}/chatty/a.txt`, method: 'GET' })).statusCode)
    t.same(signs, [...Array(MAX).fill(200), 429, 429, 429], `uploads: ${MAX} in total over the fleet, then 429`)
  }
})

t.test('Redis down: requests are still served, and each replica limits from memory', async (t) => {
  const f = await startFleet(t, { config: (c) => limited({ ...c, redis: { ...c.redis, commandTimeoutMs: 200 } }) })
  const tok = f.token({ sub: 'through-outage' })
  t.equal((await f.vend(tok, {}, 0)).statusCode, 200, 'counted in Redis')
  await f.redis.kill()
  const onZero = []
  for (let i = 0; i < MAX + 1; i++) onZero.push((await f.vend(tok, {}, 0)).statusCode)
  t.same(onZero, [...Array(MAX).fill(200), 429], 'served, then limited by the replica\'s own count')
  t.equal((await f.vend(tok, {}, 1)).statusCode, 200, 'another replica counts for itself')
  t.ok(await metric(f, 0, 'stsv_redis_errors_total') >= MAX, 'the failed counts are Redis errors in the metrics')
  for (const [i, app] of f.apps.entries()) t.equal((await app.inject('/readyz')).statusCode, 200, `replica ${i} stays ready`)
})

t.test('garbage in a counter (a key of the wrong type) is not obeyed: served, counted afresh in Redis', async (t) => {
  const f = await startFleet(t, { replicas: 1, config: limited })
  const tok = f.token({ sub: 'vandalised-counter' })
  t.equal((await f.vend(tok)).statusCode, 200)
  const counters = await f.redis.admin.keys('stsv:rl:credentials:*')
  t.equal(counters.length, 1, 'one counter for the one caller')
  await f.redis.admin.del(counters[0] as string)
  await f.redis.admin.lpush(counters[0] as string, 'not a counter')
  // Around this request only: on a loaded machine a command of the first request (or the
  // replica's start) may time out, which is a Redis error, and not this test's subject.
  const errorsBefore = await metric(f, 0, 'stsv_redis_errors_total')
  t.equal((await f.vend(tok)).statusCode, 200, 'WRONGTYPE: still served')
  t.equal(await metric(f, 0, 'stsv_redis_errors_total'), errorsBefore, 'not a Redis failure')
  t.equal(await f.redis.admin.get(counters[0] as string), '1', 'replaced by a fresh counter')
  t.ok(await f.redis.admin.pttl(counters[0] as string) > 0, 'with a TTL')
})
