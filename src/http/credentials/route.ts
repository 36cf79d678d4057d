// POST /credentials: authenticate (before the body is even parsed), rate-limit per
// caller, vend. The response schema lists every field, so serialisation drops any
// other: nothing can slip into a response by accident.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import cors from '@fastify/cors'
import underPressure from '@fastify/under-pressure'
import { Type, type Static } from '@sinclair/typebox'
import type { Config } from '../../config/schema.js'
import { Action } from '../../config/schema.js'
import { stsTime } from '../../core/index.js'
import { ErrorCode, RateLimited, withRetryAfter } from '../../errors.js'
import type { Caller } from '../../auth/verifier.js'
import type { Vender, Issued } from '../../vend.js'
import { ossAppServerError, requestedFormat, shapeFor, type Format } from './formats.js'
import { OriginNotAllowed, Overloaded } from '../../errors.js'

declare module 'fastify' {
  interface FastifyRequest { caller?: Caller, format?: Format }
}

export const CredentialsRequest = Type.Object({
  grant: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' })),
  prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  actions: Type.Optional(Type.Array(Action, { minItems: 1, maxItems: 4, uniqueItems: true })),
  durationSeconds: Type.Optional(Type.Integer({ minimum: 900, maximum: 43_200 }))
}, { additionalProperties: false })
export type CredentialsRequest = Static<typeof CredentialsRequest>

export const CredentialsResponse = Type.Object({
  accessKeyId: Type.String(),
  accessKeySecret: Type.String(),
  securityToken: Type.String(),
  expiration: Type.String({ format: 'date-time' }),
  bucket: Type.String(),
  region: Type.String(),
  /** ali-oss's form of the region (`oss-cn-hangzhou`), for `new OSS({ region })`. */
  ossRegion: Type.String(),
  endpoint: Type.String(),
  prefix: Type.String(),
  actions: Type.Array(Action)
}, { additionalProperties: false })

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
  code: ErrorCode,
  error: Type.String(),
  message: Type.String()
}, { additionalProperties: false })

export function defaultBody (issued: Issued): Static<typeof CredentialsResponse> {
  return {
    accessKeyId: issued.accessKeyId,
    accessKeySecret: issued.accessKeySecret,
    securityToken: issued.securityToken,
    expiration: stsTime(issued.expiration),
    bucket: issued.bucket,
    region: issued.region,
    ossRegion: `oss-${issued.region}`,
    endpoint: issued.endpoint,
    prefix: issued.prefix,
    actions: issued.actions
  }
}

/** A page served by this service itself (the dev demo) is not cross-origin. */
function sameOrigin (origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host
  } catch {
    return false
  }
}

export interface CredentialsRouteOptions {
  config: Config
  vender: Vender
  onIssued?: (request: FastifyRequest, issued: Issued) => void
  onRefused?: (request: FastifyRequest, statusCode: number, code: string) => void
  onRateLimited?: () => void
}

export default async function credentialsRoutes (app: FastifyInstance, opts: CredentialsRouteOptions): Promise<void> {
  const { config, vender } = opts

  // Shed load before doing any work when the event loop lags (only this route:
  // the probes must keep answering). Registered first so its check runs first.
  if (config.server.maxEventLoopDelayMs > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: config.server.maxEventLoopDelayMs,
      sampleInterval: 250,
      exposeStatusRoute: false,
      // A window with no sample reads as Infinity: that is missing data, not lag.
      pressureHandler: (_request, _reply, _type, value) => {
        if (value !== undefined && Number.isFinite(value)) throw withRetryAfter(new Overloaded(), 2)
      }
    })
  }
  const origins = new Set(config.cors.origins)
  // Authenticate in onRequest: an unauthenticated caller costs no body parsing. The
  // format comes first so that even a 401 is rendered in the shape the client reads.
  app.addHook('onRequest', async (request) => {
    const format = requestedFormat(request.query, request.headers.accept)
    request.format = format
    if (format === 'oss-app-server') request.renderError = ossAppServerError
    const origin = request.headers.origin
    if (origin !== undefined && !origins.has(origin) && !sameOrigin(origin, request.headers.host)) throw new OriginNotAllowed()
    if (request.method === 'OPTIONS') return // a preflight carries no credentials
    request.caller = await app.auth.authenticate(request)
  })
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode
    if (status === 401 || status === 403 || status === 429) opts.onRefused?.(request, status, request.errorCode ?? 'unknown')
  })
  // A POST without a body is a request for the grant's defaults.
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) request.body = {}
  })

  // Browsers: an explicit allow-list; no cookies are involved, so never credentials mode.
  await app.register(cors, {
    origin: [...origins],
    methods: ['POST'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
    exposedHeaders: ['x-request-id', 'retry-after'],
    credentials: false,
    maxAge: 600,
    strictPreflight: true
  })
  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    max: config.rateLimit.max,
    timeWindow: config.rateLimit.timeWindowMs,
    keyGenerator: (request) => request.caller !== undefined ? `${request.caller.issuer}\n${request.caller.subject}` : request.ip,
    errorResponseBuilder: (_request, context) => {
      opts.onRateLimited?.()
      return withRetryAfter(new RateLimited(), context.ttl / 1000)
    }
  })

  app.post('/credentials', {
    schema: {
      body: CredentialsRequest,
      response: { 200: CredentialsResponse, '4xx': ErrorResponse, '5xx': ErrorResponse }
    }
  }, async (request, reply) => {
    const caller = request.caller as Caller
    const issued = await vender.vend(caller, request.body as CredentialsRequest)
    opts.onIssued?.(request, issued)
    void reply.header('cache-control', 'no-store')
    const body = defaultBody(issued)
    if (request.format === undefined || request.format === 'ali-oss') return body
    const shaped = shapeFor(request.format, body)
    return reply.type('application/json; charset=utf-8').send(reply.serializeInput(shaped.body, shaped.schema))
  })
}
