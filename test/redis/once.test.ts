import t from 'tap'
import { createLocalOnce, createRedisOnce } from '../../src/redis/once.js'
import type { RedisClient } from '../../src/redis/connection.js'

t.test('local: the first claim wins until it expires; the bound holds', async (t) => {
  let now = 0
  const once = createLocalOnce({ now: () => now, maxEntries: 2 })
  t.equal(await once.claim('a', 1000), true)
  t.equal(await once.claim('a', 1000), false)
  now = 1001
  t.equal(await once.claim('a', 1000), true, 'after expiry')
  t.equal(await once.claim('b', 1000), true)
  t.equal(await once.claim('c', 1000), true)
  t.equal(await once.claim('c', 1000), false)
})

t.test('redis: SET NX decides; a failing Redis falls back to this replica\'s memory and counts the error', async (t) => {
  const store = new Set<string>()
  let failing = false
  const redis = { async set (k: string) { if (failing) throw new Error('down'); if (store.has(k)) return null; store.add(k); return 'OK' } } as unknown as RedisClient
  let errors = 0
  const once = createRedisOnce(redis, (n) => `once:${n}`, createLocalOnce({ now: () => 0 }), () => { errors++ })
  t.equal(await once.claim('x', 1000), true)
  t.equal(await once.claim('x', 1000), false, 'another replica\'s claim (in Redis) wins')
  failing = true
  t.equal(await once.claim('x', 1000), false, 'remembered locally too')
  t.equal(await once.claim('y', 1000), true)
  t.equal(await once.claim('y', 1000), false)
  t.equal(errors, 3)
})
