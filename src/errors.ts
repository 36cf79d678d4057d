// The one registry of errors this service answers with. Every refusal is thrown by
// name from here; the error handler (http/error-handler.ts) turns them into
// { statusCode, code, error, message } and never passes upstream text through.
import createError from '@fastify/error'
import { Type } from '@sinclair/typebox'

export const ERROR_PREFIX = 'STS_VENDING_'

/**
 * The registry: every error this service answers with, keyed by the name it is thrown
 * by. The list of codes (the OpenAPI enum and status table, held equal by
 * test/openapi.test.ts) is derived from it, so a code cannot exist in one place only.
 */
export const errors = {
  // 400
  BadRequest: createError('STS_VENDING_BAD_REQUEST', 'Malformed request: %s', 400),
  BadAuthorizationHeader: createError('STS_VENDING_BAD_AUTHORIZATION_HEADER', 'The Authorization header must be "Bearer <token>"', 400),
  TokenInQuery: createError('STS_VENDING_TOKEN_IN_QUERY', 'Tokens are accepted only in the Authorization header', 400),
  UnknownFormat: createError('STS_VENDING_UNKNOWN_FORMAT', 'Unknown response format', 400),
  // 401
  MissingToken: createError('STS_VENDING_MISSING_TOKEN', 'Authorization is required', 401),
  InvalidToken: createError('STS_VENDING_INVALID_TOKEN', 'The token is not valid', 401),
  // 403
  GrantNotAllowed: createError('STS_VENDING_GRANT_NOT_ALLOWED', 'No grant is allowed for this caller', 403),
  GrantAmbiguous: createError('STS_VENDING_GRANT_AMBIGUOUS', 'Several grants apply to this caller; name one in "grant"', 403),
  ClaimNotUsable: createError('STS_VENDING_CLAIM_NOT_USABLE', 'A claim of this token cannot be used in a directory name', 403),
  PrefixNotAllowed: createError('STS_VENDING_PREFIX_NOT_ALLOWED', 'The requested prefix is outside the directory of this grant', 403),
  ActionsNotAllowed: createError('STS_VENDING_ACTIONS_NOT_ALLOWED', 'The requested actions are not all allowed by this grant', 403),
  DurationNotAllowed: createError('STS_VENDING_DURATION_NOT_ALLOWED', 'The requested duration is outside what this grant allows', 403),
  SigningNotEnabled: createError('STS_VENDING_SIGNING_NOT_ENABLED', 'This grant does not sign uploads', 403),
  KeyNotAllowed: createError('STS_VENDING_KEY_NOT_ALLOWED', 'The object key is outside the directory of this grant or not a safe key', 403),
  SizeNotAllowed: createError('STS_VENDING_SIZE_NOT_ALLOWED', 'The requested size is larger than this grant allows', 403),
  ContentTypeNotAllowed: createError('STS_VENDING_CONTENT_TYPE_NOT_ALLOWED', 'The content type is not allowed by this grant', 403),
  OriginNotAllowed: createError('STS_VENDING_ORIGIN_NOT_ALLOWED', 'This origin is not allowed', 403),
  CallerDenied: createError('STS_VENDING_CALLER_DENIED', 'This caller has been denied by the operator', 403),
  CallbackNotVerified: createError('STS_VENDING_CALLBACK_NOT_VERIFIED', 'The upload callback could not be verified', 403),
  // other 4xx
  NotFound: createError('STS_VENDING_NOT_FOUND', 'Not found', 404),
  MethodNotAllowed: createError('STS_VENDING_METHOD_NOT_ALLOWED', 'Method not allowed', 405),
  NotAcceptable: createError('STS_VENDING_NOT_ACCEPTABLE', 'No acceptable response format', 406),
  CallbackReplayed: createError('STS_VENDING_CALLBACK_REPLAYED', 'This upload callback was already received', 409),
  RequestTimeout: createError('STS_VENDING_REQUEST_TIMEOUT', 'The request was not received in time', 408),
  BodyTooLarge: createError('STS_VENDING_BODY_TOO_LARGE', 'The request body is too large', 413),
  UnsupportedMediaType: createError('STS_VENDING_UNSUPPORTED_MEDIA_TYPE', 'The request body must be application/json', 415),
  HeadersTooLarge: createError('STS_VENDING_HEADERS_TOO_LARGE', 'The request headers are too large', 431),
  // 429
  RateLimited: createError('STS_VENDING_RATE_LIMITED', 'Too many requests; retry later', 429),
  CallerBudgetExhausted: createError('STS_VENDING_CALLER_BUDGET_EXHAUSTED', 'This caller has asked for too many new credentials; retry later or reuse earlier ones', 429),
  // 5xx
  Internal: createError('STS_VENDING_INTERNAL', 'Internal error', 500),
  UpstreamRejected: createError('STS_VENDING_UPSTREAM_REJECTED', 'The credential service is misconfigured; the operator has been alerted', 500),
  UpstreamBadResponse: createError('STS_VENDING_UPSTREAM_BAD_RESPONSE', 'The upstream answered with something unusable', 502),
  UpstreamUnavailable: createError('STS_VENDING_UPSTREAM_UNAVAILABLE', 'The upstream credential service is unavailable; retry later', 503),
  UpstreamThrottled: createError('STS_VENDING_UPSTREAM_THROTTLED', 'The upstream credential service is busy; retry later', 503),
  StsBudgetExhausted: createError('STS_VENDING_STS_BUDGET_EXHAUSTED', 'Too many new credentials are being issued; retry later', 503),
  CircuitOpen: createError('STS_VENDING_CIRCUIT_OPEN', 'The upstream credential service is failing; retry later', 503),
  KeysUnavailable: createError('STS_VENDING_KEYS_UNAVAILABLE', 'The identity provider keys are not available; retry later', 503),
  ShuttingDown: createError('STS_VENDING_SHUTTING_DOWN', 'The server is shutting down; retry on another instance', 503),
  Overloaded: createError('STS_VENDING_OVERLOADED', 'The server is overloaded; retry later', 503),
  UpstreamTimeout: createError('STS_VENDING_UPSTREAM_TIMEOUT', 'The upstream credential service did not answer in time', 504)
}

