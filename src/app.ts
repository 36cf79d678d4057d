// The application as a plugin-composed Fastify instance. It never listens: server.ts
// is the process shell, tests use app.inject(). It takes what prepare.ts made of the
// config and the environment; everything else from outside (the STS client, the
// clock) comes in through `deps`.
import Fastify, { type FastifyInstance } from 'fastify'
import type { Prepared } from './prepare.js'
import { requestIdHeader, serverOptions, type LoggerSetting } from './http/server-options.js'
import { lazyCompilers, type LazyCompilers } from './http/lazy-compilers.js'
import errorHandler from './http/error-handler.js'
import securityHeaders from './http/security-headers.js'
import lifecycle from './http/lifecycle.js'
import auth from './auth/plugin.js'
import healthRoutes from './http/health.js'
import openapiRoutes from './http/openapi.js'
import callerSurface from './http/caller-surface.js'
import { credentialsRoutes } from './http/credentials/route.js'
import { createVender } from './vend.js'
import { uploadsRoutes } from './http/uploads/route.js'
import { createSigner } from './sign.js'
import { createCredentialCache } from './cache/credential-cache.js'
import { createUpstream, type Upstream } from './alicloud/upstream/index.js'
import { createStsClient, type StsClient } from './alicloud/sts-client.js'
import { createMetrics, type Metrics } from './observability/metrics.js'
import metricsPlugin from './observability/metrics-plugin.js'
import { cacheMetrics, issuedCounter, upstreamMetrics } from './observability/bindings.js'
import { createAudit } from './observability/audit.js'
import { createSharedCache, type SharedCache } from './cache/shared-cache.js'
import { createEntryCipher } from './redis/entries.js'
import { createLock } from './redis/lock.js'
import { createLocalBuckets, createRedisBuckets, createUpstreamGate, type Buckets } from './redis/budget.js'
import { sharedRateLimitStore } from './redis/rate-limit.js'
import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit'

export interface AppDeps {
  /** Fastify logger setting: false, true, or pino options / instance. Default: JSON at info. */
  logger?: LoggerSetting
  /** The raw STS client; default: the official SDK with the default credential chain. */
  stsClient?: StsClient
  /** Replace the whole resilient upstream (tests of the route alone). */
  upstream?: Upstream
  now?: () => number
  /** Backoff sleep for the upstream retries (fake time in tests). */
  sleep?: (ms: number) => Promise<void>
  random?: () => number
  /** Set false to skip process metrics (many apps in one test process). */
  defaultMetrics?: boolean
  /** Readiness of the upstream credential (false while e.g. an RRSA token file is not mounted yet). */
  credentialReady?: () => boolean
  /** The event-loop delay the caller routes shed load on (tests); default a sampled monitor. */
  eventLoopDelay?: () => number
}

declare module 'fastify' {
  interface FastifyInstance { metrics: Metrics }
}

/** How long after listening the warm-up runs: the first readiness probes are answered before it holds the event loop. */
export const WARM_UP_DELAY_MS = 500

/**
 * What start-up leaves for later, done shortly after the server listens so that no
 * caller's first request pays for it: the STS SDK (a fifth of the old start-up; a miss
 * before then loads it itself, once) and the route schemas (compiled on first use,
 * http/lazy-compilers.ts). A failure is logged here: an SDK that did not load is
 * answered like an unreachable STS until a later call loads it, a schema that does not
 * compile answers 500 on its route.
 */
function warmUpOnListen (app: FastifyInstance, client: StsClient | undefined, compilers: LazyCompilers): void {
  let timer: NodeJS.Timeout | undefined
  app.addHook('onListen', async () => {
    timer = setTimeout(() => {
      const failed = compilers.compileAll()
      if (failed > 0) app.log.error({ failed }, 'route schemas did not compile: their routes answer 500')
      client?.warmUp?.().catch((err: unknown) => app.log.warn({ code: (err as { code?: unknown }).code }, 'the STS SDK did not load: AssumeRole fails until it does'))
    }, WARM_UP_DELAY_MS).unref()
  })
  app.addHook('onClose', async () => { clearTimeout(timer) })
}

