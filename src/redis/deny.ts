// The fleet-wide deny list: an operator stops a compromised caller on every replica
// (sts-vending deny), since STS credentials cannot be revoked and nothing else would
// stop re-issuing to it until its token expires. One hash holds every entry (one
// key, so one hash slot on a cluster): the field is an HMAC of issuer and subject
// (like the cache's names: no subject readable in Redis), the value the time the
// entry ends, in clear, then the record (issuer, subject, reason) sealed like a
// cache entry, for `deny --list`. The hash expires a minute after its last entry,
// and every write drops ended entries. Writers publish on a channel; replicas reload
// the whole set on each message, on every (re)connect and every 30 s, and keep the
// set they had while Redis is unreachable. Each reload hands the entries it sees for
// the first time to `onDenied` (by field: the replica matches them against the HMACs
// of the callers it knows, credential-source.ts, and drops their cached credentials).
import type { RedisClient } from './connection.js'
import type { EntryCipher } from './entries.js'

export const DENY_KEY = 'deny'
/** Channels are not key-prefixed by the client: the prefix is added here. */
export const denyChannel = (keyPrefix: string): string => `${keyPrefix}deny`
/** How long a deny may last: `deny --for`, from 1 minute to 30 days. */
export const MIN_DENY_MS = 60_000
export const MAX_DENY_MS = 30 * 86_400_000
const RELOAD_EVERY_MS = 30_000

export interface DenyRecord { issuer: string, subject: string, until: number, reason?: string | undefined }

// KEYS[1] the hash; ARGV[1] field ('' for none), ARGV[2] value ('' to delete it).
// Drops ended entries (Redis's clock) and keeps the hash a minute past the last one.
const WRITE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then redis.call('DEL', KEYS[1]) end
local changed = 0
if ARGV[1] ~= '' then
  if ARGV[2] ~= '' then changed = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) + 1 else changed = redis.call('HDEL', KEYS[1], ARGV[1]) end
end
local all = redis.call('HGETALL', KEYS[1])
local last = 0
for i = 1, #all, 2 do
  local untilMs = tonumber(string.match(all[i + 1], '^(%d+):'))
  if untilMs == nil or untilMs <= now then redis.call('HDEL', KEYS[1], all[i]) elseif untilMs > last then last = untilMs end
end
if last > 0 then redis.call('PEXPIRE', KEYS[1], last - now + 60000) end
return changed`

export function denyField (cipher: EntryCipher, issuer: string, subject: string): string {
  return callerDenyField(cipher, `${issuer}\n${subject}`)
}

/** The same field from a caller's id (`issuer\nsubject`, as vend.ts's orders name the caller). */
export function callerDenyField (cipher: EntryCipher, callerId: string): string {
  return cipher.name('d', callerId)
}

export async function denyCaller (redis: RedisClient, cipher: EntryCipher, keyPrefix: string, rec: DenyRecord): Promise<void> {
  const field = denyField(cipher, rec.issuer, rec.subject)
  const sealed = cipher.sealText(field, JSON.stringify(rec)).toString('base64')
  await redis.eval(WRITE, 1, DENY_KEY, field, `${rec.until}:${sealed}`)
  await redis.publish(denyChannel(keyPrefix), 'changed')
}

/** true when there was an entry to remove. */
export async function allowCaller (redis: RedisClient, cipher: EntryCipher, keyPrefix: string, issuer: string, subject: string): Promise<boolean> {
  const removed = await redis.eval(WRITE, 1, DENY_KEY, denyField(cipher, issuer, subject), '')
  await redis.publish(denyChannel(keyPrefix), 'changed')
  return removed === 1
}

/** Every entry in force that this key set can read. */
export async function listDenied (redis: RedisClient, cipher: EntryCipher, now: number): Promise<DenyRecord[]> {
  const all = await redis.hgetall(DENY_KEY)
  const out: DenyRecord[] = []
  for (const [field, value] of Object.entries(all)) {
    const m = /^(\d+):(.*)$/.exec(value)
    if (m === null || Number(m[1]) <= now) continue
    const text = cipher.openText(field, Buffer.from(m[2] ?? '', 'base64'))
    if (text === undefined) continue
    try {
      const rec = JSON.parse(text) as DenyRecord
      if (typeof rec.issuer === 'string' && typeof rec.subject === 'string') out.push({ ...rec, until: Number(m[1]) })
    } catch {}
  }
  return out.sort((a, b) => a.until - b.until)
}

export interface DenyList {
  /**
   * Whether this caller is denied now: false, or 'first' the first time this replica
   * refuses it for this entry (one audit line), 'again' after that. No HMAC is
   * computed while the list is empty.
   */
  denied (issuer: string, subject: string): false | 'first' | 'again'
  readonly size: number
}

export interface DenyWatch { list: DenyList, close: () => void, reload: () => Promise<void> }

/**
 * The replica's copy of the list: loaded on every (re)connect of its subscriber, on
 * every message and every 30 s. A failed load keeps the set it had.
 */
export function watchDenyList (redis: RedisClient, cipher: EntryCipher, keyPrefix: string, opts: { now: () => number, onError?: (err: unknown) => void, onChange?: (size: number) => void, onDenied?: (fields: ReadonlySet<string>) => void }): DenyWatch {
  let entries = new Map<string, number>()
  const refused = new Set<string>()
  let closed = false
  async function reload (): Promise<void> {
    try {
      const all = await redis.hgetall(DENY_KEY)
      const next = new Map<string, number>()
      for (const [field, value] of Object.entries(all)) {
        const until = Number(/^(\d+):/.exec(value)?.[1])
        if (Number.isFinite(until)) next.set(field, until)
      }
      const added = new Set<string>()
      const now = opts.now()
      for (const [field, until] of next) if (!entries.has(field) && until > now) added.add(field)
      entries = next
      for (const field of refused) if (!next.has(field)) refused.delete(field)
      opts.onChange?.(next.size)
      if (added.size > 0) opts.onDenied?.(added)
    } catch (err) {
      // Redis away (or the hash replaced by garbage): keep what we had.
      opts.onError?.(err)
    }
  }
  const sub = redis.duplicate()
  sub.on('error', () => {}) // the main connection reports Redis's state
  sub.on('ready', () => {
    sub.subscribe(denyChannel(keyPrefix)).then(reload, opts.onError)
  })
  sub.on('message', () => { void reload() })
  const timer = setInterval(() => { void reload() }, RELOAD_EVERY_MS)
  timer.unref()
  return {
    reload,
    close () {
      if (closed) return
      closed = true
      clearInterval(timer)
      sub.disconnect()
    },
    list: {
      denied (issuer, subject) {
        if (entries.size === 0) return false
        const field = denyField(cipher, issuer, subject)
        const until = entries.get(field)
        if (until === undefined || until <= opts.now()) return false
        if (refused.has(field)) return 'again'
        refused.add(field)
        return 'first'
      },
      get size () { return entries.size }
    }
  }
}
