// A short lock per entry, so that concurrent misses on different replicas make one
// AssumeRole. SET NX PX with a random owner token; only the owner releases it (Lua
// compares the token first); a holder that dies releases nothing and the lock simply
// expires, after which a waiter takes it. A lock someone else wrote without a TTL, or
// with a longer one than ours, is given ours when a waiter finds it, so it cannot
// outlive one lock period. Errors propagate: the caller decides to fall back to local
// state.
import { randomBytes } from 'node:crypto'
import type { RedisClient } from './connection.js'

const RELEASE = 'if redis.call(\'GET\', KEYS[1]) == ARGV[1] then return redis.call(\'DEL\', KEYS[1]) end return 0'

// KEYS[1] lock; ARGV token, TTL (ms). 1 when taken; otherwise the holder's token (0
// for a value that is not one), the lock's TTL capped at ours.
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 or ttl > tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return 0 end
return redis.call('GET', KEYS[1])`

export type Acquired = { taken: true, token: string } | { taken: false, holder: string }

export interface Lock {
  /** Taken, with our owner token; or held, with the holder's (to tell one holder from the next). */
  acquire (name: string, ttlMs: number): Promise<Acquired>
  release (name: string, token: string): Promise<void>
}

export function createLock (redis: RedisClient): Lock {
  return {
    async acquire (name, ttlMs) {
      const token = randomBytes(16).toString('base64url')
      const reply = await redis.eval(ACQUIRE, 1, name, token, ttlMs)
      return reply === 1 ? { taken: true, token } : { taken: false, holder: String(reply) }
    },
    async release (name, token) {
      await redis.eval(RELEASE, 1, name, token)
    }
  }
}
