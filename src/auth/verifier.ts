// One verifier per configured issuer. fast-jwt (the engine under @fastify/jwt) checks
// the signature with the issuer's pinned algorithms, the exact `iss` and `aud`; the
// time claims are checked here against an injectable clock so that expiry is testable
// with fake time and `iat` in the future is refused (fast-jwt accepts it by default).
//
// A verified token is remembered by a string that decides it (verified-tokens.ts: the
// auth plugin passes its whole Authorization header, `rememberAs`) together with the
// key that verified it; a repeated token is recalled without parsing or hashing while
// its key is still in the set, and its time claims are checked on every request. One
// fast-jwt verifier is kept per key object, in a WeakMap: keys.ts keeps a key object
// only while the key set holds the key, so a removed key's verifier goes with it.
//
// Why not @fastify/jwt (10.x), although the product was specified with it: its verify
// options (algorithms, allowedIss, allowedAud) are fixed per registration, so per-issuer
// pinning needs one namespace per issuer; keys from a JWKS come through its async
// secret callback, and the verifier it then builds per key lives in a Map keyed by the
// PEM that is never bounded or emptied (a removed key's verifier and cache stay for the
// life of the process); its cache is keyed by a hash of the token, checked after its own
// header parsing, where a cache keyed by the string and checked first costs a lookup;
// it reads the Authorization header with its own, looser parsing (token.ts must run
// first anyway) and answers with its own error codes; and its time checks take a fixed
// `clockTimestamp`, not a clock. What it would add over fast-jwt, which it wraps, is
// that plumbing; the bench keeps it as the floor to measure against.
import { createVerifier, type TokenError } from 'fast-jwt'
import type { IssuerConfig } from '../config/schema.js'
import { KeysUnavailable } from '../errors.js'
import type { KeySource, VerificationKey } from './keys.js'
import { TokenRejected, type TokenRefusalReason } from './refusal.js'
import type { DecodedToken } from './token.js'
import { createVerifiedTokens, type VerifiedTokens } from './verified-tokens.js'
import type { Caller } from './caller.js'

// The caller's type lives in caller.ts so that verified-tokens.ts, which this module
// imports, does not import this module back; re-exported for the modules that read it here.

const MAX_SUBJECT_LENGTH = 1024

function isNumber (v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

export function checkTimeClaims (payload: Readonly<Record<string, unknown>>, issuer: IssuerConfig, nowMs: number): void {
  const now = nowMs / 1000
  const tol = issuer.clockToleranceSeconds
  const { exp, nbf, iat } = payload
  if (!isNumber(exp)) throw new TokenRejected('claims')
  if (now >= exp + tol) throw new TokenRejected('expired')
  if (nbf !== undefined && (!isNumber(nbf) || nbf > now + tol)) throw new TokenRejected(isNumber(nbf) ? 'not_yet_valid' : 'claims')
  if (iat !== undefined && (!isNumber(iat) || iat > now + tol)) throw new TokenRejected(isNumber(iat) ? 'not_yet_valid' : 'claims')
  if (issuer.maxTokenAgeSeconds > 0) {
    if (!isNumber(iat)) throw new TokenRejected('claims')
    if (now - iat > issuer.maxTokenAgeSeconds + tol) throw new TokenRejected('too_old')
  }
}

/**
 * fast-jwt checks the signature before any claim, so a claim failure is about a signed
 * payload: the token's `iss` chose this issuer, so a wrong value there is the audience.
 */
function verifyFailure (code: string, payload: Readonly<Record<string, unknown>>, issuer: IssuerConfig): TokenRefusalReason {
  if (code === 'FAST_JWT_INVALID_SIGNATURE') return 'signature'
  if (code === 'FAST_JWT_INVALID_ALGORITHM') return 'algorithm'
  const aud = payload.aud
  const audOk = aud === issuer.audience || (Array.isArray(aud) && aud.includes(issuer.audience))
  if (!audOk && (code === 'FAST_JWT_INVALID_CLAIM_VALUE' || code === 'FAST_JWT_MISSING_REQUIRED_CLAIM' || code === 'FAST_JWT_INVALID_CLAIM_TYPE')) return 'audience'
  if (code === 'FAST_JWT_MALFORMED' || code === 'FAST_JWT_INVALID_PAYLOAD') return 'malformed'
  return 'claims'
}

/** `rememberAs`: the string the verified caller is remembered by (the auth plugin's Authorization header); the token itself by default. */
export type IssuerVerifier = (decoded: DecodedToken, rememberAs?: string) => Promise<Caller>

/**
 * The caller a token was verified as before, with its time claims checked now; undefined
 * when the token is not remembered (or its key left the set): verify it afresh.
 */
export function recallCaller (tokens: VerifiedTokens, token: string, now: () => number): Caller | undefined {
  const known = tokens.recall(token)
  if (known === undefined) return undefined
  checkTimeClaims(known.caller.claims, known.issuer, now())
  return known.caller
}

export function createIssuerVerifier (issuer: IssuerConfig, keys: KeySource, now: () => number, tokens: VerifiedTokens = createVerifiedTokens(now)): IssuerVerifier {
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
        // Remembered tokens are recalled before fast-jwt is reached (verified-tokens.ts).
        cache: false
      })
      verifiers.set(key, verify)
    }
    return verify
  }

  return async (decoded, rememberAs = decoded.token) => {
    const recalled = recallCaller(tokens, rememberAs, now)
    if (recalled !== undefined) return recalled
    // Pinned algorithms first: a token in another algorithm needs no key lookup to refuse.
    if (!issuer.algorithms.includes(decoded.header.alg as never)) throw new TokenRejected('algorithm')
    let key: VerificationKey
    try {
      key = await keys.getKey(decoded.header.kid, decoded.header.alg)
    } catch (err) {
      if (err instanceof KeysUnavailable) throw err
      throw new TokenRejected('unknown_key')
    }
    let payload: Record<string, unknown>
    try {
      payload = verifierFor(key)(decoded.token) as Record<string, unknown>
    } catch (err) {
      throw new TokenRejected(verifyFailure((err as TokenError).code, decoded.payload, issuer))
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new TokenRejected('claims')
    checkTimeClaims(payload, issuer, now())
    const sub = payload.sub
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT_LENGTH) throw new TokenRejected('claims')
    // A remembered caller is the same object on every recall: nothing downstream may change it.
    const caller: Caller = Object.freeze({ issuer: issuer.name, subject: sub, claims: Object.freeze(payload) })
    tokens.remember(rememberAs, { caller, issuer, keys, key })
    return caller
  }
}
