// POST /uploads/form and POST /uploads/url: signed uploads into the caller's directory.
// Encapsulated: authentication (before the body is parsed), the origin check, CORS
// headers, load shedding and a per-caller rate limit of its own, like /credentials,
// built from src/auth and the shared error registry only. Registered under the
// `/uploads` prefix, so its CORS preflight route is OPTIONS /uploads/*.
import { sendError } from '../error-handler.js'
import { CORS_OPTIONS, ensureCorsHeaders } from '../cors-headers.js'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import rateLimit, { type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import cors from '@fastify/cors'
import underPressure from '@fastify/under-pressure'
import type { Config } from '../../config/schema.js'
import { OriginNotAllowed, Overloaded, RateLimited, withRetryAfter } from '../../errors.js'
import type { Caller } from '../../auth/verifier.js'
import type { Signer, SignedFormResult, SignedUrlResult } from '../../sign.js'
import { UploadError, UploadFormRequest, UploadFormResponse, UploadUrlRequest, UploadUrlResponse } from './schemas.js'

declare module 'fastify' {
  interface FastifyRequest { uploadCaller: Caller | null }
}

export interface UploadsOptions {
  config: Config
  signer: Signer
  /** Per-caller request counters shared by the fleet (redis/rate-limit.ts); in memory when absent. */
  rateLimitStore?: FastifyRateLimitStoreCtor | undefined
  /** Records the signing; the answer waits for what it returns (the audit line written). */
  onSigned?: (request: FastifyRequest, caller: Caller, signed: SignedFormResult | SignedUrlResult) => Promise<void> | undefined
  onRefused?: (request: FastifyRequest, statusCode: number, code: string) => void
  onRateLimited?: () => void
}

/** Seconds precision, UTC, `Z`: the same form as every other expiration this service answers. */
function isoSeconds (d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

function sameOrigin (origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host
  } catch {
    return false
  }
}

const responses = (ok: unknown) => ({ 200: ok, '4xx': UploadError, '5xx': UploadError })

/** Register with `{ prefix: UPLOADS_PREFIX }`. */
export const UPLOADS_PREFIX = '/uploads'

export default async function uploads (app: FastifyInstance, opts: UploadsOptions): Promise<void> {
  const { config, signer } = opts
  app.decorateRequest('uploadCaller', null)

  if (config.server.maxEventLoopDelayMs > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: config.server.maxEventLoopDelayMs,
      sampleInterval: 250,
      exposeStatusRoute: false,
      pressureHandler: (_request, _reply, _type, value) => {
        if (value !== undefined && Number.isFinite(value)) throw withRetryAfter(new Overloaded(), 2)
      }
    })
  }
  const origins = new Set(config.cors.origins)
  // Another origin is refused before CORS sees it: its answer carries no CORS headers.
  app.addHook('onRequest', async (request) => {
    const origin = request.headers.origin
    if (origin !== undefined && !origins.has(origin) && !sameOrigin(origin, request.headers.host)) throw new OriginNotAllowed()
  })
  // CORS first, so that every refusal below (origin aside) carries its headers.
  await app.register(cors, {
    origin: [...origins],
    ...CORS_OPTIONS
  })
  app.decorateRequest('errorCode', null)
  app.setErrorHandler((err, request, reply) => {
    ensureCorsHeaders(request, reply, origins)
    request.errorCode = sendError(request, reply, err).code
  })
  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS') return // a preflight carries no credentials
    request.uploadCaller = await app.auth.authenticate(request)
  })
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode
    if (status === 401 || status === 403 || status === 429) opts.onRefused?.(request, status, request.errorCode ?? 'unknown')
  })
  // A POST without a body asks for the grant's defaults (the form route's fields are all optional).
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) request.body = {}
  })
  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    max: config.rateLimit.max,
    timeWindow: config.rateLimit.timeWindowMs,
    ...(opts.rateLimitStore !== undefined ? { store: opts.rateLimitStore } : {}),
    keyGenerator: (request) => request.uploadCaller !== null ? `${request.uploadCaller.issuer}\n${request.uploadCaller.subject}` : request.ip,
    errorResponseBuilder: (_request, context) => {
      opts.onRateLimited?.()
      return withRetryAfter(new RateLimited(), context.ttl / 1000)
    }
  })

  /** Signs for the caller, records it (the answer waits for its audit line) and marks the answer uncacheable. */
  async function signed<R extends SignedFormResult | SignedUrlResult> (request: FastifyRequest, reply: FastifyReply, sign: (caller: Caller) => Promise<R>): Promise<R> {
    const caller = request.uploadCaller as Caller
    const result = await sign(caller)
    const recorded = opts.onSigned?.(request, caller, result)
    if (recorded !== undefined) await recorded
    void reply.header('cache-control', 'no-store')
    return result
  }

  app.post('/form', { schema: { body: UploadFormRequest, response: responses(UploadFormResponse) } }, async (request, reply) => {
    const form = await signed(request, reply, async (caller) => await signer.form(caller, request.body as UploadFormRequest))
    return { url: form.url, fields: form.fields, keyPrefix: form.keyPrefix, expiration: isoSeconds(form.expiration) }
  })

  app.post('/url', { schema: { body: UploadUrlRequest, response: responses(UploadUrlResponse) } }, async (request, reply) => {
    const url = await signed(request, reply, async (caller) => await signer.url(caller, request.body as UploadUrlRequest))
    return { url: url.url, method: url.method, headers: url.headers, expiration: isoSeconds(url.expiration) }
  })
}
