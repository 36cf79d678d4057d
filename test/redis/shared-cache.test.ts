// The shared level alone, on a real Redis: the fleet single-flight's lock (a holder
// that died, a waiter at its deadline), re-checked margins and Redis failures.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createRedis, type RedisClient } from '../../src/redis/connection.js'
import { createEntryCipher } from '../../src/redis/entries.js'
import { createLock } from '../../src/redis/lock.js'
import { createSharedCache, type SharedCacheOptions } from '../../src/redis/shared-cache.js'
import type { StsCredentials } from '../../src/alicloud/sts-types.js'
import { standalone, startRedis, type TestRedis } from '../helpers/redis.js'

function creds (expiresInMs = 3_600_000): StsCredentials {
  return { accessKeyId: `STS.${randomBytes(8).toString('hex')}`, accessKeySecret: 'secret', securityToken: 'token', expiration: new Date(Date.now() + expiresInMs) }
}

async function setup (t: { teardown: (fn: () => unknown) => void }, o: Partial<SharedCacheOptions> = {}): Promise<{ redis: RedisClient, server: TestRedis, options: SharedCacheOptions }> {
  const server = await startRedis(t)
  const redis = createRedis({ settings: standalone(server.url) })
  t.teardown(() => redis.disconnect())
  await new Promise((resolve) => redis.once('ready', resolve))
  const cipher = createEntryCipher([randomBytes(32)])
  const options: SharedCacheOptions = { redis, cipher, lock: createLock(redis), minRemainingSeconds: 1200, lockTtlMs: 300, waitDeadlineMs: 2000, now: Date.now, ...o }
  return { redis, server, options }
}

t.test('a lock holder that died: the others wait for its lock to expire, then one of them calls', async (t) => {
  const { redis, options } = await setup(t)
  const waits: number[] = []
  const cache = createSharedCache({ ...options, events: { lockWait: () => waits.push(1) } })
  // The "dead" replica took the lock and never came back.
  await redis.set(options.cipher.name('l', 'k1'), 'dead-owner', 'PX', 300)
  let calls = 0
  const started = Date.now()
  const results = await Promise.all(Array.from({ length: 5 }, async () => await cache.getOrLoad('k1', async () => { calls++; return creds() })))
  const elapsed = Date.now() - started
  t.equal(calls, 1, 'one call once the lock expired')
  t.ok(elapsed >= 250 && elapsed < 1500, `it waited for the lock's TTL, not the deadline (${elapsed} ms)`)
  t.equal(new Set(results.map((r) => r.credentials.accessKeyId)).size, 1, 'everyone got the same credentials')
  t.equal(results.filter((r) => r.fromCache).length, 4, 'four of them from the shared entry')
  t.equal(waits.length, 5, 'each counted one lock wait')
})

t.test('only the owner releases a lock', async (t) => {
  const { redis, options } = await setup(t)
  const name = options.cipher.name('l', 'k2')
  const got = await options.lock.acquire(name, 5000)
  if (!got.taken) throw new Error('not taken')
  t.same(await options.lock.acquire(name, 5000), { taken: false, holder: got.token }, 'taken, and the holder is named by its token')
  await options.lock.release(name, 'someone-else')
  t.equal(await redis.get(name), got.token, 'a stranger cannot release it')
  await options.lock.release(name, got.token)
  t.equal(await redis.get(name), null, 'the owner can')
})

t.test('a waiter that reaches its deadline answers 504 with Retry-After', async (t) => {
  const { redis, options } = await setup(t, { waitDeadlineMs: 300, lockTtlMs: 1000 })
  const cache = createSharedCache(options)
  await redis.set(options.cipher.name('l', 'k3'), 'slow-owner', 'PX', 1000)
  let calls = 0
  const started = Date.now()
  await t.rejects(cache.getOrLoad('k3', async () => { calls++; return creds() }), { statusCode: 504, code: 'STS_VENDING_UPSTREAM_TIMEOUT', retryAfterSeconds: 2 })
  t.ok(Date.now() - started < 1000, 'at its own deadline')
  t.equal(calls, 0)
})

t.test('an entry below the margin on read (another pod\'s clock) is a miss', async (t) => {
  let clock = Date.now()
  const { options } = await setup(t, { now: () => clock })
  const cache = createSharedCache(options)
  let calls = 0
  const load = async (): Promise<StsCredentials> => { calls++; return creds(2000 * 1000) }
  t.equal((await cache.getOrLoad('k4', load)).fromCache, false)
  t.equal((await cache.getOrLoad('k4', load)).fromCache, true)
  clock += 801 * 1000 // 2000 s - 801 s < the 1200 s margin, though Redis still holds it
  t.equal((await cache.getOrLoad('k4', load)).fromCache, false, 'fetched afresh')
  t.equal(calls, 2)
})

t.test('Redis down: straight to the loader, no error', async (t) => {
  const { server, options } = await setup(t)
  const errors: unknown[] = []
  const cache = createSharedCache({ ...options, events: { error: (e) => errors.push(e) } })
  await server.kill()
  let calls = 0
  const r = await cache.getOrLoad('k5', async () => { calls++; return creds() })
  t.equal(r.fromCache, false)
  t.equal(calls, 1)
  t.ok(errors.length >= 1, 'the failure was reported')
})

