// Where the upstream's and the cache's events become metrics. The upstream and the
// cache only announce what happened; which counter moves is decided here, in one place.
import type { UpstreamEvents } from '../alicloud/upstream.js'
import type { CacheEvents } from '../cache/credential-cache.js'
import { BREAKER_VALUES, type Metrics } from './metrics.js'

export function upstreamMetrics (metrics: Metrics): UpstreamEvents {
  return {
    attempt: (outcome, seconds) => {
      metrics.stsCalls.inc({ outcome })
      metrics.stsDuration.observe({ outcome }, seconds)
    },
    retry: () => metrics.stsRetries.inc(),
    breaker: (state) => metrics.breakerState.set(BREAKER_VALUES[state]),
    budgetExhausted: () => metrics.stsBudgetRejections.inc(),
    rejected: () => metrics.stsMisconfigured.inc()
  }
}

export function cacheMetrics (metrics: Metrics): CacheEvents {
  return {
    hit: () => metrics.cacheHits.inc(),
    miss: () => metrics.cacheMisses.inc(),
    coalesced: () => metrics.cacheCoalesced.inc(),
    evicted: () => metrics.cacheEvictions.inc()
  }
}

/**
 * The issuance counter, by grant and source: its labelled children are looked up by a
 * short key instead of prom-client hashing a label object on every cache hit. Bounded
 * by the configured grants.
 */
export function issuedCounter (metrics: Metrics): (grant: string, fromCache: boolean) => void {
  const children = new Map<string, { inc: () => void }>()
  return (grant, fromCache) => {
    const key = `${fromCache ? 'c' : 's'}${grant}`
    let child = children.get(key)
    if (child === undefined) children.set(key, child = metrics.issued.labels({ grant, source: fromCache ? 'cache' : 'sts' }))
    child.inc()
  }
}
