// Why a token was refused, in words from a fixed list. The same reason labels the
// metric (stsv_jwt_failures_total), the one log line of the refusal, the answer's
// `reason` and its RFC 6750 `WWW-Authenticate` challenge, so that a developer sees
// why without reading /metrics. The plain-words description comes from a table keyed
// by reason and may name the issuer's configured audience, algorithms or age limit:
// never a value taken from the token, which the caller already has and a log must not.
import { Type } from '@sinclair/typebox'
import type { IssuerConfig } from '../config/schema.js'
import { InvalidToken } from '../errors.js'

export const TOKEN_REFUSAL_REASONS = [
  'malformed', 'algorithm', 'signature', 'unknown_key', 'issuer', 'audience',
  'expired', 'not_yet_valid', 'too_old', 'claims', 'keys_unavailable'
] as const

export type TokenRefusalReason = typeof TOKEN_REFUSAL_REASONS[number]

/** The `reason` of an error body (401 only). */
export const RefusalReason = Type.String({ enum: [...TOKEN_REFUSAL_REASONS] })

const REASONS: ReadonlySet<unknown> = new Set(TOKEN_REFUSAL_REASONS)

export function isTokenRefusalReason (v: unknown): v is TokenRefusalReason {
  return REASONS.has(v)
}

/** A 401 for a token, with its reason; the issuer's name and the words are added where it is answered. */
export class TokenRejected extends InvalidToken {
  constructor (readonly reason: TokenRefusalReason) { super() }

  // @fastify/error answers `instanceof` by error code, which every InvalidToken shares:
  // without this, any InvalidToken would pass for a TokenRejected with no reason.
  static override [Symbol.hasInstance] (v: unknown): boolean {
    return typeof v === 'object' && v !== null && Object.prototype.isPrototypeOf.call(TokenRejected.prototype, v)
  }
}

/** What a refused token's answer and log line carry (set on the error as `refusal`). */
export interface TokenRefusal {
  reason: TokenRefusalReason
  /** The issuer's configured name, when the token named a configured issuer. */
  issuer?: string
  /** Plain words for `error_description`; undefined when no token was sent (RFC 6750 §3.1). */
  description?: string
}

const DESCRIPTIONS: Record<TokenRefusalReason, (issuer: IssuerConfig | undefined) => string> = {
  malformed: () => 'the token is not a well-formed JWT',
  algorithm: (i) => i !== undefined
    ? `the token's algorithm is not one of ${i.algorithms.join(', ')}`
    : 'the token is unsigned or its algorithm is not accepted',
  signature: () => 'the token\'s signature does not verify with the issuer\'s key',
  unknown_key: () => 'the token\'s key (kid) is not one of the issuer\'s keys',
  issuer: () => 'the token\'s issuer (iss) is not a configured issuer',
  audience: (i) => i !== undefined ? `the token's audience is not ${i.audience}` : 'the token\'s audience is not accepted',
  expired: () => 'the token has expired',
  not_yet_valid: () => 'the token is not valid yet (nbf or iat is in the future)',
  too_old: (i) => i !== undefined
    ? `the token was issued more than ${i.maxTokenAgeSeconds} seconds ago`
    : 'the token was issued too long ago',
  claims: () => 'a required claim (sub, exp) is missing or has the wrong type',
  keys_unavailable: () => 'the issuer\'s keys are not available'
}

export function describeRefusal (reason: TokenRefusalReason, issuer?: IssuerConfig): string {
  return DESCRIPTIONS[reason](issuer)
}

// RFC 6750 §3: error_description holds %x20-21 / %x23-5B / %x5D-7E only.
const NOT_QUOTABLE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g

/** The `WWW-Authenticate` value of a 401: bare `Bearer` when no token was sent (RFC 6750 §3.1). */
export function bearerChallenge (refusal: TokenRefusal | undefined): string {
  if (refusal?.description === undefined) return 'Bearer'
  return `Bearer error="invalid_token", error_description="${refusal.description.replace(NOT_QUOTABLE, '?')}"`
}
