// The application as a plugin-composed Fastify instance. It never listens: server.ts
// is the process shell, tests use app.inject(). Everything from outside (the STS
// client, the clock, the environment for HMAC secrets) comes in through `deps`.
import Fastify, { type FastifyInstance } from 'fastify'
import type { Config } from './config/schema.js'
import { requestIdHeader, serverOptions, type LoggerSetting } from './http/server-options.js'
import { lazyCompilers, type LazyCompilers } from './http/lazy-compilers.js'
import errorHandler from './http/error-handler.js'
import securityHeaders from './http/security-headers.js'
import lifecycle from './http/lifecycle.js'
import auth from './auth/plugin.js'
import healthRoutes from './http/health.js'
import openapiRoutes from './http/openapi.js'
import credentials from './http/credentials/index.js'
import { createVender } from './vend.js'
import { compileGrants, type CompiledGrants } from './grants/compile.js'
import uploadsRoutes, { UPLOADS_PREFIX } from './http/uploads/index.js'
import { createSigner } from './sign.js'
import { createCredentialSource } from './credential-source.js'
import { createUpstream, type Upstream } from './alicloud/upstream/index.js'
import { createStsClient, type StsClient } from './alicloud/sts-client.js'
import { createMetrics, type Metrics } from './observability/metrics.js'
import metricsPlugin from './observability/metrics-plugin.js'
import { cacheMetrics, fleetMetrics, gateMetrics, issuedCounter, upstreamMetrics } from './observability/bindings.js'
import { createAudit } from './observability/audit.js'
import { sharedStateSettings } from './redis/settings.js'
import { createLocalBuckets, createUpstreamGate } from './redis/budget.js'
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
  /** Grants compiled at load; compiled from `config` when absent. */
  grants?: CompiledGrants
  /** Environment for `secretEnv` issuers. */
  env?: Record<string, string | undefined>
  /** Set false to skip process metrics (many apps in one test process). */
  defaultMetrics?: boolean
  /** Readiness of the upstream credential (false while e.g. an RRSA token file is not mounted yet). */
  credentialReady?: () => boolean
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

export async function buildApp (config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
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
  await app.register(auth, { config, env: deps.env ?? {}, now, onFailure: (reason) => metrics.jwtFailures.inc({ reason }) })

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
  // With Redis: a second cache level and budgets shared by the fleet. Bad settings
  // (keys, password variable) are a ConfigError before anything connects.
  const fleetSettings = sharedStateSettings(config, deps.env ?? {})
  const fleet = fleetSettings === undefined
    ? undefined
    : (await import('./redis/fleet.js')).connectFleet(app, {
        settings: fleetSettings,
        minRemainingSeconds: config.cache.minRemainingSeconds,
        stsTimeoutMs: config.sts.timeoutMs,
        stsDeadlineMs: config.sts.deadlineMs,
        now,
        events: fleetMetrics(metrics)
      })
  const rateLimitStore = (surface: string): FastifyRateLimitStoreCtor | undefined => fleet?.rateLimitStore(surface)
  const gate = createUpstreamGate({
    perCaller: config.rateLimit.upstreamPerCaller,
    fleetPerSecond: fleetSettings?.fleetMaxCallsPerSecond,
    local: createLocalBuckets({ now, maxBuckets: 100_000 }),
    shared: fleet?.buckets,
    callerName: fleet?.callerName ?? ((id) => id),
    events: gateMetrics(metrics)
  })
  const source = createCredentialSource({
    upstream,
    now,
    minRemainingSeconds: config.cache.minRemainingSeconds,
    local: { maxEntries: config.cache.maxEntries, events: cacheMetrics(metrics) },
    shared: fleet?.shared,
    gate
  })
  cacheSize = () => source.size
  // Compiled once (at load by server.ts, or here from a plain config) for both use cases.
  const grants = deps.grants ?? compileGrants(config)
  const audit = createAudit(app.log)
  const countIssued = issuedCounter(metrics)
  const vender = createVender({ config, grants, source })

  await app.register(healthRoutes)
  await app.register(openapiRoutes)
  await app.register(credentials, {
    vender,
    now,
    origins: config.cors.origins,
    rateLimit: { ...config.rateLimit, store: rateLimitStore('credentials') },
    maxEventLoopDelayMs: config.server.maxEventLoopDelayMs,
    onIssued: (request, issued) => {
      countIssued(issued.grant, issued.fromCache)
      return audit.issued(request, issued)
    },
    onRefused: (request, status, code) => audit.refused(request, status, code),
    onRateLimited: () => metrics.rateLimited.inc()
  })
  await app.register(uploadsRoutes, {
    prefix: UPLOADS_PREFIX,
    config,
    signer: createSigner({ config, grants, source, now }),
    rateLimitStore: rateLimitStore('uploads'),
    onSigned: (request, caller, signed) => {
      metrics.uploadsSigned.inc({ grant: signed.grant, kind: 'fields' in signed ? 'form' : signed.method === 'PUT' ? 'put_url' : 'get_url' })
      return audit.uploadSigned(request, caller, signed)
    },
    onRefused: (request, status, code) => audit.uploadRefused(request, request.uploadCaller, status, code),
    onRateLimited: () => metrics.rateLimited.inc()
  })
  return app
}
