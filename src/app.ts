// The composition root: the app as a plugin-composed Fastify instance. It never listens
// (server.ts is the process shell, tests use app.inject()). It takes what prepare.ts
// made of the config and the environment; everything else from outside (the STS client,
// the clock) comes in through `deps`. Build the parts, register the plugins, return.
import Fastify, { type FastifyInstance } from 'fastify'
import type { Prepared } from './prepare.js'
import { requestIdHeader, serverOptions, type LoggerSetting } from './http/server-options.js'
import { lazyCompilers } from './http/lazy-compilers.js'
import { warmUpOnListen } from './http/warm-up.js'
import errorHandler from './http/error-handler.js'
import securityHeaders from './http/security-headers.js'
import lifecycle from './http/lifecycle.js'
import auth from './auth/plugin.js'
import healthRoutes from './http/health.js'
import openapiRoutes from './http/openapi.js'
import callerSurface from './http/caller-surface.js'
import { credentialsRoutes } from './http/credentials/route.js'
import { uploadsRoutes } from './http/uploads/route.js'
import { grantsRoutes } from './http/grants/route.js'
import callbackRoute, { type CallbackRouteOptions } from './http/uploads/callback.js'
import { createLocalOnce } from './redis/once.js'
import { createVender } from './vend.js'
import { createSigner } from './sign.js'
import { createCredentialSource } from './credential-source.js'
import { createUpstream, type Upstream } from './alicloud/upstream/index.js'
import { createStsClient, type StsClient } from './alicloud/sts-client.js'
import { createMetrics, type Metrics } from './observability/metrics.js'
import metricsPlugin from './observability/metrics-plugin.js'
import { cacheMetrics, fleetMetrics, gateMetrics, recorders, upstreamMetrics } from './observability/bindings.js'
import { createAudit } from './observability/audit.js'
import { createLocalBuckets, createUpstreamGate } from './redis/budget.js'
import type { RedisStatus } from './redis/connection.js'

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
  /** Upload callbacks: how OSS's public key is fetched and how events are forwarded (tests); default fetch. */
  callbacks?: Pick<CallbackRouteOptions, 'fetchKey' | 'forward'>
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
    /** Redis connected or not, and why not; undefined without Redis (the start-up line). */
    redisStatus: () => RedisStatus | undefined
  }
}

export async function buildApp (prepared: Prepared, deps: AppDeps = {}): Promise<FastifyInstance> {
  const { config, grants } = prepared
  const now = deps.now ?? Date.now
  const compilers = lazyCompilers()
  const app = Fastify(serverOptions(config.server, deps.logger, compilers))
  await app.register(requestIdHeader)
  // JSON only: Fastify's default text/plain parser would turn a form into a string body.
  app.removeContentTypeParser('text/plain')
  let cacheSize = (): number => 0
  const metrics = createMetrics({ defaultMetrics: deps.defaultMetrics ?? true, cacheSize: () => cacheSize() })
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
  const upstream = deps.upstream ?? createUpstream({ ...config.sts, client: stsClient as StsClient, now, sleep: deps.sleep, random: deps.random, log: app.log, events: upstreamMetrics(metrics) })
  // With Redis: the fleet's shared cache level, budgets and rate limits (ioredis loads only then).
  const fleet = prepared.fleet === undefined
    ? undefined
    : (await import('./redis/fleet.js')).connectFleet(app, { settings: prepared.fleet, minRemainingSeconds: config.cache.minRemainingSeconds, stsTimeoutMs: config.sts.timeoutMs, stsDeadlineMs: config.sts.deadlineMs, now, events: fleetMetrics(metrics) })
  app.decorate('redisStatus', () => fleet?.status())
  const local = createLocalBuckets({ now, maxBuckets: 100_000 })
  const gate = createUpstreamGate({ perCaller: config.rateLimit.upstreamPerCaller, fleetPerSecond: prepared.fleet?.fleetMaxCallsPerSecond, local, shared: fleet?.buckets, callerName: fleet?.callerName ?? ((id) => id), events: gateMetrics(metrics) })
  const source = createCredentialSource({ upstream, now, minRemainingSeconds: config.cache.minRemainingSeconds, local: { maxEntries: config.cache.maxEntries, events: cacheMetrics(metrics) }, shared: fleet?.shared, gate, denyName: fleet?.denyName })
  cacheSize = () => source.size
  const record = recorders(metrics, createAudit(app.log), app.log)
  // A deny drops the caller's cached credentials too, so that an allow starts it afresh (one AssumeRole).
  fleet?.onDenied((names) => { source.forgetNamed(names).then(record.credentialsDropped, record.credentialsDropped) })

  await app.register(healthRoutes)
  await app.register(openapiRoutes)
  await app.register(callerSurface, {
    origins: config.cors.origins,
    rateLimit: { ...config.rateLimit, store: (family) => fleet?.rateLimitStore(family) },
    maxEventLoopDelayMs: config.server.maxEventLoopDelayMs,
    eventLoopDelay: deps.eventLoopDelay,
    onRefused: record.refused,
    onRateLimited: record.rateLimited,
    denied: fleet?.denyList.denied,
    onDenied: record.denied,
    routes: [
      credentialsRoutes({ vender: createVender({ grants, source }), now, onIssued: record.issued }),
      uploadsRoutes({ signer: createSigner({ grants, source, now, callbackSecrets: prepared.callbackSecrets }), onSigned: record.signed }),
      grantsRoutes({ grants })
    ]
  })
  // OSS's upload callbacks: beside the caller surface (no token, no CORS), only when a grant asks for them.
  if (config.grants.some((g) => g.signing?.callback !== undefined)) {
    await app.register(callbackRoute, {
      ...deps.callbacks,
      grants: config.grants,
      secrets: prepared.callbackSecrets,
      allowedPrefixes: config.uploads.callbackKeyUrlPrefixes,
      once: fleet?.once ?? createLocalOnce({ now }),
      now,
      onRefused: record.callbackRefused,
      onCompleted: record.callbackCompleted
    })
  }
  return app
}
