// Three replicas on one Redis behind a round-robin client, one STS emulator: the
// fleet makes one AssumeRole per caller, and the shared entries reveal nothing.
import t from 'tap'
import { startFleet } from './fleet.js'
import { cacheKey } from '../helpers/redis.js'

t.test('N callers x 3 requests over three replicas: N AssumeRole calls (without Redis: 3N)', async (t) => {
  const N = 25
  for (const shared of [true, false]) {
    // The budgets are not under test: without Redis each replica makes N calls, which a
    // fast machine packs into less than a second, past the default 20/s of one replica.
    const f = await startFleet(t, { shared, config: (c) => ({ ...c, sts: { ...c.sts, maxCallsPerSecond: 100 } }) })
    const tokens = Array.from({ length: N }, (_, i) => f.token({ sub: `user-${i}` }))
    for (let round = 0; round < 3; round++) {
      const replies = await Promise.all(tokens.map(async (tok) => await f.vend(tok)))
      t.same(replies.filter((r) => r.statusCode !== 200).map((r) => r.json?.code), [], `round ${round}: all 200`)
    }
    if (shared) t.equal(f.emulator.callCount, N, `with Redis: ${N} calls for ${N} callers`)
    else t.equal(f.emulator.callCount, 3 * N, `without Redis: every replica calls for itself (${3 * N})`)
  }
})

t.test('100 concurrent requests for one new caller spread over the replicas: one AssumeRole', async (t) => {
  const f = await startFleet(t)
  const tok = f.token({ sub: 'burst' })
  const replies = await Promise.all(Array.from({ length: 100 }, async () => await f.vend(tok)))
  t.ok(replies.every((r) => r.statusCode === 200), 'all 200')
  t.equal(f.emulator.callCount, 1, 'one call for the whole fleet')
  t.equal(new Set(replies.map((r) => r.json.accessKeyId)).size, 1, 'everyone got the same credentials')
})

t.test('a new replica serves an already cached caller from Redis, with no STS call', async (t) => {
  const f = await startFleet(t, { replicas: 1 })
  const tok = f.token({ sub: 'early' })
  const first = await f.vend(tok)
  t.equal(first.statusCode, 200)
  t.equal(f.emulator.callCount, 1)
  const app = await f.addReplica()
  const second = await f.vend(tok, {}, 1)
  t.equal(second.statusCode, 200)
  t.equal(second.json.accessKeyId, first.json.accessKeyId, 'the same credentials')
  t.equal(f.emulator.callCount, 1, 'no second AssumeRole')
  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /stsv_cache_shared_hits_total 1/, 'counted as a shared (L2) hit')
  t.match(metrics, /stsv_redis_up 1/)
})

t.test('Redis holds no AccessKeyId, secret, token, subject or directory in plaintext', async (t) => {
  // Signing on, so that the grant's signing credential and the uploads counters are scanned too.
  const f = await startFleet(t, { config: (c) => ({ ...c, grants: c.grants.map((g: object) => ({ ...g, signing: { maxBytes: 64, expiresSeconds: 600 } })) }) })
  const subjects = ['alice-plain', 'bob-plain', 'carol-plain']
  const issued: any[] = []
  const signing = new Set<string>()
  for (const sub of subjects) {
    const tok = f.token({ sub })
    const r = await f.vend(tok, { prefix: `dir111/dir111_secondline1/${sub}/photos/` })
    t.equal(r.statusCode, 200)
    issued.push(r.json)
    const signed = await f.upload('url', tok, { key: `dir111/dir111_secondline1/${sub}/photos/a.txt`, method: 'GET' })
    t.equal(signed.statusCode, 200)
    const url = new URL(signed.json.url)
    signing.add((url.searchParams.get('x-oss-credential') as string).split('/')[0] as string)
    signing.add(url.searchParams.get('x-oss-security-token') as string)
  }
  const names = await f.redis.admin.keys('*')
  t.ok(names.length >= subjects.length, `entries were written (${names.length} keys)`)
  // Every kind of name the service writes is in the scan: entries, per-caller budgets and request counters.
  for (const kind of ['c', 'u', 'rl:credentials', 'rl:uploads']) {
    t.ok(names.some((n) => n.startsWith(`stsv:${kind}:`)), `the scan covers ${kind} names`)
  }
  let dump = names.join('\n')
  for (const name of names) {
    const type = await f.redis.admin.type(name)
    if (type === 'string') dump += (await f.redis.admin.getBuffer(name))?.toString('latin1') ?? ''
    else if (type === 'hash') dump += JSON.stringify(await f.redis.admin.hgetall(name))
  }
  const forbidden = [
    ...issued.flatMap((c) => [c.accessKeyId, c.accessKeySecret, c.securityToken, c.prefix]),
    ...signing,
    ...subjects, 'dir111_secondline1', 'photos', 'oss-upload', f.issuer.issuer
  ]
  for (const s of forbidden) t.notOk(dump.includes(s), `not in Redis: ${s.slice(0, 24)}…`)
  t.ok(names.every((n) => n.startsWith('stsv:')), 'every name carries the key prefix')
})

t.test('a replica with another encryption key does not serve the shared entries: it asks STS afresh', async (t) => {
  const f = await startFleet(t, { replicas: 1 })
  const tok = f.token({ sub: 'rotating' })
  t.equal((await f.vend(tok)).statusCode, 200)
  t.equal(f.emulator.callCount, 1)
  const stranger = await f.addReplica({ keys: cacheKey() })
  const r = await f.vend(tok, {}, 1)
  t.equal(r.statusCode, 200)
  t.equal(f.emulator.callCount, 2, 'a fresh AssumeRole')
  const metrics = (await stranger.inject('/metrics')).body
  t.notMatch(metrics, /stsv_cache_shared_hits_total [1-9]/, 'nothing served from the shared level')
})

t.test('rotation: a new key at the front keeps existing entries reachable and readable', async (t) => {
  const old = cacheKey()
  const f = await startFleet(t, { replicas: 1, keys: old })
  const tok = f.token({ sub: 'rotated' })
  t.equal((await f.vend(tok)).statusCode, 200)
  await f.addReplica({ keys: `${cacheKey()},${old}` })
  const r = await f.vend(tok, {}, 1)
  t.equal(r.statusCode, 200)
  t.equal(f.emulator.callCount, 1, 'served from the entry sealed under the old key')
  // And the rotated replica's own entries are readable by itself.
  t.equal((await f.vend(f.token({ sub: 'after-rotation' }), {}, 1)).statusCode, 200)
  t.equal((await f.vend(f.token({ sub: 'after-rotation' }), {}, 1)).statusCode, 200)
  t.equal(f.emulator.callCount, 2)
})
