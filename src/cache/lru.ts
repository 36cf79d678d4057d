// An LRU bounded by a count, whose storage grows with use. Given `max`, lru-cache
// allocates all `max` slots when it is made: for the 100,000-entry defaults, a few
// megabytes and ~15 ms of start-up per cache for entries most replicas never hold.
// Bounding by `maxSize` with every entry of size 1 is the same bound (the oldest is
// evicted, with reason 'evict', once the count would pass it) on arrays that grow.
import { LRUCache } from 'lru-cache'

export type GrowingLruOptions<K extends {}, V extends {}> = Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation' | 'maxEntrySize'>

export function growingLru<K extends {}, V extends {}> (max: number, opts: GrowingLruOptions<K, V> = {}): LRUCache<K, V> {
  if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('an LRU holds at least one entry')
  return new LRUCache<K, V>({ ...opts, maxSize: max, sizeCalculation: () => 1 } as LRUCache.Options<K, V, unknown>)
}
