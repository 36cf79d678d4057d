// The same fleet on the Redis shapes operators run: a three-master Redis Cluster (also
// with a replica per master) and a Sentinel set (master, replica, Sentinel), each with
// three service replicas. Every key the service writes is alone in its script or
// command (one hash slot), so the same code runs on all three; a Sentinel failover and
// a Cluster failover are ridden out like an outage, and sharing resumes once the client
// has found the new master or slot map (docs/deploy.md).
import t from 'tap'
import { peakInWindow, sharesOneCache, startFleet, type Fleet } from './fleet.js'
import { Redis } from 'ioredis'
import { startCluster, startSentinel } from '../helpers/redis.js'
import { createRedis } from '../../src/redis/connection.js'
import { parseNode } from '../../src/redis/settings.js'
import { sweepPersistent } from '../../src/redis/sweep.js'

type Tap = Pick<typeof t, 'same' | 'equal' | 'ok' | 'notOk' | 'teardown'>

async function sharesLikeOne (t: Tap, f: Fleet, label: string): Promise<void> {
  await sharesOneCache(t, f, label)
  const before = f.emulator.callCount
  const burst = f.token({ sub: `${label}-burst` })
  const replies = await Promise.all(Array.from({ length: 90 }, async () => await f.vend(burst)))
  t.ok(replies.every((r) => r.statusCode === 200), `${label}: 90 concurrent requests of one caller all served`)
  t.equal(f.emulator.callCount - before, 1, `${label}: one AssumeRole for them`)
}

/** 300 new callers at once on a fleet with a budget of 20 AssumeRole calls a second. */
async function crowd (t: Tap, redis: Record<string, unknown>, label: string): Promise<void> {
  const fleetBudget = 20
  const f = await startFleet(t as unknown as Parameters<typeof startFleet>[0], {
    config: (c) => ({ ...c, sts: { ...c.sts, fleetMaxCallsPerSecond: fleetBudget, maxCallsPerSecond: 100 }, rateLimit: { max: 100_000, timeWindowMs: 60_000 }, redis: { ...redis, keyPrefix: `crowd-${label}:` } })
  })
  const tokens = Array.from({ length: 300 }, (_, i) => f.token({ sub: `crowd-${i}` }))
  const started = performance.now()
  const replies = await Promise.all(tokens.map(async (tok) => await f.vend(tok)))
  const elapsedSeconds = (performance.now() - started) / 1000
  const ok = replies.filter((r) => r.statusCode === 200).length
  t.ok(replies.every((r) => r.statusCode === 200 || (r.statusCode === 503 && r.json.code === 'STS_VENDING_STS_BUDGET_EXHAUSTED' && Number(r.headers['retry-after']) <= 60)), `${label}: the excess gets 503 + Retry-After`)
  // A bucket that starts full grants at most rate x (1 + T) over T seconds.
  const bound = fleetBudget * (1 + Math.ceil(elapsedSeconds))
  t.ok(ok <= bound, `${label}: ${ok} calls granted in ${elapsedSeconds.toFixed(1)} s (bound ${bound})`)
  const peak = peakInWindow(f.emulator.calls.map((c) => c.at), 1000)
  t.ok(peak <= 2 * fleetBudget, `${label}: peak ${peak} arrivals at STS in a sliding second (twice the budget: ${2 * fleetBudget})`)
}

function assertNothingInClear (t: Tap, f: Fleet, dump: string, label: string): void {
  const forbidden = [`${label}-user-0`, `${label}-burst`, f.issuer.issuer]
  for (const c of f.emulator.calls.slice(0, 3)) forbidden.push(c.roleSessionName)
  for (const s of forbidden) t.notOk(dump.includes(s), `${label}: not in Redis: ${s.slice(0, 24)}`)
}

/** New callers' requests, one at a time, until stopped: what the fleet answered while Redis failed over. */
function trafficThrough (f: Fleet): { stop: () => Promise<Record<string, number>> } {
  const statuses: Record<string, number> = {}
  const traffic = { on: true }
  let n = 0
  const load = (async () => {
    while (traffic.on) {
      const r = await f.vend(f.token({ sub: `during-${n++ % 40}` }))
      statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1
    }
  })()
  return {
    async stop () {
      traffic.on = false
      await load
      return statuses
    }
  }
}

/**
 * When sharing resumed after `since`: `inARow` new callers in a row, each served by one
 * replica and then given the same credentials by the other two (each replica on its
 * own would call STS for itself); undefined if not within 15 s.
 */
