// Where the upstream's, the caches', the budgets' and the fleet's events become metrics.
// They only announce what happened; which counter moves is decided here, in one place.
import type { UpstreamEvents } from '../alicloud/upstream/index.js'
import type { CacheEvents } from '../cache/credential-cache.js'
import type { GateEvents } from '../redis/budget.js'
import type { FleetEvents } from '../redis/fleet.js'
import type { SignedFormResult, SignedUrlResult } from '../sign.js'
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

export function gateMetrics (metrics: Metrics): GateEvents {
  return {
    callerRefused: () => metrics.callerBudgetRejections.inc(),
    fleetRefused: () => metrics.stsFleetBudgetRejections.inc(),
    error: () => metrics.redisErrors.inc()
  }
}

export function fleetMetrics (metrics: Metrics): FleetEvents {
  return {
    state: (up) => metrics.redisUp.set(up ? 1 : 0),
    error: () => metrics.redisErrors.inc(),
    sharedHit: () => metrics.cacheSharedHits.inc(),
    undecryptable: () => metrics.cacheUndecryptable.inc(),
    lockWait: () => metrics.cacheLockWaits.inc()
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

/** The signed-uploads counter, by grant and kind (form, PUT URL, GET URL). */
export function signedCounter (metrics: Metrics): (signed: SignedFormResult | SignedUrlResult) => void {
  return (signed) => {
    metrics.uploadsSigned.inc({ grant: signed.grant, kind: 'fields' in signed ? 'form' : signed.method === 'PUT' ? 'put_url' : 'get_url' })
  }
}
