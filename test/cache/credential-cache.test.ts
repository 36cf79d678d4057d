// The in-process cache alone, on a fake clock: what it serves, for how long, and what
// it never stores.
import t from 'tap'
import { cacheKey, createCredentialCache } from '../../src/cache/credential-cache.js'
import type { StsCredentials } from '../../src/alicloud/sts-types.js'

const MARGIN_S = 1200

function setup (maxEntries = 10): { clock: { now: number }, cache: ReturnType<typeof createCredentialCache>, events: string[] } {
  const clock = { now: Date.UTC(2026, 10, 30, 8, 0, 0) }
  const events: string[] = []
  const cache = createCredentialCache({
    maxEntries,
    minRemainingSeconds: MARGIN_S,
    now: () => clock.now,
    events: { hit: () => events.push('hit'), miss: () => events.push('miss'), coalesced: () => events.push('coalesced'), evicted: () => events.push('evicted') }
  })
  return { clock, cache, events }
}

let serial = 0
function creds (clock: { now: number }, validSeconds: number): StsCredentials {
  serial++
  return { accessKeyId: `STS.id${serial}`, accessKeySecret: `secret${serial}`, securityToken: `token${serial}`, expiration: new Date(clock.now + validSeconds * 1000) }
}

t.test('a hit until Expiration minus the margin, then a fresh fetch', async (t) => {
  const { clock, cache, events } = setup()
  const first = creds(clock, 3600)
  t.same(await cache.getOrFetch('k', async () => first), { credentials: first, fromCache: false })
  clock.now += (3600 - MARGIN_S - 1) * 1000
  t.same(await cache.getOrFetch('k', async () => t.fail('no fetch while fresh') as never), { credentials: first, fromCache: true })
  clock.now += 1000 // exactly at the margin: still usable (>=), as the route promises
  t.equal((await cache.getOrFetch('k', async () => creds(clock, 3600))).fromCache, true)
  clock.now += 1
  const second = creds(clock, 3600)
  t.same(await cache.getOrFetch('k', async () => second), { credentials: second, fromCache: false }, 'below the margin: never served')
  t.same(events, ['miss', 'hit', 'hit', 'miss'])
})

t.test('credentials that arrive already below the margin are handed back once, never stored', async (t) => {
  const { clock, cache } = setup()
  const short = creds(clock, MARGIN_S - 10)
  t.equal((await cache.getOrFetch('k', async () => short)).credentials, short)
  t.equal(cache.size, 0)
  t.equal(cache.peek('k'), undefined)
})

t.test('concurrent misses for one key share one fetch; other keys do not', async (t) => {
  const { clock, cache, events } = setup()
  let calls = 0
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const fetch = async (): Promise<StsCredentials> => { calls++; await gate; return creds(clock, 3600) }
  const same = Array.from({ length: 50 }, async () => await cache.getOrFetch('k', fetch))
  const other = cache.getOrFetch('other', fetch)
  release()
  const results = await Promise.all(same)
  await other
  t.equal(calls, 2, 'one fetch for "k", one for "other"')
  t.ok(results.every((r) => r.credentials === results[0]?.credentials), 'every waiter gets the same credentials')
  t.equal(events.filter((e) => e === 'coalesced').length, 49)
})

t.test('a failure is shared by the waiters of that moment and never cached', async (t) => {
  const { clock, cache } = setup()
  let calls = 0
  const failing = async (): Promise<StsCredentials> => { calls++; throw new Error('upstream down') }
  const all = await Promise.allSettled([cache.getOrFetch('k', failing), cache.getOrFetch('k', failing)])
  t.ok(all.every((r) => r.status === 'rejected'))
  t.equal(calls, 1)
  t.equal(cache.size, 0)
  const ok = creds(clock, 3600)
  t.equal((await cache.getOrFetch('k', async () => ok)).credentials, ok, 'the next request asks again')
})

t.test('maxEntries bounds memory (LRU); 0 turns caching and coalescing off', async (t) => {
  const { clock, cache, events } = setup(2)
  for (const k of ['a', 'b', 'c']) await cache.getOrFetch(k, async () => creds(clock, 3600))
  t.equal(cache.size, 2)
  t.ok(events.includes('evicted'))
  t.equal(cache.peek('a'), undefined, 'the least recently used went first')

  const off = setup(0)
  let calls = 0
  await Promise.all([1, 2, 3].map(async () => await off.cache.getOrFetch('k', async () => { calls++; return creds(off.clock, 3600) })))
  t.equal(calls, 3, 'the naive design: one fetch per request')
  t.equal(off.cache.size, 0)
})