export const {
  BadRequest, BadAuthorizationHeader, TokenInQuery, UnknownFormat, MissingToken,
  InvalidToken, GrantNotAllowed, GrantAmbiguous, ClaimNotUsable, PrefixNotAllowed,
  ActionsNotAllowed, DurationNotAllowed, SigningNotEnabled, KeyNotAllowed, SizeNotAllowed, ContentTypeNotAllowed, OriginNotAllowed, CallerDenied, CallbackNotVerified, NotFound, MethodNotAllowed,
  CallbackReplayed,
  NotAcceptable, RequestTimeout, BodyTooLarge, UnsupportedMediaType, HeadersTooLarge, RateLimited, CallerBudgetExhausted, Internal,
  UpstreamRejected, UpstreamBadResponse, UpstreamUnavailable, UpstreamThrottled, StsBudgetExhausted,
  CircuitOpen, KeysUnavailable, ShuttingDown, Overloaded, UpstreamTimeout
} = errors

/** Every code this service can answer with, in the registry's order, for the OpenAPI document and its tests. */
export const ERROR_CODES = Object.values(errors).map((E) => {
  const e = new E()
  return { code: e.code, statusCode: e.statusCode as number }
})

/** The `code` of an error body; the enum is documentation (serialisation does not check it). */
export const ErrorCode = Type.String({ enum: ERROR_CODES.map((e) => e.code) })

/**
 * A refusal that goes on to say what is allowed (the caller's directory, the grant's
 * actions, the duration range): built from config and grant data only, never from a
 * token, a secret or upstream text.
 */
export function explained<T extends Error> (err: T, allowed: string): T {
  err.message = `${err.message}; ${allowed}`
  return err
}

/** Errors that carry a Retry-After hint (seconds) for the caller. */
export interface RetryHint { retryAfterSeconds?: number }

/**
 * The longest Retry-After this service answers with. The hint's inputs include state
 * that others can write (a fleet budget in Redis, an upstream's header): whatever they
 * say, no caller is told to stay away for longer than this.
 */
export const MAX_RETRY_AFTER_SECONDS = 60

export function withRetryAfter<T extends Error> (err: T, seconds: number): T & RetryHint {
  const s = Number.isFinite(seconds) ? Math.ceil(seconds) : MAX_RETRY_AFTER_SECONDS
  return Object.assign(err, { retryAfterSeconds: Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, s)) })
}
