// Which cache keys hold which caller's credentials, so that a deny (redis/deny.ts) can
// drop them from every cache level: a cache key is a hash (credential-cache.ts) and
// says nothing of whose it is. A caller's key is noted when its credentials are loaded
// into this replica (credential-source.ts), and goes when the local cache drops it
// (expired, deleted) or with its caller, by the LRU bound on callers. Each caller keeps
// at most `keysPerCaller` keys (a caller asks for one or two shapes), its oldest going
// first, so the index never outgrows `maxCallers * keysPerCaller` keys. A key the index
// lets go by a bound is handed to `onRelease`, and the source deletes it from the local
// cache: every local entry of a caller stays findable, at the price of one shared-level
// read for a caller pushed out of the index by heavy churn.
//
// An entry may carry the caller's name in the deny list (an HMAC, computed once when
// the caller is first noted), so a deny entry, which names no subject, can be matched.
// A taken entry is marked `forgotten`: a load that noted it before the deny and ends
// after it knows its result must not stay in any cache.
import { growingLru } from './lru.js'

export interface CallerEntry {
  readonly callerId: string
  /** The caller's name in the deny list, when the index was given a naming function. */
  readonly name: string | undefined
  readonly keys: ReadonlySet<string>
  /** Taken (forget): what was loaded under it since must not be kept. */
  readonly forgotten: boolean
}

interface Entry { callerId: string, name: string | undefined, keys: Set<string>, forgotten: boolean }

export interface CallerKeysOptions {
  maxCallers: number
  keysPerCaller: number
  /** The caller's name in the deny list; computed once per entry. */
  name?: ((callerId: string) => string) | undefined
  /** A key let go by a bound (not by drop or take). */
  onRelease?: ((key: string) => void) | undefined
}

export interface CallerKeys {
  /** This caller's credentials are (about to be) cached under `key`; its entry, touched. */
  note (callerId: string, key: string): CallerEntry
  /** The cache dropped `key`. */
  drop (key: string): void
  /** Remove this caller's entry (marked forgotten), or undefined when it has none. */
  take (callerId: string): CallerEntry | undefined
  /** Remove every entry whose name is in `names` (marked forgotten). */
  takeNamed (names: ReadonlySet<string>): CallerEntry[]
  /** Callers indexed. */
  readonly size: number
  /** Keys indexed, over every caller. */
  readonly keyCount: number
}

export function createCallerKeys (opts: CallerKeysOptions): CallerKeys {
  if (!Number.isSafeInteger(opts.keysPerCaller) || opts.keysPerCaller < 1) throw new TypeError('a caller keeps at least one key')
  const owner = new Map<string, Entry>()
  const onRelease = opts.onRelease
  const callers = growingLru<string, Entry>(opts.maxCallers, {
    // 'set' is never ours (an entry is made once); every other way out lets its keys go,
    // and an eviction (the bound) tells onRelease.
    dispose: (e, _k, reason) => {
      if (reason === 'set') return
      for (const key of e.keys) {
        if (owner.get(key) !== e) continue
        owner.delete(key)
        if (reason === 'evict') onRelease?.(key)
      }
    }
  })

  function take (callerId: string): Entry | undefined {
    const e = callers.get(callerId)
    if (e === undefined) return undefined
    callers.delete(callerId)
    e.forgotten = true
    return e
  }

  return {
    note (callerId, key) {
      let e = callers.get(callerId)
      if (e === undefined) {
        e = { callerId, name: opts.name?.(callerId), keys: new Set(), forgotten: false }
        callers.set(callerId, e)
      }
      const before = owner.get(key)
      if (before !== undefined && before !== e) {
        before.keys.delete(key)
        if (before.keys.size === 0) callers.delete(before.callerId)
      }
      owner.set(key, e)
      e.keys.delete(key) // re-noted: now the newest
      e.keys.add(key)
      if (e.keys.size > opts.keysPerCaller) {
        const oldest = e.keys.values().next().value as string
        e.keys.delete(oldest)
        owner.delete(oldest)
        onRelease?.(oldest)
      }
      return e
    },
    drop (key) {
      const e = owner.get(key)
      if (e === undefined) return
      owner.delete(key)
      e.keys.delete(key)
      if (e.keys.size === 0) callers.delete(e.callerId)
    },
    take,
    takeNamed (names) {
      const found: Entry[] = []
      if (names.size === 0) return found
      for (const e of callers.values()) if (e.name !== undefined && names.has(e.name)) found.push(e)
      for (const e of found) take(e.callerId)
      return found
    },
    get size () { return callers.size },
    get keyCount () { return owner.size }
  }
}
