// The application as a plugin-composed Fastify instance. It never listens: server.ts
// is the process shell, tests use app.inject(). Everything from outside (the STS
// client, the clock, the environment for HMAC secrets) comes in through `deps`.
import Fastify, { type FastifyInstance } from 'fastify'
import type { Config } from './config/schema.js'
import { requestIdHeader, serverOptions, type LoggerSetting } from './http/server-options.js'
import errorHandler from './http/error-handler.js'
import lifecycle from './http/lifecycle.js'
import auth from './auth/plugin.js'
import healthRoutes from './http/health.js'
import openapiRoutes from './http/openapi.js'
import credentialsRoutes from './http/credentials/route.js'
import { createVender } from './vend.js'
import { createCredentialCache } from './cache/credential-cache.js'
import { createUpstream, type Upstream } from './alicloud/upstream.js'
import { createStsClient, type StsClient } from './alicloud/sts-client.js'
import { createUpstreamCredential } from './alicloud/credentials.js'
import { createMetrics, type Metrics } from './observability/metrics.js'
import metricsPlugin from './observability/metrics-plugin.js'
import { cacheMetrics, upstreamMetrics } from './observability/bindings.js'
import { createAudit } from './observability/audit.js'

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
  /** Environment for `secretEnv` issuers. */
  env?: Record<string, string | undefined>
  /** Set false to skip process metrics (many apps in one test process). */
  defaultMetrics?: boolean
}

declare module 'fastify' {
  interface FastifyInstance { metrics: Metrics }
}

export async function buildApp (config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now
  const app = Fastify(serverOptions(config.server, deps.logger))
  await app.register(requestIdHeader)

  // JSON only: Fastify's default text/plain parser would turn a form into a string body.
  app.removeContentTypeParser('text/plain')
  let cacheSize = (): number => 0
  const metrics: Metrics = createMetrics({ defaultMetrics: deps.defaultMetrics ?? true, cacheSize: () => cacheSize() })
  app.decorate('metrics', metrics)

  await app.register(errorHandler)
  await app.register(lifecycle)
  await app.register(metricsPlugin, { settings: config.metrics, metrics })
  await app.register(auth, { config, env: deps.env ?? {}, now, onFailure: (reason) => metrics.jwtFailures.inc({ reason }) })

  const upstream = deps.upstream ?? createUpstream({
    client: deps.stsClient ?? createStsClient({ endpoint: config.sts.endpoint, timeoutMs: config.sts.timeoutMs, credential: createUpstreamCredential() }),
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
  const audit = createAudit(app.log)
  const vender = createVender({ config, upstream, cache, now })

  await app.register(healthRoutes)
  await app.register(openapiRoutes)
  await app.register(credentialsRoutes, {
    config,
    vender,
    onIssued: (request, issued) => {
      metrics.issued.inc({ grant: issued.grant, source: issued.fromCache ? 'cache' : 'sts' })
      audit.issued(request, issued)
    },
    onRefused: (request, status, code) => audit.refused(request, status, code),
    onRateLimited: () => metrics.rateLimited.inc()
  })
  return app
}
