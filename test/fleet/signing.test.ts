// Signed uploads share their grant-level signing credential through Redis as vending
// shares caller credentials: the fleet makes one AssumeRole per grant per credential
// lifetime, not one per replica.
import t from 'tap'
import { startFleet } from './fleet.js'

const DIR = 'dir111/dir111_secondline1'
const signing = (c: Record<string, any>): Record<string, any> => ({
  ...c,
  grants: c.grants.map((g: Record<string, unknown>) => ({ ...g, signing: { maxBytes: 64, expiresSeconds: 600 } }))
})

const signedBy = (json: any): string => {
  const credential = json.url !== undefined && json.fields === undefined
    ? new URL(json.url).searchParams.get('x-oss-credential')
    : json.fields['x-oss-credential']
  return String(credential).split('/')[0] as string
}

t.test('two replicas signing for one grant: one AssumeRole (without Redis: one each)', async (t) => {
  for (const shared of [true, false]) {
    const f = await startFleet(t, { replicas: 2, shared, config: signing })
    const a = await f.upload('url', f.token({ sub: 'alice' }), { key: `${DIR}/alice/a.txt`, method: 'GET' }, 0)
    const b = await f.upload('form', f.token({ sub: 'bob' }), {}, 1)
    t.same([a.statusCode, b.statusCode], [200, 200])
    if (shared) {
      t.equal(f.emulator.callCount, 1, 'with Redis: one signing credential for the fleet')
      t.equal(signedBy(b.json), signedBy(a.json), 'both replicas signed with it')
      t.match((await f.apps[1]!.inject('/metrics')).body, /stsv_cache_shared_hits_total 1/, 'the second replica found it in Redis')
    } else {
      t.equal(f.emulator.callCount, 2, 'without Redis: each replica assumes the role itself')
    }
  }
})

t.test('a burst of signing requests over three replicas on a cold fleet: one AssumeRole', async (t) => {
  const f = await startFleet(t, { config: signing })
  const replies = await Promise.all(Array.from({ length: 30 }, async (_, i) =>
    await f.upload('url', f.token({ sub: `user-${i}` }), { key: `${DIR}/user-${i}/a.txt`, method: 'PUT' })))
  t.ok(replies.every((r) => r.statusCode === 200), 'all 200')
  t.equal(f.emulator.callCount, 1, 'one call for the whole fleet')
  t.equal(new Set(replies.map((r) => signedBy(r.json))).size, 1, 'everyone signed with the same credential')
  const call = f.emulator.calls[0]
  t.match(call?.roleSessionName, /^sign@/, 'the grant\'s signing credential')
})

t.test('Redis down: signing still works, each replica with its own credential', async (t) => {
  const f = await startFleet(t, { replicas: 2, config: (c) => signing({ ...c, redis: { ...c.redis, commandTimeoutMs: 200 } }) })
  await f.redis.kill()
  const a = await f.upload('url', f.token({ sub: 'alice' }), { key: `${DIR}/alice/a.txt`, method: 'GET' }, 0)
  const b = await f.upload('url', f.token({ sub: 'bob' }), { key: `${DIR}/bob/b.txt`, method: 'GET' }, 1)
  t.same([a.statusCode, b.statusCode], [200, 200])
  t.equal(f.emulator.callCount, 2, 'one call per replica, as without Redis')
})

t.test('the signing credential pays the fleet\'s AssumeRole budget, not a caller\'s', async (t) => {
  const f = await startFleet(t, {
    replicas: 2,
    config: (c) => signing({ ...c, sts: { ...c.sts, fleetMaxCallsPerSecond: 1 }, rateLimit: { ...c.rateLimit, upstreamPerCaller: { max: 1, timeWindowMs: 60_000 } } })
  })
  const tok = f.token({ sub: 'alice' })
  t.equal((await f.vend(tok, {}, 0)).statusCode, 200, 'the fleet\'s one token this second, and alice\'s one upstream call')
  // The fleet's bucket, read from Redis: the vend took its one token. It refills on Redis's
  // clock; pinning its refill time a minute ahead keeps a slow machine from refilling it
  // before the next request, and deleting it below stands for "a second later".
  const bucket = 'stsv:fleet-budget'
  t.ok(Number(await f.redis.admin.hget(bucket, 'tokens')) < 1, 'the vend took the fleet\'s token')
  const [s, us] = await f.redis.admin.time()
  await f.redis.admin.hset(bucket, 'at', Number(s) * 1000 + Math.floor(Number(us) / 1000) + 60_000)
  const refused = await f.upload('url', tok, { key: `${DIR}/alice/a.txt`, method: 'GET' }, 1)
  t.equal(refused.statusCode, 503, 'the fleet budget is spent for now')
  t.equal(refused.json.code, 'STS_VENDING_STS_BUDGET_EXHAUSTED')
  t.ok(Number(refused.headers['retry-after']) >= 1, 'Retry-After')
  t.equal(f.emulator.callCount, 1)
  await f.redis.admin.del(bucket) // the fleet's budget refilled
  t.equal((await f.upload('url', tok, { key: `${DIR}/alice/a.txt`, method: 'GET' }, 1)).statusCode, 200, 'once the fleet\'s budget refills it signs; alice\'s own upstream budget was not charged')
  t.equal(f.emulator.callCount, 2)
})
