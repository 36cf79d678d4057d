// The credentials HTTP surface as one encapsulated plugin: the request properties it
// uses, the hooks that decide everything before the body is parsed, and its own error
// handler, which answers in the format the request chose (the OSS mobile SDKs read
// their own error shape). Order of the onRequest hooks, each one cheap before the next:
//   1. CORS: a preflight is answered here, and every later answer to an allowed origin,
//      refusals included, carries the CORS headers so that a browser can read it;
//   2. load shedding (503 in the default shape: the format is not read yet);
//   3. the format, the origin allow-list, Accept, a token in the query string;
//   4. authentication, so an unauthenticated caller costs no body parsing.
// Rate limiting runs per caller once the caller is known; the route is in route.ts.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import rateLimit, { type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import cors from '@fastify/cors'
import underPressure from '@fastify/under-pressure'
import { RateLimited, Overloaded, withRetryAfter } from '../../errors.js'
import type { Caller } from '../../auth/verifier.js'
import type { Vender, Issued } from '../../vend.js'
import { sendError } from '../error-handler.js'
import { CORS_OPTIONS, ensureCorsHeaders } from '../cors-headers.js'
import { assertAcceptable, requestedFormat, type Format } from './formats.js'
import { assertNoQueryToken, assertOriginAllowed } from './guards.js'
import { ossAppServerError } from './shapes.js'
import { credentialsRoute } from './route.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller; null until authentication succeeded. */
    caller: Caller | null
    /** The response format the request chose (`?format=` or Accept). */
    format: Format
    /** The code of the error this request was answered with, for the audit trail. */
    errorCode: string | null
  }
}

export interface CredentialsOptions {
  vender: Vender
  /** The app's clock, for `refreshAfterSeconds`. Default Date.now. */
  now?: () => number
  /** Browser origins allowed to call the route (`cors.origins`). */
  origins: readonly string[]
  /** Requests per caller (`rateLimit`); with `store`, counted for the whole fleet (redis/rate-limit.ts). */
  rateLimit: { max: number, timeWindowMs: number, store?: FastifyRateLimitStoreCtor | undefined }
  /** Shed load above this event-loop delay; 0 disables (`server.maxEventLoopDelayMs`). */
  maxEventLoopDelayMs: number
  onIssued?: (request: FastifyRequest, issued: Issued) => Promise<void> | undefined
  onRefused?: (request: FastifyRequest, statusCode: number, code: string) => void
  onRateLimited?: () => void
}

export default async function credentials (app: FastifyInstance, opts: CredentialsOptions): Promise<void> {
  const origins = new Set(opts.origins)
  app.decorateRequest('caller', null)
  app.decorateRequest('format', 'ali-oss')
  app.decorateRequest('errorCode', null)

  // Browsers: an explicit allow-list; no cookies are involved, so never credentials mode.
  // Another origin gets no CORS headers here and a 403 from the origin guard below; a
  // request without Origin is not CORS (an OPTIONS without it is 400, not a preflight).
  const list = [...origins]
  await app.register(cors, {
    origin: (origin, callback) => { callback(null, origin !== undefined && !origins.has(origin) ? false : list) },
    ...CORS_OPTIONS
  })

  // Shed load before any real work when the event loop lags (only this route: the
  // probes must keep answering).
  if (opts.maxEventLoopDelayMs > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: opts.maxEventLoopDelayMs,
      sampleInterval: 250,
      exposeStatusRoute: false,
      // A window with no sample reads as Infinity: that is missing data, not lag.
      pressureHandler: (_request, _reply, _type, value) => {
        if (value !== undefined && Number.isFinite(value)) throw withRetryAfter(new Overloaded(), 2)
      }
    })
  }

  // The format comes first so that even a 401 is rendered in the shape the client reads.
  app.addHook('onRequest', async (request) => {
    request.format = requestedFormat(request.query, request.headers.accept)
    assertOriginAllowed(request, origins)
    assertAcceptable(request.headers.accept)
    if (request.method === 'OPTIONS') return // a preflight carries no credentials
    assertNoQueryToken(request.query)
    request.caller = await app.auth.authenticate(request)
  })

  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode
    if (status === 401 || status === 403 || status === 429) opts.onRefused?.(request, status, request.errorCode ?? 'unknown')
    done()
  })

  app.setErrorHandler((err, request, reply) => {
    ensureCorsHeaders(request, reply, origins)
    request.errorCode = sendError(request, reply, err, request.format === 'oss-app-server' ? ossAppServerError : undefined).code
  })

  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    max: opts.rateLimit.max,
    timeWindow: opts.rateLimit.timeWindowMs,
    ...(opts.rateLimit.store !== undefined ? { store: opts.rateLimit.store } : {}),
    keyGenerator: (request) => request.caller !== null ? `${request.caller.issuer}\n${request.caller.subject}` : request.ip,
    errorResponseBuilder: (_request, context) => {
      opts.onRateLimited?.()
      return withRetryAfter(new RateLimited(), context.ttl / 1000)
    }
  })

  credentialsRoute(app, opts)
}