t.test('the cache key changes with everything that shapes the credentials', async (t) => {
  const base: { roleArn: string, policy: string, durationSeconds: number, roleSessionName: string, externalId?: string | undefined } = { roleArn: 'acs:ram::1:role/r', policy: '{"Version":"1"}', durationSeconds: 3600, roleSessionName: 'alice', externalId: undefined }
  const key = cacheKey(base)
  const variants: Array<[string, Partial<typeof base>]> = [
    ['role', { roleArn: 'acs:ram::1:role/other' }],
    ['policy', { policy: '{"Version":"1","Statement":[]}' }],
    ['duration', { durationSeconds: 1800 }],
    ['session name', { roleSessionName: 'bob' }],
    ['external id', { externalId: 'x1' }]
  ]
  for (const [desc, change] of variants) t.not(cacheKey({ ...base, ...change }), key, desc)
  t.equal(cacheKey({ ...base }), key, 'and only with those')
  t.match(key, /^[A-Za-z0-9_-]{43}$/, 'a fixed-size hash, never the policy itself')
})

t.test('delete: the entry goes; a load in flight still answers its waiters but is not kept', async (t) => {
  const { clock, cache } = setup()
  await cache.getOrFetch('k', async () => creds(clock, 3600))
  cache.delete('k')
  t.equal(cache.peek('k'), undefined)
  t.equal(cache.size, 0)

  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const late = creds(clock, 3600)
  const first = cache.getOrFetch('k', async () => { await held; return late })
  const joined = cache.getOrFetch('k', async () => creds(clock, 3600))
  cache.delete('k')
  release()
  t.equal((await first).credentials, late)
  t.equal((await joined).credentials, late, 'the coalesced waiter gets it too')
  t.equal(cache.size, 0, 'not kept')
  const next = await cache.getOrFetch('k', async () => creds(clock, 3600))
  t.equal(next.fromCache, false, 'the next lookup loads afresh')
  t.equal(cache.size, 1, 'and keeps what it loaded')
})

t.test('onDrop: told when an entry expires or is deleted, not when it is evicted while usable', async (t) => {
  const clock = { now: Date.UTC(2026, 10, 30, 8, 0, 0) }
  const dropped: string[] = []
  const cache = createCredentialCache({ maxEntries: 2, minRemainingSeconds: MARGIN_S, now: () => clock.now, onDrop: (k) => dropped.push(k) })
  await cache.getOrFetch('a', async () => creds(clock, 3600))
  await cache.getOrFetch('b', async () => creds(clock, 7200))
  await cache.getOrFetch('c', async () => creds(clock, 7200))
  t.same(dropped, [], 'a was evicted for room while usable')
  clock.now += (3600 - MARGIN_S) * 1000 + 1
  await cache.getOrFetch('d', async () => creds(clock, 7200))
  t.same(dropped, [], 'b evicted, still usable')
  cache.delete('c')
  t.same(dropped, ['c'])
  clock.now += 7200 * 1000
  t.equal(cache.peek('d'), undefined)
  t.same(dropped, ['c', 'd'], 'd expired')
  await cache.getOrFetch('e', async () => creds(clock, 3600))
  clock.now += 3600 * 1000
  await cache.getOrFetch('f', async () => creds(clock, 3600))
  await cache.getOrFetch('g', async () => creds(clock, 3600))
  t.same(dropped, ['c', 'd', 'e'], 'e evicted once expired: dropped')
})

t.test('cached: a hit without a promise, counted as getOrLoad counts one; otherwise nothing is loaded', async (t) => {
  const { clock, cache, events } = setup()
  t.equal(cache.cached('k'), undefined, 'nothing cached yet')
  t.same(events, [], 'and no miss counted: the caller goes on to load')
  const first = creds(clock, 3600)
  await cache.getOrFetch('k', async () => first)
  const hit = cache.cached('k')
  t.notOk(hit instanceof Promise, 'an answer, not a promise')
  t.same(hit, { credentials: first, fromCache: true })
  t.same(events, ['miss', 'hit'])
  clock.now += (3600 - MARGIN_S) * 1000 + 1
  t.equal(cache.cached('k'), undefined, 'below the margin: not a hit')
  t.same(events, ['miss', 'hit'])
  t.equal(createCredentialCache({ maxEntries: 0, minRemainingSeconds: MARGIN_S }).cached('k'), undefined, 'no cache, no hit')
})
