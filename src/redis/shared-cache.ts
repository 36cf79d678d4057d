// The second level: credentials shared by every replica through Redis, encrypted
// (redis/entries.ts), with a fleet single-flight: on a miss one replica takes a short
// lock and calls STS, the others poll with backoff until the entry appears or the
// lock frees (then one of them takes it), and a waiter that reaches its deadline
// answers 504 as a local waiter would. The deadline is the request's, not the wait's:
// a waiter that ends up calling STS itself (the holder died, Redis failed) is handed
// what is left of it, so wait and call together end by `waitDeadlineMs`.
//
// Redis is shared state, not a dependency to fail on: any Redis error (down, slow)
// makes this request go straight to its loader, behind the first level's local
// single-flight and the per-replica call budget. Writes are best effort.
//
// Nothing read is trusted, since anyone who can write to Redis can write here: a value
// that is not a string, is larger than any entry we write, or does not decrypt and
// parse is a miss (and the owner's write replaces it, with a TTL); a lock held longer
// than one lock period (no TTL, a re-set lock) is given up on, and the waiter calls
// STS itself within what is left of its deadline.
import type { StsCredentials } from '../alicloud/sts-types.js'
import type { RedisClient } from './connection.js'
import type { EntryCipher } from './entries.js'
import type { Acquired, Lock } from './lock.js'
import { UpstreamTimeout, withRetryAfter } from '../errors.js'
import type { CacheLookup } from '../cache/credential-cache.js'

export interface SharedCacheEvents {
  hit?: () => void
  miss?: () => void
  /** A value that did not decrypt or authenticate (another key, garbage, tampering). */
  undecryptable?: () => void
  /** This request waited for another replica's call. */
  lockWait?: () => void
  /** A lock held longer than one lock period: the waiter went on to STS itself. */
  staleLock?: () => void
  /** A Redis command failed; the request went on without the shared level. */
  error?: (err: unknown) => void
}

export interface SharedCacheOptions {
  redis: RedisClient
  cipher: EntryCipher
  lock: Lock
  minRemainingSeconds: number
  /** How long a lock holder may take before another replica may try: about one STS timeout. */
  lockTtlMs: number
  /** The request's deadline for its upstream work (sts.deadlineMs): waiting and its own call together. */
  waitDeadlineMs: number
  now: () => number
  /** A monotonic clock in ms for the deadline (injectable for fake time). */
  clock?: () => number
  events?: SharedCacheEvents
  /** Real waiting between polls (injectable for tests that count polls). */
  sleep?: (ms: number) => Promise<void>
  random?: () => number
}

/** Fetches credentials within what is left of the request's deadline (ms, read when the call starts). */
export type DeadlineFetch = (remainingMs: () => number) => Promise<StsCredentials>

export interface SharedCache {
  getOrLoad (key: string, fetch: DeadlineFetch): Promise<CacheLookup>
  /** Delete the fleet's entry under this key (a denied caller's); best effort, never rejects. */
  forget (key: string): Promise<void>
}

const FIRST_POLL_MS = 10
const MAX_POLL_MS = 200
/** No entry we seal comes near this (an STS token is a few KiB); anything larger is foreign. */
export const MAX_ENTRY_BYTES = 16_384

// KEYS[1] entry; ARGV[1] the largest entry. The value, false when absent, or 0 for a
// value that cannot be ours (another type, or too large to read).
const READ = `
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return false end
if kind ~= 'string' or redis.call('STRLEN', KEYS[1]) > tonumber(ARGV[1]) then return 0 end
return redis.call('GET', KEYS[1])`

const realSleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

class RedisFailed extends Error {}

