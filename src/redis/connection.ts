// The Redis connection. Redis holds shared state, never a dependency to fail on: the
// offline queue is off (a command while disconnected fails at once instead of
// queueing), every command has a timeout, a command is never retried (the caller
// falls back to local state), and the client reconnects by itself with capped
// backoff. The password comes from an env var (a password inside the URL is refused
// by the config check), and rediss:// turns TLS on.
import { Redis } from 'ioredis'

export type RedisClient = Redis

export interface RedisOptions {
  url: string
  password?: string | undefined
  keyPrefix: string
  commandTimeoutMs: number
  /** Called on every change between connected (true) and not (false). */
  onState?: (up: boolean) => void
  log?: { warn: (obj: object, msg: string) => void, info: (obj: object, msg: string) => void }
}

export function createRedis (opts: RedisOptions): RedisClient {
  const url = new URL(opts.url)
  const redis = new Redis(opts.url, {
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    ...(url.protocol === 'rediss:' ? { tls: { servername: url.hostname } } : {}),
    keyPrefix: opts.keyPrefix,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.max(1000, opts.commandTimeoutMs * 4),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Reconnect forever, backing off to 2 s: sharing resumes once Redis is back.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    lazyConnect: false
  })
  let up = false
  const set = (next: boolean, err?: Error): void => {
    if (next === up) return
    up = next
    opts.onState?.(next)
    // Only transitions are logged: a Redis that stays down must not flood the log.
    if (next) opts.log?.info({}, 'redis connected: sharing state with the fleet')
    else opts.log?.warn({ err: err !== undefined ? { message: err.message } : undefined }, 'redis unreachable: serving from local state')
  }
  redis.on('ready', () => set(true))
  redis.on('error', (err: Error) => set(false, err))
  redis.on('close', () => set(false))
  return redis
}

/**
 * Wait (bounded) for the first connection, so that a replica that has just started
 * shares from its first request. Never fails: Redis is not a dependency to start on.
 */
export async function firstConnection (redis: RedisClient, withinMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true
  return await new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      redis.off('ready', onReady)
      resolve(ok)
    }
    const onReady = (): void => done(true)
    const timer = setTimeout(() => done(false), withinMs)
    redis.on('ready', onReady)
  })
}
