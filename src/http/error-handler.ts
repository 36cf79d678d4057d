// The one error handler. It logs the full (serialised, scrubbed) error, answers with
// our code and a safe message, hides every 5xx detail and never passes upstream text
// through. Fastify's own errors (validation, body parsing, limits) are mapped to
// codes from the registry so that callers only ever see STS_VENDING_* codes.
import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import * as E from '../errors.js'

export interface ErrorBody { statusCode: number, code: string, error: string, message: string }

/** A route may render errors in another shape (e.g. the OSS mobile SDK format). */
export type ErrorRenderer = (body: ErrorBody) => unknown

declare module 'fastify' {
  interface FastifyRequest {
    renderError?: ErrorRenderer
    /** The code of the error this request was answered with, for the audit trail. */
    errorCode?: string
  }
}

const FASTIFY_CODE_MAP: Record<string, () => Error> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => new E.BodyTooLarge(),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new E.UnsupportedMediaType(),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => new E.BadRequest('invalid content length'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new E.BadRequest('empty JSON body'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new E.BadRequest('body is not valid JSON'),
  FST_ERR_BAD_URL: () => new E.BadRequest('bad URL'),
  FST_ERR_ASYNC_CONSTRAINT: () => new E.BadRequest('bad request')
}

interface MaybeOurs { code?: unknown, statusCode?: unknown, validation?: unknown, message?: unknown, retryAfterSeconds?: unknown }

export function toPublicError (err: unknown): { body: ErrorBody, retryAfterSeconds?: number } {
  const e = (err ?? {}) as MaybeOurs
  let ours: MaybeOurs
  if (typeof e.code === 'string' && e.code.startsWith(E.ERROR_PREFIX)) {
    ours = e
  } else if (e.validation !== undefined) {
    ours = new E.BadRequest(typeof e.message === 'string' ? e.message.slice(0, 200) : 'invalid body')
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
  const retry = typeof e.retryAfterSeconds === 'number' ? e.retryAfterSeconds : undefined
  return retry === undefined ? { body } : { body, retryAfterSeconds: retry }
}

export function sendError (request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const { body, retryAfterSeconds } = toPublicError(err)
  request.errorCode = body.code
  if (body.statusCode >= 500) {
    request.log.error({ err }, 'request failed')
  } else {
    request.log.info({ err }, 'request refused')
  }
  if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds))
  if (body.statusCode === 429 || body.statusCode === 503 || body.statusCode === 504) {
    if (!reply.hasHeader('retry-after')) void reply.header('retry-after', '1')
  }
  void reply.header('cache-control', 'no-store')
  void reply.code(body.statusCode).type('application/json; charset=utf-8')
  // Another shape is sent pre-serialised: the route's error schema describes ours.
  return request.renderError !== undefined ? reply.send(JSON.stringify(request.renderError(body))) : reply.send(body)
}

async function errorHandler (app: FastifyInstance): Promise<void> {
  app.setErrorHandler((err: FastifyError, request, reply) => sendError(request, reply, err))
  app.setNotFoundHandler((request, reply) => sendError(request, reply, new E.NotFound()))
}

export default fp(errorHandler, { name: 'error-handler', fastify: '5.x' })
