// The fleet's shared state, wired in one place: the Redis connection, the entry cipher,
// the lock, the Lua budgets, the shared cache level, the per-surface rate-limit stores
// and the HMAC that names a caller in Redis. Loaded (with ioredis, a tenth of the
// start-up's module loading) only when Redis is configured. It registers its own
// hooks: onReady waits (bounded) for the first connection, so that a replica shares
// from its first request; onClose disconnects without the "unreachable" warning, since
// a deliberate close is not an outage. Metrics come in as plain event functions: this
// folder knows nothing of observability/.
import type { FastifyInstance } from 'fastify'
import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import { createRedis, firstConnection, redisStatus, type RedisStatus } from './connection.js'
import { createEntryCipher } from './entries.js'
import { createLock } from './lock.js'
import { createRedisBuckets, type Buckets } from './budget.js'
import { sharedRateLimitStore } from './rate-limit.js'
import { createSharedCache, type SharedCache } from './shared-cache.js'
import type { SharedStateSettings } from './settings.js'
import { SWEEP_EVERY_MS, sweepPersistent } from './sweep.js'
import { callerDenyField, watchDenyList, type DenyList } from './deny.js'
import { createLocalOnce, createRedisOnce, type OnceStore } from './once.js'

/** How long start-up waits for the first connection before serving from local state. */
export const FIRST_CONNECTION_MS = 2000

export interface FleetEvents {
  /** Connected (true) or not (false); false once before connecting. */
  state?: (up: boolean) => void
  /** A Redis command failed; the request went on with local state. */
  error?: () => void
  sharedHit?: () => void
  undecryptable?: () => void
  lockWait?: () => void
}

export interface FleetOptions {
  settings: SharedStateSettings
  /** cache.minRemainingSeconds: the shared level never serves below it either. */
  minRemainingSeconds: number
  /** sts.timeoutMs and sts.deadlineMs: the lock's lifetime and the request's wait. */
  stsTimeoutMs: number
  stsDeadlineMs: number
  now: () => number
  events?: FleetEvents
}

export interface Fleet {
  shared: SharedCache
  buckets: Buckets
  /** A caller's bucket name in Redis (an HMAC: names must not reveal who is active). */
  callerName: (callerId: string) => string
  /** A rate-limit store for one caller surface: each surface keeps its own per-caller count, for the whole fleet. */
  rateLimitStore: (surface: string) => FastifyRateLimitStoreCtor
  /** Connected or not, and why not (the start-up line). */
  status: () => RedisStatus
  /** The fleet-wide deny list (sts-vending deny), as this replica last loaded it. */
  denyList: DenyList
  /** A caller's name in the deny list (the same HMAC the entries are named by). */
  denyName: (callerId: string) => string
  /** Called with the names of the entries this replica sees for the first time (one listener). */
  onDenied: (listener: (names: ReadonlySet<string>) => void) => void
  /** Fleet-wide "first claim wins" (upload-callback tickets). */
  once: OnceStore
}

export function connectFleet (app: FastifyInstance, opts: FleetOptions): Fleet {
  const { settings, now } = opts
  const ev = opts.events ?? {}
  const error = (): void => ev.error?.()
  ev.state?.(false)
  const redis = createRedis({
    settings,
    ...(ev.state !== undefined ? { onState: ev.state } : {}),
    log: app.log
  })
  // Keys without a TTL are not ours (redis/sweep.ts): swept now and then, with jitter.
  let sweeper: NodeJS.Timeout | undefined
  let closed = false
  const sweepLater = (): void => {
    if (closed) return
    sweeper = setTimeout(() => {
      sweepPersistent(redis, settings.keyPrefix).catch(error).finally(sweepLater)
    }, SWEEP_EVERY_MS * (0.5 + Math.random()))
    sweeper.unref()
  }
  app.addHook('onReady', async () => {
    await firstConnection(redis, FIRST_CONNECTION_MS)
    sweepLater()
  })
  app.addHook('onClose', async () => {
    closed = true
    clearTimeout(sweeper)
    // A deliberate close is not an outage: no "unreachable" warning on the way out.
    redis.removeAllListeners('close')
    redis.removeAllListeners('error')
    redis.on('error', () => {})
    redis.disconnect()
  })
  const cipher = createEntryCipher(settings.keys)
  let denied: ((names: ReadonlySet<string>) => void) | undefined
  const deny = watchDenyList(redis, cipher, settings.keyPrefix, { now, onError: error, onDenied: (names) => denied?.(names) })
  app.addHook('onClose', async () => { deny.close() })
  return {
    denyList: deny.list,
    denyName: (id) => callerDenyField(cipher, id),
    onDenied: (listener) => { denied = listener },
    status: () => redisStatus(redis),
    callerName: (id) => cipher.name('u', id),
    rateLimitStore: (surface) => sharedRateLimitStore({ redis, name: (key) => cipher.name(`rl:${surface}`, key), now, onError: error }),
    buckets: createRedisBuckets(redis),
    once: createRedisOnce(redis, (n) => cipher.name('once', n), createLocalOnce({ now }), error),
    shared: createSharedCache({
      redis,
      cipher,
      lock: createLock(redis),
      minRemainingSeconds: opts.minRemainingSeconds,
      // About one STS call: a dead holder delays the others by this much at most.
      lockTtlMs: Math.min(opts.stsTimeoutMs + 1000, opts.stsDeadlineMs - 1),
      waitDeadlineMs: opts.stsDeadlineMs,
      now,
      events: {
        ...(ev.sharedHit !== undefined ? { hit: ev.sharedHit } : {}),
        ...(ev.undecryptable !== undefined ? { undecryptable: ev.undecryptable } : {}),
        ...(ev.lockWait !== undefined ? { lockWait: ev.lockWait } : {}),
        error
      }
    })
  }
}
