// The rate-limit store alone, on a real Redis: the plugin's fixed window counted under
// the names it is given, a counter left without a TTL repaired, and the in-memory
// window it falls back to while Redis fails (fake time).
import t from 'tap'
import { createRedis, type RedisClient } from '../../src/redis/connection.js'
import { sharedRateLimitStore, type SharedRateLimitOptions } from '../../src/redis/rate-limit.js'
import { standalone, startRedis, type TestRedis } from '../helpers/redis.js'
import type { FastifyRateLimitStore } from '@fastify/rate-limit'

async function setup (t: { teardown: (fn: () => unknown) => void }, o: Partial<SharedRateLimitOptions> = {}): Promise<{ redis: RedisClient, server: TestRedis, store: FastifyRateLimitStore, errors: unknown[] }> {
  const server = await startRedis(t)
  const redis = createRedis({ settings: standalone(server.url) })
  t.teardown(() => redis.disconnect())
  await new Promise((resolve) => redis.once('ready', resolve))
  const errors: unknown[] = []
  const Store = sharedRateLimitStore({ redis, name: (key) => `rl:test:${key.length}`, onError: (e) => errors.push(e), ...o })
  return { redis, server, store: new Store({}), errors }
}

async function incr (store: FastifyRateLimitStore, key: string, timeWindow = 60_000): Promise<{ current: number, ttl: number }> {
  return await new Promise((resolve, reject) => {
    store.incr(key, (err, res) => { err !== null ? reject(err) : resolve(res as { current: number, ttl: number }) }, timeWindow, 5)
  })
}

t.test('counts under the given name, with the window as TTL', async (t) => {
  const { server, store } = await setup(t)
  t.same((await incr(store, 'abc')).current, 1)
  const second = await incr(store, 'abc')
  t.equal(second.current, 2)
  t.ok(second.ttl > 59_000 && second.ttl <= 60_000, `ttl from Redis (${second.ttl})`)
  t.same(await server.admin.keys('*'), ['stsv:rl:test:3'], 'only the name it was given, under the key prefix')
  t.ok(await server.admin.pttl('stsv:rl:test:3') > 59_000)
})

t.test('a counter without a TTL gets one: nobody is limited for good', async (t) => {
  const { server, store } = await setup(t)
  await server.admin.set('stsv:rl:test:5', '99')
  const r = await incr(store, 'stuck')
  t.equal(r.current, 100)
  t.equal(r.ttl, 60_000)
  t.ok(await server.admin.pttl('stsv:rl:test:5') > 59_000)
})

t.test('a value that is not a counter, or a TTL beyond the window, is not obeyed', async (t) => {
  const { server, store, errors } = await setup(t)
  await server.admin.set('stsv:rl:test:1', 'garbage')
  t.same(await incr(store, 'a'), { current: 1, ttl: 60_000 }, 'garbage: counting starts again')
  await server.admin.hset('stsv:rl:test:2', 'x', '1')
  t.same(await incr(store, 'ab'), { current: 1, ttl: 60_000 }, 'another type: counting starts again')
  await server.admin.set('stsv:rl:test:3', '5', 'PX', 86_400_000)
  const r = await incr(store, 'abc')
  t.equal(r.current, 6)
  t.equal(r.ttl, 60_000, 'a day-long TTL is cut to the window')
  t.equal(errors.length, 0, 'none of it is a Redis failure')
  for (const k of await server.admin.keys('*')) t.ok(await server.admin.pttl(k) > 0, `${k} has a TTL`)
})

t.test('Redis down: counted in memory, a fixed window of its own (fake time)', async (t) => {
  let clock = 1_000_000
  const { server, store, errors } = await setup(t, { now: () => clock })
  await server.kill()
  t.same(await incr(store, 'k', 1000), { current: 1, ttl: 1000 })
  clock += 400
  t.same(await incr(store, 'k', 1000), { current: 2, ttl: 600 })
  t.same(await incr(store, 'other', 1000), { current: 1, ttl: 1000 }, 'each key its own count')
  clock += 600
  t.same(await incr(store, 'k', 1000), { current: 1, ttl: 1000 }, 'a new window once the old one ended')
  t.equal(errors.length, 4, 'every failed command reported')
  t.ok(typeof store.child({} as never).incr === 'function', 'a child store for per-route settings')
})
