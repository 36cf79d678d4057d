// State no writer can wedge: anyone who can write to Redis can overwrite every key
// the fleet keeps there, and make it persistent. Whatever they write, the fleet goes
// on serving: a poisoned budget is reset, a lock without a TTL is given one, an entry
// that is not ours is a miss. Within 10 s new callers are served, no answer asks a
// caller to wait more than 60 s, and once traffic has passed every key has a TTL again.
import t from 'tap'
import { startFleet } from './fleet.js'
import { createRedis } from '../../src/redis/connection.js'
import { sweepPersistent } from '../../src/redis/sweep.js'
import { standalone } from '../helpers/redis.js'

t.test('every key corrupted and made persistent while three replicas serve', async (t) => {
  const f = await startFleet(t)
  const admin = f.redis.admin
  const callers = Array.from({ length: 20 }, (_, i) => f.token({ sub: `before-${i}` }))
  const before = await Promise.all(callers.map(async (tok) => await f.vend(tok)))
  t.ok(before.every((r) => r.statusCode === 200), 'served before')

  // Every key: garbage in a string, an out-of-range state in a hash, no TTL anywhere;
  // and a lock without a TTL for callers yet to come.
  // Traffic goes on while the keys are vandalised.
  const serving = { on: true }
  const during: number[] = []
  const load = (async () => {
    for (let i = 0; serving.on; i++) during.push((await f.vend(callers[i % callers.length] as string)).statusCode)
  })()
  const keys = await admin.keys('*')
  t.ok(keys.length >= 20, `${keys.length} keys to corrupt`)
  for (const key of keys) {
    if (await admin.type(key) === 'hash') await admin.hset(key, 'tokens', '-200000000000', 'at', String(Date.now() + 86_400_000))
    else await admin.set(key, 'garbage')
    await admin.persist(key)
  }
  await admin.set('stsv:fleet-budget', 'garbage')
  serving.on = false
  await load
  t.ok(during.length > 0 && during.every((s) => s === 200 || s === 429 || s === 503), `no 500 while the keys were vandalised (${during.length} requests)`)

  const started = Date.now()
  const newcomers = Array.from({ length: 10 }, (_, i) => f.token({ sub: `after-${i}` }))
  let servedAt: number | undefined
  const retryAfter: number[] = []
  const statuses: Record<string, number> = {}
  for (let round = 0; round < 40 && servedAt === undefined; round++) {
    const replies = await Promise.all(newcomers.map(async (tok) => await f.vend(tok)))
    for (const r of replies) {
      statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1
      if (r.headers['retry-after'] !== undefined) retryAfter.push(Number(r.headers['retry-after']))
    }
    if (replies.every((r) => r.statusCode === 200)) servedAt = Date.now()
    else await new Promise((resolve) => setTimeout(resolve, 250))
  }
  t.ok(servedAt !== undefined && servedAt - started < 10_000, `new callers served again within 10 s (${servedAt === undefined ? 'never' : servedAt - started} ms; ${JSON.stringify(statuses)})`)

  // The earlier callers come back, on every replica and on a fresh one (nothing in
  // memory: each of their keys is read from Redis): nothing forged is served.
  await f.addReplica()
  const again = await Promise.all(callers.flatMap((tok) => [0, 1, 2, 3].map(async (replica) => await f.vend(tok, {}, replica))))
  for (const r of again) if (r.headers['retry-after'] !== undefined) retryAfter.push(Number(r.headers['retry-after']))
  t.ok(again.every((r) => r.statusCode === 200 || r.statusCode === 429 || r.statusCode === 503), 'no 500: only served or documented refusals')
  t.ok(again.filter((r) => r.statusCode === 200).length >= callers.length, 'the earlier callers are served again')
  const forged = again.filter((r) => r.replica === 3 && r.statusCode === 200)
  t.ok(forged.length > 0 && forged.every((r) => typeof r.json.accessKeyId === 'string' && r.json.accessKeyId.startsWith('STS.')), 'the fresh replica serves real credentials')
  t.ok(retryAfter.every((s) => s >= 1 && s <= 60), `no Retry-After above 60 (${JSON.stringify(retryAfter.slice(0, 10))})`)

  // A key no request came back to is left to the sweep every replica runs now and then.
  const client = createRedis({ settings: standalone(f.redis.url) })
  t.teardown(() => client.disconnect())
  await new Promise((resolve) => client.once('ready', resolve))
  await sweepPersistent(client, 'stsv:')
  const persistent: string[] = []
  for (const key of await admin.keys('*')) if (await admin.pttl(key) < 0) persistent.push(`${key} ${JSON.stringify(await admin.type(key) === 'hash' ? await admin.hgetall(key) : await admin.get(key))}`)
  t.same(persistent, [], 'after traffic every key has a TTL')
})
