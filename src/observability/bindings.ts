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
