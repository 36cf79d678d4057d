// The caller surface: one encapsulated plugin that every caller-facing route family
// (/credentials, /uploads/*, /grants) is registered into, so that each gets the same guards in
// the same order and none can drift. Per family, in its own child context:
//   1. CORS: a preflight is answered here, and every later answer to an allowed origin,
//      refusals included, carries the CORS headers so that a browser can read it; another
//      origin gets none (and a 403 from the origin guard);
//   2. load shedding (503 in the default shape: nothing of the request is read yet);
//   3. what the request asks of its answer (the family's own: the format), the origin
//      allow-list, the family's own checks that need no caller (Accept), a token in the
//      query string (any letter case, every route);
//   4. authentication, so an unauthenticated caller costs no body parsing;
//   5. the per-caller rate limit once the caller is known (preHandler), counted per family
//      (caller-limit.ts);
//   6. refusals (401, 403, 429) recorded once, under the family's name; one error handler
//      that answers in the family's shape for the request.
// A third family is one more entry in `routes`.
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import { CallerDenied, RateLimited, Overloaded, withRetryAfter } from '../errors.js'
import type { Caller } from '../auth/caller.js'
import { sendError, type ErrorRenderer } from './error-handler.js'
import { CORS_OPTIONS, ensureCorsHeaders, registerCors } from './cors-headers.js'
import { assertNoQueryToken, assertOriginAllowed } from './guards.js'
import { callerLimit } from './caller-limit.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller; null until authentication succeeded. */
    caller: Caller | null
    /** The code of the error this request was answered with, for the audit trail. */
    errorCode: string | null
  }
}

/** One family of caller routes and what it decides for itself. */
export interface CallerRoutes {
  /** The family's name: its own per-caller count (`rl:<name>` counters in the fleet) and its refusals (onRefused). */
  name: string
  /** The routes, registered inside the guards (under `prefix`). */
  plugin: FastifyPluginAsync
  prefix?: string
  /** The methods a CORS preflight allows; default POST (CORS_OPTIONS). */
  corsMethods?: readonly string[]
  /** First of all, so that every refusal after it (the origin's too) is in the shape the request asked for. */
  readRequest?: (request: FastifyRequest) => void
  /** After the origin check, before authentication: the family's refusals that need no caller. */
  beforeAuth?: (request: FastifyRequest) => void
  /** The family's shape for this request's errors; our error body when undefined. */
  errorShape?: (request: FastifyRequest) => ErrorRenderer | undefined
}

export interface CallerSurfaceOptions {
  /** Browser origins allowed to call (`cors.origins`); this service's own origin always may. */
  origins: readonly string[]
  /** Requests per caller (`rateLimit`), counted per family; `store(name)` counts a family for the whole fleet (redis/rate-limit.ts). */
  rateLimit: { max: number, timeWindowMs: number, store?: ((family: string) => FastifyRateLimitStoreCtor | undefined) | undefined }
  /** Shed load above this event-loop delay; 0 disables (`server.maxEventLoopDelayMs`). */
  maxEventLoopDelayMs: number
  /** The event-loop delay in ms (tests); default @fastify/under-pressure's sampled mean. */
  eventLoopDelay?: (() => number) | undefined
  onRefused?: (request: FastifyRequest, statusCode: number, code: string, family: string) => void
  onRateLimited?: () => void
  /**
   * The fleet-wide deny list (redis/deny.ts): checked right after authentication, so a
   * denied caller gets nothing on any route, cached credentials included. 'first' the
   * first time this replica refuses it for an entry (onDenied: one audit line).
   */
  denied?: ((issuer: string, subject: string) => false | 'first' | 'again') | undefined
  onDenied?: (request: FastifyRequest) => void
  routes: readonly CallerRoutes[]
}

export default async function callerSurface (app: FastifyInstance, opts: CallerSurfaceOptions): Promise<void> {
  const origins = new Set(opts.origins)
  const list = [...origins]
  app.decorateRequest('caller', null)
  app.decorateRequest('errorCode', null)

  // One sampler for every family; each sheds after its CORS hook, so a preflight is still answered.
  let eventLoopDelay: (() => number) | undefined
  if (opts.maxEventLoopDelayMs > 0) {
    eventLoopDelay = opts.eventLoopDelay
    if (eventLoopDelay === undefined) {
      await app.register(underPressure, { sampleInterval: 250, exposeStatusRoute: false })
      eventLoopDelay = () => app.memoryUsage().eventLoopDelay
    }
  }

  /** The verified caller on the request, unless the operator denied it fleet-wide. */
  function admit (request: FastifyRequest, caller: Caller): void {
    request.caller = caller
    const denied = opts.denied?.(caller.issuer, caller.subject)
    if (denied !== undefined && denied !== false) {
      if (denied === 'first') opts.onDenied?.(request)
      throw new CallerDenied()
    }
  }

  for (const family of opts.routes) {
    await app.register(async (routes) => {
      // Browsers: an explicit allow-list; no cookies are involved, so never credentials mode.
      // A request without Origin is not CORS (an OPTIONS without it is 400, not a preflight).
      await registerCors(routes, {
        origin: (origin, callback) => { callback(null, origin !== undefined && !origins.has(origin) ? false : list) },
        ...CORS_OPTIONS,
        ...(family.corsMethods !== undefined ? { methods: [...family.corsMethods] } : {})
      })

      // Shed load before any real work when the event loop lags (only the caller routes:
      // the probes must keep answering). A window with no sample reads as Infinity: that
      // is missing data, not lag.
      if (eventLoopDelay !== undefined) {
        const delay = eventLoopDelay
        // A callback hook: this runs on every request, and a promise per request is not free.
        routes.addHook('onRequest', (_request, _reply, done) => {
          const value = delay()
          done(Number.isFinite(value) && value > opts.maxEventLoopDelayMs ? withRetryAfter(new Overloaded(), 2) : undefined)
        })
      }

      // A callback hook: a token seen before is recalled without a promise (auth.recall),
      // and only a token to verify waits for its keys.
      routes.addHook('onRequest', (request, _reply, done) => {
        let caller: Caller | undefined
        try {
          family.readRequest?.(request)
          assertOriginAllowed(request, origins)
          family.beforeAuth?.(request)
          if (request.method === 'OPTIONS') { // a preflight carries no credentials
            done()
            return
          }
          assertNoQueryToken(request.query)
          caller = app.auth.recall(request)
          if (caller !== undefined) admit(request, caller)
        } catch (err) {
          done(err as Error)
          return
        }
        if (caller !== undefined) {
          done()
          return
        }
        app.auth.authenticate(request).then((verified) => { admit(request, verified) }).then(() => { done() }, (err: Error) => { done(err) })
      })

      routes.addHook('onResponse', (request, reply, done) => {
        const status = reply.statusCode
        if (status === 401 || status === 403 || status === 429) opts.onRefused?.(request, status, request.errorCode ?? 'unknown', family.name)
        done()
      })

      routes.setErrorHandler((err, request, reply) => {
        ensureCorsHeaders(request, reply, origins)
        sendError(request, reply, err, family.errorShape?.(request), (body) => { request.errorCode = body.code })
      })

      callerLimit(routes, {
        max: opts.rateLimit.max,
        timeWindowMs: opts.rateLimit.timeWindowMs,
        store: opts.rateLimit.store?.(family.name),
        refusal: (ttlMs) => {
          opts.onRateLimited?.()
          return withRetryAfter(new RateLimited(), ttlMs / 1000)
        }
      })

      await routes.register(family.plugin)
    }, family.prefix !== undefined ? { prefix: family.prefix } : {})
  }
}
