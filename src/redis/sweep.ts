// Every key this service writes has a TTL, set in the same command or script that
// writes it. A key under our prefix without one was written by someone else (or left
// by a vandal's PERSIST) and is deleted: otherwise a key that no request touches
// again would stay forever. Each replica sweeps now and then (SCAN, a few hundred keys
// a round trip, on every master of a cluster); the check and the delete are one
// script, so a key that gains a TTL meanwhile is kept.
import type { Cluster, Redis } from 'ioredis'
import type { RedisClient } from './connection.js'

const DEL_IF_PERSISTENT = "if redis.call('PTTL', KEYS[1]) == -1 then return redis.call('DEL', KEYS[1]) end return 0"

/** How often a replica sweeps (with jitter, so replicas do not sweep together). */
export const SWEEP_EVERY_MS = 10 * 60_000

function masters (redis: RedisClient): Redis[] {
  return 'nodes' in redis && typeof (redis as Cluster).nodes === 'function' && (redis as { isCluster?: boolean }).isCluster === true
    ? (redis as Cluster).nodes('master')
    : [redis as Redis]
}

/** Deletes every key under `prefix` that has no TTL; returns how many. */
export async function sweepPersistent (redis: RedisClient, prefix: string): Promise<number> {
  let removed = 0
  for (const node of masters(redis)) {
    let cursor = '0'
    do {
      // SCAN's MATCH is not prefixed by the client: the full names come back.
      const [next, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 500)
      cursor = next
      for (const key of keys) {
        // Through the client that routes by slot and adds the prefix itself.
        removed += Number(await redis.eval(DEL_IF_PERSISTENT, 1, key.slice(prefix.length)))
      }
    } while (cursor !== '0')
  }
  return removed
}

function escapeGlob (s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&')
}
