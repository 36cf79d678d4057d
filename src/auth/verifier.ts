// One verifier per configured issuer. fast-jwt (the engine under @fastify/jwt) checks
// the signature with the issuer's pinned algorithms, the exact `iss` and `aud`; the
// time claims are checked here against an injectable clock so that expiry is testable
// with fake time and `iat` in the future is refused (fast-jwt accepts it by default).
import { createVerifier, type TokenError } from 'fast-jwt'
import type { IssuerConfig } from '../config/schema.js'
import { InvalidToken, KeysUnavailable } from '../errors.js'
import type { KeySource } from './keys.js'
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

export function createIssuerVerifier (issuer: IssuerConfig, keys: KeySource, now: () => number): IssuerVerifier {
  // The key is looked up first and one synchronous verifier is kept per key: given an
  // async key callback, fast-jwt re-parses the PEM on every verification, which
  // profiled at ~40 % of a cache-hit request (BENCHMARKS.md).
  const verifiers = new Map<string | Buffer, (token: string) => unknown>()
  const verifierFor = (key: string | Buffer): (token: string) => unknown => {
    let verify = verifiers.get(key)
    if (verify === undefined) {
      if (verifiers.size >= 64) verifiers.clear() // keys rotate; never grow without bound
      verify = createVerifier({
        key,
        algorithms: issuer.algorithms as never,
        allowedIss: issuer.issuer,
        allowedAud: issuer.audience,
        requiredClaims: ['iss', 'aud', 'sub', 'exp'],
        // Time claims are checked in checkTimeClaims with the injected clock.
        ignoreExpiration: true,
        ignoreNotBefore: true,
        ...(issuer.typ !== undefined ? { checkTyp: issuer.typ } : {}),
        cache: false
      })
      verifiers.set(key, verify)
    }
    return verify
  }

  return async (decoded) => {
    let key: string | Buffer
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
    checkTimeClaims(payload, issuer, now())
    const sub = payload.sub
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT_LENGTH) throw new TokenRejected('subject')
    return { issuer: issuer.name, subject: sub, claims: payload }
  }
}