async function sharingResumed (f: Fleet, since: number, inARow: number, label: string): Promise<number | undefined> {
  let shared = 0
  for (let i = 0; Date.now() - since < 15_000; i++) {
    const tok = f.token({ sub: `${label}-${i}` })
    const first = await f.vend(tok, {}, 0)
    const rest = await Promise.all([1, 2].map(async (replica) => await f.vend(tok, {}, replica)))
    if (first.statusCode === 200 && rest.every((r) => r.statusCode === 200 && r.json.accessKeyId === first.json.accessKeyId)) {
      if (++shared === inARow) return Date.now()
    } else {
      shared = 0
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  return undefined
}

function onlyDocumented (t: Tap, statuses: Record<string, number>): void {
  t.same(Object.keys(statuses).filter((s) => s !== '200' && s !== '429' && s !== '503'), [], `only served or documented refusals during the failover (${JSON.stringify(statuses)})`)
}

t.test('a three-master Redis Cluster', async (t) => {
  const cluster = await startCluster(t)
  const f = await startFleet(t, {
    config: (c) => ({ ...c, sts: { ...c.sts, maxCallsPerSecond: 100 }, redis: { clusterNodes: cluster.nodes } })
  })
  await sharesLikeOne(t, f, 'cluster')
  const keys = await cluster.keys()
  t.ok(keys.length >= 25, `keys spread over the masters (${keys.length})`)
  let dump = keys.join('\n')
  const persistent: string[] = []
  for (const key of keys) {
    const type = await cluster.admin.type(key)
    dump += type === 'string' ? (await cluster.admin.getBuffer(key))?.toString('latin1') ?? '' : JSON.stringify(await cluster.admin.hgetall(key))
    if (await cluster.admin.pttl(key) < 0) persistent.push(key)
  }
  t.same(persistent, [], 'every key has a TTL')
  assertNothingInClear(t, f, dump, 'cluster')
  const perMaster = await Promise.all(cluster.admin.nodes('master').map(async (n) => (await n.keys('*')).length))
  t.ok(perMaster.filter((n) => n > 0).length >= 2, `the keys live on several masters (${perMaster.join(', ')})`)

  // The sweep reaches every master: keys without a TTL under the prefix are deleted.
  const junk = ['stsv:junk-a', 'stsv:junk-b', 'stsv:junk-c', 'stsv:junk-d']
  for (const k of junk) await cluster.admin.set(k, 'x')
  await cluster.admin.set('other:keep', 'x')
  const client = createRedis({ settings: { target: { mode: 'cluster', nodes: cluster.nodes.map(parseNode) }, username: undefined, password: undefined, tls: false, keyPrefix: 'stsv:', commandTimeoutMs: 500 } })
  t.teardown(() => client.disconnect())
  await new Promise((resolve) => client.once('ready', resolve))
  t.equal(await sweepPersistent(client, 'stsv:'), junk.length, 'every persistent key under the prefix swept')
  for (const k of junk) t.equal(await cluster.admin.exists(k), 0, `${k} gone`)
  t.equal(await cluster.admin.exists('other:keep'), 1, 'nothing outside the prefix')
  t.ok(await cluster.admin.exists(keys[0] as string), 'the service\'s own keys kept')

  await crowd(t, { clusterNodes: cluster.nodes }, 'cluster')
})

t.test('a Redis Cluster with a replica per master, with a failover during traffic', async (t) => {
  const cluster = await startCluster(t, { replicas: 1 })
  const f = await startFleet(t, {
    config: (c) => ({ ...c, sts: { ...c.sts, maxCallsPerSecond: 100 }, redis: { clusterNodes: cluster.nodes, commandTimeoutMs: 300 } })
  })
  await sharesOneCache(t, f, 'cluster-replicas')

  const traffic = trafficThrough(f)
  const promotedPort = await cluster.failover()
  const promotedAt = Date.now()
  const direct = new Redis({ port: promotedPort, host: '127.0.0.1' })
  direct.on('error', () => {})
  t.teardown(() => direct.disconnect())
  const myself = (await direct.cluster('NODES') as string).split('\n').find((line) => line.includes('myself')) ?? ''
  t.match(myself, /myself,master .* \d+-\d+/, 'the promoted replica is a master that owns slots')
  const before = await direct.dbsize()

  // Sharing resumes on every shard: nine new callers in a row. A third of the callers'
  // keys hash to the promoted master's slots; its key count must grow.
  const resumedAt = await sharingResumed(f, promotedAt, 9, 'after-cluster-failover')
  const statuses = await traffic.stop()
  t.ok(resumedAt !== undefined && resumedAt - promotedAt <= 10_000, `nine callers in a row shared across the fleet within 10 s of the promotion (${resumedAt === undefined ? 'never' : resumedAt - promotedAt} ms)`)
  t.ok(await direct.dbsize() > before, 'the promoted master takes the new keys of its slots')
  onlyDocumented(t, statuses)
})

t.test('a Sentinel set, with a failover during traffic', async (t) => {
  const set = await startSentinel(t)
  const f = await startFleet(t, {
    config: (c) => ({ ...c, sts: { ...c.sts, maxCallsPerSecond: 100 }, redis: { sentinels: set.sentinels, sentinelName: set.name, commandTimeoutMs: 300 } })
  })
  await sharesLikeOne(t, f, 'sentinel')
  const keys = await set.admin.keys('*')
  let dump = keys.join('\n')
  for (const key of keys) {
    const type = await set.admin.type(key)
    dump += type === 'string' ? (await set.admin.getBuffer(key))?.toString('latin1') ?? '' : JSON.stringify(await set.admin.hgetall(key))
  }
  assertNothingInClear(t, f, dump, 'sentinel')

  // Traffic goes on through the failover: served throughout, only documented refusals.
  const traffic = trafficThrough(f)
  const oldMaster = await set.masterPort()
  await set.failover()
  const promotedAt = Date.now()
  t.not(await set.masterPort(), oldMaster, 'the replica was promoted')

  // Sharing resumes: a new caller served by one replica gets the same credentials from
  // the other two.
  const resumedAt = await sharingResumed(f, promotedAt, 1, 'after-failover')
  const statuses = await traffic.stop()
  t.ok(resumedAt !== undefined && resumedAt - promotedAt <= 10_000, `sharing resumed within 10 s of the promotion (${resumedAt === undefined ? 'never' : resumedAt - promotedAt} ms)`)
  onlyDocumented(t, statuses)
  await crowd(t, { sentinels: set.sentinels, sentinelName: set.name }, 'sentinel')
})
