// One verifier per configured issuer. fast-jwt (the engine under @fastify/jwt) checks
// the signature with the issuer's pinned algorithms, the exact `iss` and `aud`; the
// time claims are checked here against an injectable clock so that expiry is testable
// with fake time and `iat` in the future is refused (fast-jwt accepts it by default).
//
// Verified tokens are cached per key: fast-jwt's own cache (an LRU keyed by a SHA-2 of
// the token) inside the one verifier built for each key object. A repeated token costs
// a hash lookup instead of a signature check. The verifiers sit in a WeakMap keyed by
// the key object that keys.ts keeps only while the key set holds the key, so a key that
// leaves the JWKS takes its cache with it, and its tokens stop verifying at the next
// refresh, even tokens seen before. The cache holds nothing about time: exp, nbf, iat
// and the token age are checked on every request (checkTimeClaims), cached or not.
//
// Why not @fastify/jwt (10.x), although the product was specified with it: its verify
// options (algorithms, allowedIss, allowedAud) are fixed per registration, so per-issuer
// pinning needs one namespace per issuer; keys from a JWKS come through its async
// secret callback, and the verifier it then builds per key lives in a Map keyed by the
// PEM that is never bounded or emptied (a removed key's verifier and cache stay for the
// life of the process); it reads the Authorization header with its own, looser parsing
// (token.ts must run first anyway) and answers with its own error codes; and its time
// checks take a fixed `clockTimestamp`, not a clock. What it would add over fast-jwt,
// which it wraps, is that plumbing; the bench keeps it as the floor to measure against.
import { createVerifier, type TokenError } from 'fast-jwt'
import type { IssuerConfig } from '../config/schema.js'
import { InvalidToken, KeysUnavailable } from '../errors.js'
import type { KeySource, VerificationKey } from './keys.js'
import type { DecodedToken } from './token.js'

export interface Caller {
  /** The issuer's configured name. */
  issuer: string
  /** The validated `sub` claim. */
  subject: string
  claims: Record<string, unknown>
}

export type VerifyFailureReason = 'signature' | 'claims' | 'expired' | 'not_yet_valid' | 'issued_in_future' | 'too_old' | 'subject' | 'keys_unavailable'

export class TokenRejected extends InvalidToken {
  constructor (readonly reason: VerifyFailureReason) { super() }
}

const MAX_SUBJECT_LENGTH = 1024

function isNumber (v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

export function checkTimeClaims (payload: Record<string, unknown>, issuer: IssuerConfig, nowMs: number): void {
  const now = nowMs / 1000
  const tol = issuer.clockToleranceSeconds
  const { exp, nbf, iat } = payload
  if (!isNumber(exp)) throw new TokenRejected('claims')
  if (now >= exp + tol) throw new TokenRejected('expired')
  if (nbf !== undefined && (!isNumber(nbf) || nbf > now + tol)) throw new TokenRejected(isNumber(nbf) ? 'not_yet_valid' : 'claims')
  if (iat !== undefined && (!isNumber(iat) || iat > now + tol)) throw new TokenRejected(isNumber(iat) ? 'issued_in_future' : 'claims')
  if (issuer.maxTokenAgeSeconds > 0) {
    if (!isNumber(iat)) throw new TokenRejected('claims')
    if (now - iat > issuer.maxTokenAgeSeconds + tol) throw new TokenRejected('too_old')
  }
}

export type IssuerVerifier = (decoded: DecodedToken) => Promise<Caller>

/** Verified tokens kept per key (fast-jwt's LRU); bounded, and dropped with the key. */
export const VERIFIED_TOKENS_PER_KEY = 1000
/** How long a verified token stays cached (its time claims are checked on every use regardless). */
const VERIFIED_TOKEN_TTL_MS = 10 * 60 * 1000

export function createIssuerVerifier (issuer: IssuerConfig, keys: KeySource, now: () => number): IssuerVerifier {
  // The key is looked up first and one synchronous verifier is kept per key: given an
  // async key callback, fast-jwt re-parses the PEM on every verification, which
  // profiled at ~40 % of a cache-hit request (BENCHMARKS.md).
  const verifiers = new WeakMap<VerificationKey, (token: string) => unknown>()
  const verifierFor = (key: VerificationKey): (token: string) => unknown => {
    let verify = verifiers.get(key)
    if (verify === undefined) {
      verify = createVerifier({
        key: key.material,
        algorithms: issuer.algorithms as never,
        allowedIss: issuer.issuer,
        allowedAud: issuer.audience,
        requiredClaims: ['iss', 'aud', 'sub', 'exp'],
        // Time claims are checked in checkTimeClaims with the injected clock.
        ignoreExpiration: true,
        ignoreNotBefore: true,
        ...(issuer.typ !== undefined ? { checkTyp: issuer.typ } : {}),
        cache: VERIFIED_TOKENS_PER_KEY,
        cacheTTL: VERIFIED_TOKEN_TTL_MS
      })
      verifiers.set(key, verify)
    }
    return verify
  }

  return async (decoded) => {
    let key: VerificationKey
    try {
      key = await keys.getKey(decoded.header.kid, decoded.header.alg)
    } catch (err) {
      if (err instanceof KeysUnavailable) throw err
      throw new TokenRejected('signature')
    }
    let payload: Record<string, unknown>
    try {
      payload = verifierFor(key)(decoded.token) as Record<string, unknown>
    } catch (err) {
      const code = (err as TokenError).code
      throw new TokenRejected(code === 'FAST_JWT_INVALID_SIGNATURE' || code === 'FAST_JWT_INVALID_ALGORITHM' ? 'signature' : 'claims')
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new TokenRejected('claims')
    // A cached payload is the same object on every hit: nothing downstream may change it.
    Object.freeze(payload)
    checkTimeClaims(payload, issuer, now())
    const sub = payload.sub
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT_LENGTH) throw new TokenRejected('subject')
    return { issuer: issuer.name, subject: sub, claims: payload }
  }
}