export function createSharedCache (opts: SharedCacheOptions): SharedCache {
  const { redis, cipher, lock, now } = opts
  const ev = opts.events ?? {}
  const sleep = opts.sleep ?? realSleep
  const random = opts.random ?? Math.random
  const clock = opts.clock ?? (() => performance.now())
  const marginMs = opts.minRemainingSeconds * 1000

  async function read (name: string): Promise<StsCredentials | undefined> {
    let value: unknown
    try {
      value = await redis.callBuffer('EVAL', READ, 1, name, MAX_ENTRY_BYTES)
    } catch (err) {
      ev.error?.(err)
      throw new RedisFailed()
    }
    if (value === null) return undefined
    const c = Buffer.isBuffer(value) ? cipher.open(name, value) : undefined
    if (c === undefined) {
      ev.undecryptable?.()
      return undefined
    }
    // Checked again on read: the writer's clock may differ from ours.
    return c.expiration.getTime() - now() >= marginMs ? c : undefined
  }

  async function write (name: string, c: StsCredentials): Promise<void> {
    const ttl = Math.floor(c.expiration.getTime() - marginMs - now())
    if (ttl <= 0) return
    try {
      await redis.set(name, cipher.seal(name, c), 'PX', ttl)
    } catch (err) {
      ev.error?.(err)
    }
  }

  /** The loader, with what is left of the deadline; 504 at once when nothing is. */
  async function fetchWithin (fetch: DeadlineFetch, deadline: number): Promise<StsCredentials> {
    const remainingMs = (): number => deadline - clock()
    if (remainingMs() <= 0) throw withRetryAfter(new UpstreamTimeout(), 2)
    return await fetch(remainingMs)
  }

  async function loadAsOwner (name: string, fetch: DeadlineFetch, deadline: number): Promise<CacheLookup> {
    // Another replica may have written it between our read and our lock.
    const again = await read(name).catch(() => undefined)
    if (again !== undefined) {
      ev.hit?.()
      return { credentials: again, fromCache: true }
    }
    ev.miss?.()
    const c = await fetchWithin(fetch, deadline)
    await write(name, c)
    return { credentials: c, fromCache: false }
  }

  return {
    async forget (key) {
      try {
        await redis.del(cipher.name('c', key))
      } catch (err) {
        ev.error?.(err)
      }
    },
    async getOrLoad (key, fetch) {
      const name = cipher.name('c', key)
      const lockName = cipher.name('l', key)
      const deadline = clock() + opts.waitDeadlineMs
      let delay = FIRST_POLL_MS
      let waited = false
      // The holder we are waiting for, and since when: one holder's lock lasts one lock
      // period at most (lock.ts caps its TTL); the same holder still there after that
      // is not a call of ours in flight.
      let holder: string | undefined
      let heldSince = 0
      try {
        for (;;) {
          const hit = await read(name)
          if (hit !== undefined) {
            ev.hit?.()
            return { credentials: hit, fromCache: true }
          }
          let got: Acquired
          try {
            got = await lock.acquire(lockName, opts.lockTtlMs)
          } catch (err) {
            ev.error?.(err)
            throw new RedisFailed()
          }
          if (got.taken) {
            const token = got.token
            try {
              return await loadAsOwner(name, fetch, deadline)
            } finally {
              lock.release(lockName, token).catch((err: unknown) => ev.error?.(err))
            }
          }
          if (!waited) {
            waited = true
            ev.lockWait?.()
          }
          if (got.holder !== holder) {
            holder = got.holder
            heldSince = clock()
          } else if (clock() - heldSince >= opts.lockTtlMs) {
            // Held for longer than any holder of ours can: not a call we can wait for.
            ev.staleLock?.()
            return await loadAsOwner(name, fetch, deadline)
          }
          const pause = delay / 2 + random() * delay / 2
          if (clock() + pause >= deadline) throw withRetryAfter(new UpstreamTimeout(), 2)
          await sleep(pause)
          delay = Math.min(MAX_POLL_MS, delay * 2)
        }
      } catch (err) {
        if (!(err instanceof RedisFailed)) throw err
        return { credentials: await fetchWithin(fetch, deadline), fromCache: false }
      }
    }
  }
}