export async function buildApp (prepared: Prepared, deps: AppDeps = {}): Promise<FastifyInstance> {
  const { config, grants, fleet } = prepared
  const now = deps.now ?? Date.now
  const compilers = lazyCompilers()
  const app = Fastify(serverOptions(config.server, deps.logger, compilers))
  await app.register(requestIdHeader)

  // JSON only: Fastify's default text/plain parser would turn a form into a string body.
  app.removeContentTypeParser('text/plain')
  let cacheSize = (): number => 0
  const metrics: Metrics = createMetrics({ defaultMetrics: deps.defaultMetrics ?? true, cacheSize: () => cacheSize() })
  app.decorate('metrics', metrics)

  await app.register(errorHandler)
  await app.register(securityHeaders)
  await app.register(lifecycle)
  if (deps.credentialReady !== undefined) app.lifecycle.addReadinessCheck('upstream-credential', deps.credentialReady)
  await app.register(metricsPlugin, { settings: config.metrics, metrics })
  await app.register(auth, { issuers: prepared.issuers, maxTokenBytes: config.server.maxTokenBytes, now, onFailure: (reason) => metrics.jwtFailures.inc({ reason }) })

  // The default client's credential is the SDK's default chain, loaded with the SDK.
  const stsClient = deps.upstream === undefined ? deps.stsClient ?? createStsClient({ endpoint: config.sts.endpoint, timeoutMs: config.sts.timeoutMs }) : undefined
  warmUpOnListen(app, stsClient, compilers)
  const upstream = deps.upstream ?? createUpstream({
    client: stsClient as StsClient,
    maxAttempts: config.sts.maxAttempts,
    backoffBaseMs: config.sts.backoffBaseMs,
    backoffMaxMs: config.sts.backoffMaxMs,
    deadlineMs: config.sts.deadlineMs,
    maxCallsPerSecond: config.sts.maxCallsPerSecond,
    breaker: config.sts.breaker,
    now,
    ...(deps.sleep !== undefined ? { sleep: deps.sleep } : {}),
    ...(deps.random !== undefined ? { random: deps.random } : {}),
    log: app.log,
    events: upstreamMetrics(metrics)
  })
  const cache = createCredentialCache({
    maxEntries: config.cache.maxEntries,
    minRemainingSeconds: config.cache.minRemainingSeconds,
    now,
    events: cacheMetrics(metrics)
  })
  cacheSize = () => cache.size

  // With Redis: a second cache level and budgets shared by the fleet.
  let shared: SharedCache | undefined
  let sharedBuckets: Buckets | undefined
  let callerName = (id: string): string => id
  let rateLimitStore = (_surface: string): FastifyRateLimitStoreCtor | undefined => undefined
  if (fleet !== undefined) {
    // Loaded only with Redis configured: ioredis is a tenth of the start-up's module loading.
    const { createRedis, firstConnection } = await import('./redis/connection.js')
    metrics.redisUp.set(0)
    const redis = createRedis({
      url: fleet.url,
      password: fleet.password,
      keyPrefix: fleet.keyPrefix,
      commandTimeoutMs: fleet.commandTimeoutMs,
      onState: (up) => metrics.redisUp.set(up ? 1 : 0),
      log: app.log
    })
    app.addHook('onReady', async () => { await firstConnection(redis, 2000) })
    app.addHook('onClose', async () => {
      // A deliberate close is not an outage: no "unreachable" warning on the way out.
      redis.removeAllListeners('close')
      redis.disconnect()
    })
    const cipher = createEntryCipher(fleet.keys)
    callerName = (id) => cipher.name('u', id)
    // Each surface keeps its own per-caller count, as without Redis, now for the whole fleet.
    rateLimitStore = (surface) => sharedRateLimitStore({ redis, name: (key) => cipher.name(`rl:${surface}`, key), now, onError: () => metrics.redisErrors.inc() })
    sharedBuckets = createRedisBuckets(redis)
    shared = createSharedCache({
      redis,
      cipher,
      lock: createLock(redis),
      minRemainingSeconds: config.cache.minRemainingSeconds,
      // About one STS call: a dead holder delays the others by this much at most.
      lockTtlMs: Math.min(config.sts.timeoutMs + 1000, config.sts.deadlineMs - 1),
      waitDeadlineMs: config.sts.deadlineMs,
      now,
      events: {
        hit: () => metrics.cacheSharedHits.inc(),
        undecryptable: () => metrics.cacheUndecryptable.inc(),
        lockWait: () => metrics.cacheLockWaits.inc(),
        error: () => metrics.redisErrors.inc()
      }
    })
  }
  const gate = createUpstreamGate({
    perCaller: config.rateLimit.upstreamPerCaller,
    fleetPerSecond: fleet?.fleetMaxCallsPerSecond,
    local: createLocalBuckets({ now, maxBuckets: 100_000 }),
    shared: sharedBuckets,
    callerName,
    events: {
      callerRefused: () => metrics.callerBudgetRejections.inc(),
      fleetRefused: () => metrics.stsFleetBudgetRejections.inc(),
      error: () => metrics.redisErrors.inc()
    }
  })
  const audit = createAudit(app.log)
  const countIssued = issuedCounter(metrics)
  const vender = createVender({ config, grants, upstream, cache, now, shared, gate })

  await app.register(healthRoutes)
  await app.register(openapiRoutes)
  await app.register(callerSurface, {
    origins: config.cors.origins,
    rateLimit: { ...config.rateLimit, store: rateLimitStore },
    maxEventLoopDelayMs: config.server.maxEventLoopDelayMs,
    eventLoopDelay: deps.eventLoopDelay,
    onRefused: (request, status, code, family) => {
      if (family === 'uploads') audit.uploadRefused(request, request.caller, status, code)
      else audit.refused(request, status, code)
    },
    onRateLimited: () => metrics.rateLimited.inc(),
    routes: [
      credentialsRoutes({
        vender,
        now,
        onIssued: (request, issued) => {
          countIssued(issued.grant, issued.fromCache)
          return audit.issued(request, issued)
        }
      }),
      uploadsRoutes({
        signer: createSigner({ config, grants, upstream, cache, now, shared, gate }),
        onSigned: (request, caller, signed) => {
          metrics.uploadsSigned.inc({ grant: signed.grant, kind: 'fields' in signed ? 'form' : signed.method === 'PUT' ? 'put_url' : 'get_url' })
          return audit.uploadSigned(request, caller, signed)
        }
      })
    ]
  })
  return app
}
