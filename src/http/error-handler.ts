// The one error handler. It logs the full (serialised, scrubbed) error, answers with
// our code and a safe message, hides every 5xx detail and never passes upstream text
// through. Fastify's own errors (validation, body parsing, limits) are mapped to
// codes from the registry so that callers only ever see STS_VENDING_* codes; so are
// the answers Node's HTTP parser gives before Fastify sees a request (431, 408, 400).
// The caller surface (caller-surface.ts) sets its own handler on top of `sendError`:
// it adds the CORS headers and renders a family's own error shape (the credentials
// route's oss-app-server format).
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import * as E from '../errors.js'
import { bearerChallenge, isTokenRefusalReason, type TokenRefusal } from '../auth/refusal.js'
import { describeValidation } from './validation-message.js'

export interface ErrorBody {
  statusCode: number
  code: string
  error: string
  message: string
  /** Why a token was refused (401 only), from the fixed list in auth/refusal.ts. */
  reason?: string
}

/** Another shape for the same error (e.g. the OSS mobile SDK format). */
export type ErrorRenderer = (body: ErrorBody) => unknown

const FASTIFY_CODE_MAP: Record<string, () => Error> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => new E.BodyTooLarge(),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new E.UnsupportedMediaType(),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => new E.BadRequest('invalid content length'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new E.BadRequest('empty JSON body'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new E.BadRequest('body is not valid JSON'),
  FST_ERR_BAD_URL: () => new E.BadRequest('bad URL'),
  FST_ERR_ASYNC_CONSTRAINT: () => new E.BadRequest('bad request')
}

interface MaybeOurs {
  code?: unknown
  statusCode?: unknown
  validation?: unknown
  validationContext?: unknown
  message?: unknown
  retryAfterSeconds?: unknown
  refusal?: unknown
}

/** A refused token's reason and words, when the auth plugin set them (auth/refusal.ts). */
function refusalOf (e: MaybeOurs): TokenRefusal | undefined {
  const r = e.refusal as Partial<TokenRefusal> | undefined
  return r !== undefined && r !== null && isTokenRefusalReason(r.reason) ? r as TokenRefusal : undefined
}

export interface PublicError { body: ErrorBody, retryAfterSeconds?: number, refusal?: TokenRefusal }

export function toPublicError (err: unknown): PublicError {
  const e = (err ?? {}) as MaybeOurs
  let ours: MaybeOurs
  if (typeof e.code === 'string' && e.code.startsWith(E.ERROR_PREFIX)) {
    ours = e
  } else if (e.validation !== undefined) {
    // Built from the schema's own words and the request's field names, whole: never cut.
    ours = new E.BadRequest(describeValidation(e.validation, e.validationContext))
  } else if (typeof e.code === 'string' && FASTIFY_CODE_MAP[e.code] !== undefined) {
    ours = FASTIFY_CODE_MAP[e.code]!()
  } else if (typeof e.code === 'string' && e.code.startsWith('FST_') && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    ours = new E.BadRequest('bad request')
  } else {
    ours = new E.Internal()
  }
  const statusCode = typeof ours.statusCode === 'number' ? ours.statusCode : 500
  const body: ErrorBody = {
    statusCode,
    code: String(ours.code),
    error: STATUS_CODES[statusCode] ?? 'Error',
    message: String(ours.message)
  }
  const refusal = statusCode === 401 ? refusalOf(ours) : undefined
  if (refusal !== undefined) body.reason = refusal.reason
  const retry = typeof e.retryAfterSeconds === 'number' ? e.retryAfterSeconds : undefined
  return { body, ...(retry !== undefined ? { retryAfterSeconds: retry } : {}), ...(refusal !== undefined ? { refusal } : {}) }
}

/**
 * Log the error, answer it, and return the public body (its `code` is what the audit
 * trail records). `before` sees that body before the answer is sent: with no promise
 * left in the hooks, an answer can complete (and its onResponse hooks run) within send.
 */
export function sendError (request: FastifyRequest, reply: FastifyReply, err: unknown, render?: ErrorRenderer, before?: (body: ErrorBody) => void): ErrorBody {
  const { body, retryAfterSeconds, refusal } = toPublicError(err)
  before?.(body)
  if (body.statusCode >= 500) {
    request.log.error({ err }, 'request failed')
  } else {
    // A refusal is the caller's business, not a fault: one line, no stack, with what
    // was answered (our code and message, built from config and field names only).
    request.log.info({
      statusCode: body.statusCode,
      code: body.code,
      ...(refusal !== undefined ? { reason: refusal.reason } : {}),
      ...(refusal?.issuer !== undefined ? { issuer: refusal.issuer } : {}),
      detail: body.message
    }, 'request refused')
  }
  // RFC 6750 §3: every 401 says how to authenticate, and why a sent token failed.
  if (body.statusCode === 401) void reply.header('www-authenticate', bearerChallenge(refusal))
  if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds))
  if (body.statusCode === 429 || body.statusCode === 503 || body.statusCode === 504) {
    if (!reply.hasHeader('retry-after')) void reply.header('retry-after', '1')
  }
  void reply.header('cache-control', 'no-store')
  void reply.code(body.statusCode).type('application/json; charset=utf-8')
  // Another shape is sent pre-serialised: the route's error schema describes ours.
  void (render !== undefined ? reply.send(JSON.stringify(render(body))) : reply.send(body))
  return body
}

// Methods a client may call a route with; OPTIONS is the CORS preflight, answered on every path.
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'] as const

/** The methods this path has routes for (our routes are all static paths). */
function allowedMethods (app: FastifyInstance, request: FastifyRequest): string[] {
  const url = request.url.split('?', 1)[0] ?? ''
  return METHODS.filter((method) => app.hasRoute({ method, url }))
}

/**
 * The answers Node's HTTP parser gives on its own (headers over `server.maxHeaderBytes`,
 * a request not received within `server.requestTimeoutMs`, bytes that are not HTTP), in
 * our error shape. They are written to the socket directly: no request exists yet.
 */
export function clientErrorHandler (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const error = err.code === 'HPE_HEADER_OVERFLOW'
    ? new E.HeadersTooLarge()
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? new E.RequestTimeout() : new E.BadRequest('not an HTTP request')
  const { body } = toPublicError(error)
  this.log.debug({ code: err.code }, 'client error')
  if (socket.writable) {
    const text = JSON.stringify(body)
    socket.write(`HTTP/1.1 ${body.statusCode} ${body.error}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(text)}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n` +
      `Connection: close\r\n\r\n${text}`)
  }
  socket.destroy(err)
}

async function errorHandler (app: FastifyInstance): Promise<void> {
  app.setErrorHandler((err: FastifyError, request, reply) => { sendError(request, reply, err) })
  // A path that exists with other methods is a 405 with `Allow`, not a 404.
  app.setNotFoundHandler((request, reply) => {
    const allowed = allowedMethods(app, request)
    if (allowed.length > 0) void reply.header('allow', allowed.join(', '))
    sendError(request, reply, allowed.length > 0 ? new E.MethodNotAllowed() : new E.NotFound())
  })
}

export default fp(errorHandler, { name: 'error-handler', fastify: '5.x' })
