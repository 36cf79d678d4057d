// The application as a plugin-composed Fastify instance. It never listens: server.ts
// is the process shell, tests use app.inject(). Everything from outside (the STS
// client, the clock, the environment for HMAC secrets) comes in through `deps`.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './config/schema.js'
import { loggerOptions } from './observability/logger.js'
import errorHandler from './http/error-handler.js'
import lifecycle from './http/lifecycle.js'
import auth from './auth/plugin.js'
import healthRoutes from './http/health.js'
import openapiRoutes from './http/openapi.js'
import credentialsRoutes from './http/credentials/route.js'
import { createVender } from './vend.js'
import uploadsRoutes, { UPLOADS_PREFIX } from './http/uploads/index.js'
import { createSigner } from './sign.js'
import { createCredentialCache } from './cache/credential-cache.js'
import { createUpstream, type Upstream } from './alicloud/upstream.js'
import { createStsClient, type StsClient } from './alicloud/sts-client.js'
import { createUpstreamCredential } from './alicloud/credentials.js'
import { createMetrics, BREAKER_VALUES, type Metrics } from './observability/metrics.js'
import metricsPlugin from './observability/metrics-plugin.js'
import { createAudit } from './observability/audit.js'

export interface AppDeps {
  /** Fastify logger setting: false, true, or pino options / instance. Default: JSON at info. */
  logger?: FastifyServerOptions['logger'] | FastifyServerOptions['loggerInstance']
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

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function fastifyOptions (config: Config, deps: AppDeps): FastifyServerOptions {
  const logger = deps.logger ?? loggerOptions('info')
  const isInstance = typeof logger === 'object' && logger !== null && 'child' in logger && typeof (logger as { child?: unknown }).child === 'function'
  return {
    ...(isInstance ? { loggerInstance: logger as FastifyServerOptions['loggerInstance'] } : { logger: logger as FastifyServerOptions['logger'] }),
    bodyLimit: config.server.bodyLimitBytes,
    // Our own node:http server so every limit is set explicitly, not left to defaults.
    serverFactory: (handler) => {
      const server = createServer({
        maxHeaderSize: config.server.maxHeaderBytes,
        headersTimeout: config.server.headersTimeoutMs,
        requestTimeout: config.server.requestTimeoutMs,
        keepAliveTimeout: config.server.keepAliveTimeoutMs,
        // Node checks headersTimeout/requestTimeout only this often (default 30 s).
        connectionsCheckingInterval: Math.min(1000, config.server.headersTimeoutMs)
      }, handler)
      server.setTimeout(config.server.requestTimeoutMs)
      return server
    },
    trustProxy: config.server.trustProxy as FastifyServerOptions['trustProxy'],
    return503OnClosing: false, // lifecycle.ts answers with our own code and Connection: close
    forceCloseConnections: 'idle',
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } }
  }
}

declare module 'fastify' {
  interface FastifyInstance { metrics: Metrics }
}

export async function buildApp (config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now
  const app = Fastify(fastifyOptions(config, deps))

  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id)
  })

  // JSON only: Fastify's default text/plain parser would turn a form into a string body.
  app.removeContentTypeParser('text/plain')
  let cacheSize = (): number => 0
  const metrics: Metrics = createMetrics({ defaultMetrics: deps.defaultMetrics ?? true, cacheSize: () => cacheSize() })
  app.decorate('metrics', metrics)

  await app.register(errorHandler)
  await app.register(lifecycle)
  await app.register(metricsPlugin, { config, metrics })
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
    events: {
      attempt: (outcome, seconds) => {
        metrics.stsCalls.inc({ outcome })
        metrics.stsDuration.observe({ outcome }, seconds)
      },
      retry: () => metrics.stsRetries.inc(),
      breaker: (state) => metrics.breakerState.set(BREAKER_VALUES[state]),
      budgetExhausted: () => metrics.stsBudgetRejections.inc(),
      rejected: () => metrics.stsMisconfigured.inc()
    }
  })
  const cache = createCredentialCache({
    maxEntries: config.cache.maxEntries,
    minRemainingSeconds: config.cache.minRemainingSeconds,
    now,
    events: {
      hit: () => metrics.cacheHits.inc(),
      miss: () => metrics.cacheMisses.inc(),
      coalesced: () => metrics.cacheCoalesced.inc(),
      evicted: () => metrics.cacheEvictions.inc()
    }
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
  await app.register(uploadsRoutes, {
    prefix: UPLOADS_PREFIX,
    config,
    signer: createSigner({ config, upstream, cache, now }),
    onSigned: (request, caller, signed) => {
      metrics.uploadsSigned.inc({ grant: signed.grant, kind: 'fields' in signed ? 'form' : signed.method === 'PUT' ? 'put_url' : 'get_url' })
      audit.uploadSigned(request, caller, signed)
    },
    onRefused: (request, status, code) => audit.uploadRefused(request, request.uploadCaller, status, code),
    onRateLimited: () => metrics.rateLimited.inc()
  })
  return app
}
