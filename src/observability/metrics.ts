// Every metric the service exports, in one registry per app (tests build many apps).
// Labels are bounded: routes, methods, statuses, outcomes, reasons and grant names
// from the config — never subjects, prefixes or anything a caller controls.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration, type LabelValues } from 'prom-client'
import { packageVersion } from './version.js'

export type Metrics = ReturnType<typeof createMetrics>

/** One labelled series of a tallied counter. */
export interface Tally { inc (): void }

/**
 * A counter whose busiest series are counted in place: `series(labels)` gives a handle
 * whose `inc()` adds one to a number, and the numbers are added to the counter when it
 * is collected (prom-client runs `collect` before every scrape and every `get()`). A
 * labelled child of prom-client hashes its label object on every `inc` (about 1 us of a
 * cache hit for two counters, issue 25); a handle is kept per series by its user.
 */
function tallied<T extends string> (config: CounterConfiguration<T>): Counter<T> & { series: (labels: LabelValues<T>) => Tally } {
  const open: Array<{ labels: LabelValues<T>, n: number }> = []
  const counter = new Counter<T>({
    ...config,
    collect () {
      for (const s of open) {
        if (s.n === 0) continue
        this.inc(s.labels, s.n)
        s.n = 0
      }
    }
  })
  return Object.assign(counter, {
    series (labels: LabelValues<T>): Tally {
      const s = { labels: { ...labels }, n: 0 }
      open.push(s)
      return { inc: () => { s.n++ } }
    }
  })
}

export function createMetrics (opts: { defaultMetrics?: boolean, cacheSize?: () => number, version?: string } = {}) {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'stsv_' })
  const registers = [registry]
  const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  const m = {
    registry,
    httpRequests: tallied({ name: 'stsv_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'] as const, registers }),
    httpDuration: new Histogram({ name: 'stsv_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['route', 'method', 'status'] as const, buckets: latencyBuckets, registers }),
    stsCalls: new Counter({ name: 'stsv_sts_assume_role_total', help: 'AssumeRole attempts by outcome (ok, throttled, unavailable, rejected, bad_response)', labelNames: ['outcome'] as const, registers }),
    stsDuration: new Histogram({ name: 'stsv_sts_assume_role_duration_seconds', help: 'AssumeRole attempt latency by outcome', labelNames: ['outcome'] as const, buckets: latencyBuckets, registers }),
    stsRetries: new Counter({ name: 'stsv_sts_retries_total', help: 'AssumeRole retries', registers }),
    stsBudgetRejections: new Counter({ name: 'stsv_sts_budget_rejections_total', help: 'Requests refused because the per-instance AssumeRole budget was spent', registers }),
    stsMisconfigured: new Counter({ name: 'stsv_sts_rejected_total', help: 'Non-retryable STS refusals (NoPermission, InvalidParameter.*): alert on any increase', registers }),
    breakerState: new Gauge({ name: 'stsv_sts_circuit_state', help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open', registers }),
    cacheHits: new Counter({ name: 'stsv_cache_hits_total', help: 'Credentials served from the cache', registers }),
    cacheMisses: new Counter({ name: 'stsv_cache_misses_total', help: 'Cache misses that called STS', registers }),
    cacheCoalesced: new Counter({ name: 'stsv_cache_coalesced_total', help: 'Misses that waited for a concurrent call for the same key', registers }),
    cacheEvictions: new Counter({ name: 'stsv_cache_evictions_total', help: 'Entries evicted to respect cache.maxEntries', registers }),
    cacheEntries: new Gauge({ name: 'stsv_cache_entries', help: 'Entries in the credentials cache', registers, collect () { this.set(opts.cacheSize?.() ?? 0) } }),
    cacheSharedHits: new Counter({ name: 'stsv_cache_shared_hits_total', help: 'Credentials found in the shared (Redis) cache after a miss in this replica (stsv_cache_hits_total counts this replica\'s own)', registers }),
    cacheUndecryptable: new Counter({ name: 'stsv_cache_shared_undecryptable_total', help: 'Shared entries that did not decrypt or authenticate (another key, garbage): treated as misses', registers }),
    cacheLockWaits: new Counter({ name: 'stsv_cache_shared_lock_waits_total', help: 'Misses that waited for another replica\'s AssumeRole for the same key', registers }),
    redisUp: new Gauge({ name: 'stsv_redis_up', help: 'Whether the Redis connection is up (1) or not (0); while down each replica serves from its own state', registers }),
    redisErrors: new Counter({ name: 'stsv_redis_errors_total', help: 'Redis commands that failed or timed out (the request went on without shared state)', registers }),
    stsFleetBudgetRejections: new Counter({ name: 'stsv_sts_fleet_budget_rejections_total', help: 'Requests refused because the fleet-wide AssumeRole budget (sts.fleetMaxCallsPerSecond) was spent', registers }),
    callerBudgetRejections: new Counter({ name: 'stsv_caller_budget_rejections_total', help: 'Requests refused because the caller spent its budget of upstream calls (rateLimit.upstreamPerCaller)', registers }),
    jwtFailures: new Counter({ name: 'stsv_jwt_failures_total', help: 'Refused tokens by reason', labelNames: ['reason'] as const, registers }),
    rateLimited: new Counter({ name: 'stsv_rate_limited_total', help: 'Requests refused by the per-caller rate limit', registers }),
    uploadCallbacks: new Counter({ name: 'stsv_upload_callbacks_total', help: 'OSS upload callbacks by outcome: delivered, undelivered (verified, but the forward failed), refused, replayed', labelNames: ['outcome'] as const, registers }),
    uploadsSigned: tallied({ name: 'stsv_uploads_signed_total', help: 'Signed upload forms and URLs, by grant and kind (form, put_url, get_url)', labelNames: ['grant', 'kind'] as const, registers }),
    buildInfo: new Gauge({ name: 'stsv_build_info', help: 'Always 1; the version of the running service as a label', labelNames: ['version'] as const, registers }),
    issued: tallied({ name: 'stsv_credentials_issued_total', help: 'Credentials handed out, by grant and source (cache or sts)', labelNames: ['grant', 'source'] as const, registers })
  }
  m.breakerState.set(0)
  m.buildInfo.set({ version: opts.version ?? packageVersion() }, 1)
  return m
}

export const BREAKER_VALUES = { closed: 0, 'half-open': 1, open: 2 } as const