t.test('a waiter that takes over from a dead holder loads with what is left of the request deadline (fake time)', async (t) => {
  let clock = 0
  const { redis, options } = await setup(t, { waitDeadlineMs: 1000, lockTtlMs: 5000 })
  const lockName = options.cipher.name('l', 'k6')
  await redis.set(lockName, 'dead-owner', 'PX', 60_000)
  // The holder's lock "expires" at 400 ms of fake time; every poll advances the clock by its pause.
  const cache = createSharedCache({
    ...options,
    clock: () => clock,
    random: () => 1,
    sleep: async (ms) => {
      clock += ms
      if (clock >= 400) await redis.del(lockName)
    }
  })
  const given: number[] = []
  const r = await cache.getOrLoad('k6', async (remainingMs) => { given.push(remainingMs()); return creds() })
  t.equal(r.fromCache, false)
  t.same(given, [1000 - clock], `the loader got the deadline minus the wait (${clock} ms waited)`)
  t.ok(clock >= 400 && clock < 1000)

  // A request with nothing left when it would load: 504, the loader never runs.
  const late = createSharedCache({ ...options, clock: () => clock, waitDeadlineMs: 0 })
  let calls = 0
  await t.rejects(late.getOrLoad('k7', async () => { calls++; return creds() }), { statusCode: 504, code: 'STS_VENDING_UPSTREAM_TIMEOUT' })
  t.equal(calls, 0)
})

t.test('a lock no holder of ours could have written: given our TTL, and the waiter calls STS within its deadline', async (t) => {
  const { redis, options } = await setup(t, { lockTtlMs: 300, waitDeadlineMs: 2000 })
  const stale: number[] = []
  const cache = createSharedCache({ ...options, events: { staleLock: () => stale.push(1) } })
  const cases: Array<[string, string, () => Promise<unknown>]> = [
    ['without a TTL', 'p1', async () => await redis.set(options.cipher.name('l', 'p1'), 'persisted')],
    ['with a TTL of a day', 'p2', async () => await redis.set(options.cipher.name('l', 'p2'), 'long', 'PX', 86_400_000)],
    ['of another type, without a TTL', 'p3', async () => await redis.hset(options.cipher.name('l', 'p3'), 'x', '1')]
  ]
  for (const [desc, key, poison] of cases) {
    await poison()
    let calls = 0
    const started = Date.now()
    const r = await cache.getOrLoad(key, async () => { calls++; return creds() })
    t.equal(r.fromCache, false, `${desc}: served`)
    t.equal(calls, 1, `${desc}: one call`)
    t.ok(Date.now() - started < 1500, `${desc}: within the deadline (${Date.now() - started} ms)`)
    const pttl = await redis.pttl(options.cipher.name('c', key))
    t.ok(pttl > 0, `${desc}: the entry written has a TTL`)
  }

  // A writer that keeps re-setting the same lock without a TTL: one holder, held for
  // longer than a lock period, is given up on.
  const name = options.cipher.name('l', 'p4')
  const timer = setInterval(() => { redis.set(name, 'again').catch(() => {}) }, 20)
  t.teardown(() => clearInterval(timer))
  await redis.set(name, 'again')
  let calls = 0
  const started = Date.now()
  await cache.getOrLoad('p4', async () => { calls++; return creds() })
  clearInterval(timer)
  t.equal(calls, 1)
  t.ok(Date.now() - started < 1500, `the re-set lock is given up on (${Date.now() - started} ms)`)
  t.ok(stale.length >= 1, 'counted as a stale lock')
})

t.test('an entry that is not ours is a miss, replaced by ours with a TTL', async (t) => {
  const { redis, options } = await setup(t)
  const bad: number[] = []
  const cache = createSharedCache({ ...options, events: { undecryptable: () => bad.push(1) } })
  const cases: Array<[string, string, () => Promise<unknown>]> = [
    ['garbage, persistent', 'g1', async () => await redis.set(options.cipher.name('c', 'g1'), 'garbage')],
    ['another type', 'g2', async () => await redis.rpush(options.cipher.name('c', 'g2'), 'a', 'b')],
    ['oversized', 'g3', async () => await redis.set(options.cipher.name('c', 'g3'), Buffer.alloc(64 * 1024, 1))],
    ['sealed under another name', 'g4', async () => await redis.set(options.cipher.name('c', 'g4'), options.cipher.seal(options.cipher.name('c', 'other'), creds()))]
  ]
  for (const [desc, key, poison] of cases) {
    await poison()
    let calls = 0
    const first = await cache.getOrLoad(key, async () => { calls++; return creds() })
    t.equal(first.fromCache, false, `${desc}: a miss, not an error`)
    t.equal(calls, 1, `${desc}: loaded once`)
    t.ok(await redis.pttl(options.cipher.name('c', key)) > 0, `${desc}: replaced, with a TTL`)
    t.equal((await cache.getOrLoad(key, async () => { calls++; return creds() })).fromCache, true, `${desc}: shared again`)
  }
  t.ok(bad.length >= 4, 'each counted as undecryptable')
})

t.test('forget deletes the fleet\'s entry under that key and no other; a Redis error is swallowed and counted', async (t) => {
  const { redis, server, options } = await setup(t)
  const errors: unknown[] = []
  const cache = createSharedCache({ ...options, events: { error: (err) => errors.push(err) } })
  let calls = 0
  for (const key of ['f1', 'f2']) await cache.getOrLoad(key, async () => { calls++; return creds() })
  await cache.forget('f1')
  t.equal(await redis.exists(options.cipher.name('c', 'f1')), 0, 'gone')
  t.equal(await redis.exists(options.cipher.name('c', 'f2')), 1, 'the other entry stays')
  t.equal((await cache.getOrLoad('f1', async () => { calls++; return creds() })).fromCache, false, 'the next lookup loads afresh')
  t.equal(calls, 3)
  await server.kill()
  await t.resolves(cache.forget('f2'), 'Redis away: forget still resolves')
  t.ok(errors.length >= 1, 'and the failure is counted')
})
