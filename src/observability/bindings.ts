// Where the upstream's, the caches', the budgets' and the fleet's events become metrics,
// and the routes' events become metrics and audit lines. They only announce what
// happened; which counter moves and which line is written is decided here, in one place.
import type { UpstreamEvents } from '../alicloud/upstream/index.js'
import type { CacheEvents } from '../cache/credential-cache.js'
import type { GateEvents } from '../redis/budget.js'
import type { FleetEvents } from '../redis/fleet.js'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { SignedFormResult, SignedUrlResult } from '../sign.js'
import type { Issued } from '../vend.js'
import type { Caller } from '../auth/caller.js'
import type { CallbackResult } from '../callback.js'
import type { Audit } from './audit.js'
import { BREAKER_VALUES, type Metrics, type Tally } from './metrics.js'

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
 * The issuance counter, by grant and source: its series are counted in place (metrics.ts,
 * `tallied`), one handle per grant and source, found without building a key. Bounded by
 * the configured grants.
 */
function issuedCounter (metrics: Metrics): (grant: string, fromCache: boolean) => void {
  const cache = new Map<string, Tally>()
  const sts = new Map<string, Tally>()
  return (grant, fromCache) => {
    const series = fromCache ? cache : sts
    let tally = series.get(grant)
    if (tally === undefined) series.set(grant, tally = metrics.issued.series({ grant, source: fromCache ? 'cache' : 'sts' }))
    tally.inc()
  }
}

/** The signed-uploads counter, by grant and kind (form, PUT URL, GET URL): tallied like the issuance counter. */
function signedCounter (metrics: Metrics): (signed: SignedFormResult | SignedUrlResult) => void {
  const kinds = { form: new Map<string, Tally>(), put_url: new Map<string, Tally>(), get_url: new Map<string, Tally>() }
  return (signed) => {
    const kind = 'fields' in signed ? 'form' : signed.method === 'PUT' ? 'put_url' : 'get_url'
    const series = kinds[kind]
    let tally = series.get(signed.grant)
    if (tally === undefined) series.set(signed.grant, tally = metrics.uploadsSigned.series({ grant: signed.grant, kind }))
    tally.inc()
  }
}

/** What the caller routes and the upload callback report, as metrics and audit lines. */
export interface Recorders {
  /** A refusal (401, 403, 429) on a caller route family. */
  refused: (request: FastifyRequest, statusCode: number, code: string, family: string) => void
  rateLimited: () => void
  denied: (request: FastifyRequest) => void
  /** The answer waits for what these return (the audit line written). */
  issued: (request: FastifyRequest, issued: Issued) => Promise<void> | undefined
  signed: (request: FastifyRequest, caller: Caller, signed: SignedFormResult | SignedUrlResult) => Promise<void> | undefined
  callbackRefused: (reason: string) => void
  callbackCompleted: (request: FastifyRequest, result: CallbackResult) => Promise<void> | undefined
  /** A denied caller's cached credentials dropped (how many entries), or the error that stopped it. */
  credentialsDropped: (dropped: unknown) => void
}

export function recorders (metrics: Metrics, audit: Audit, log: FastifyBaseLogger): Recorders {
  const countIssued = issuedCounter(metrics)
  const countSigned = signedCounter(metrics)
  return {
    refused: (request, status, code, family) => {
      if (family === 'uploads') audit.uploadRefused(request, request.caller, status, code)
      else if (family === 'grants') audit.grantsRefused(request, status, code)
      else audit.refused(request, status, code)
    },
    rateLimited: () => metrics.rateLimited.inc(),
    denied: (request) => audit.callerDenied(request),
    issued: (request, issued) => {
      countIssued(issued.grant, issued.fromCache)
      return audit.issued(request, issued)
    },
    signed: (request, caller, signed) => {
      countSigned(signed)
      return audit.uploadSigned(request, caller, signed)
    },
    callbackRefused: (reason) => {
      metrics.uploadCallbacks.inc({ outcome: reason === 'replayed' ? 'replayed' : 'refused' })
      log.info({ event: 'upload.callback_refused', reason }, 'upload callback refused')
    },
    credentialsDropped: (dropped) => {
      if (typeof dropped !== 'number') log.error({ err: dropped }, 'dropping a denied caller\'s cached credentials failed')
      else if (dropped > 0) log.info({ event: 'caller.credentials_dropped', entries: dropped }, 'dropped the cached credentials of a denied caller')
    },
    callbackCompleted: (request, result) => {
      metrics.uploadCallbacks.inc({ outcome: result.delivered ? 'delivered' : 'undelivered' })
      return audit.uploadCompleted(request, result.event, result.delivered)
    }
  }
}
