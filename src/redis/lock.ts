// A short lock per entry, so that concurrent misses on different replicas make one
// AssumeRole. SET NX PX with a random owner token; only the owner releases it (Lua
// compares the token first); a holder that dies releases nothing and the lock simply
// expires, after which a waiter takes it. Errors propagate: the caller decides to
// fall back to local state.
import { randomBytes } from 'node:crypto'
import type { RedisClient } from './connection.js'

const RELEASE = 'if redis.call(\'GET\', KEYS[1]) == ARGV[1] then return redis.call(\'DEL\', KEYS[1]) end return 0'

export interface Lock {
  /** The owner token when taken, undefined when someone else holds it. */
  acquire (name: string, ttlMs: number): Promise<string | undefined>
  release (name: string, token: string): Promise<void>
}

export function createLock (redis: RedisClient): Lock {
  return {
    async acquire (name, ttlMs) {
      const token = randomBytes(16).toString('base64url')
      const ok = await redis.set(name, token, 'PX', ttlMs, 'NX')
      return ok === 'OK' ? token : undefined
    },
    async release (name, token) {
      await redis.eval(RELEASE, 1, name, token)
    }
  }
}
