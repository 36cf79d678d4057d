// Tokens verified before, keyed by a string that determines the token: the auth plugin
// uses the whole Authorization header value ("Bearer <token>"), the verifier on its own
// the token. A repeated header costs a Map lookup instead of the header's parsing, the
// strict pre-parse, a hash and a signature check, which is what lets a cache hit beat
// a route that verifies every time (BENCHMARKS.md).
//
// What may not be cached is checked on every recall:
//   - the key that verified the token must still be in its issuer's key set
//     (`KeySource.holds`, which also starts the JWKS refresh when the set is stale), so
//     a key that leaves the JWKS stops verifying its tokens, seen before or not, within
//     the refresh interval;
//   - the time claims (exp, nbf, iat, the token age) against the injected clock.
// Equal strings carry the same token, and a token string determines everything else the
// first verification decided (header, algorithm, iss, aud, typ, signature), so equal
// strings need no second look.
//
// Found by its last characters, recalled only when equal as a whole: a Map keyed by the
// whole string hashes all of it on every lookup, since the parser makes a fresh string
// per request (measured with node alone: 1.3 µs for 800 characters, an RS256 header,
// against 0.12 µs for the last 64). The tail only says where to look: a string is
// recalled only when it equals the string remembered there, character for character.
// Two remembered strings that end alike take each other's place (the one pushed out is
// verified afresh when it comes again); only verified tokens are remembered, and a
// token's tail is its signature's, which no one else can produce.
//
// Bounded in count and in time, oldest first: a verified token is a caller's own, and
// re-verifying one that was dropped costs one signature check.
import type { IssuerConfig } from '../config/schema.js'
import type { KeySource, VerificationKey } from './keys.js'
import type { Caller } from './caller.js'

interface Entry {
  /** The string remembered, compared whole on every recall. */
  token: string
  caller: Caller
  issuer: IssuerConfig
  keys: KeySource
  key: VerificationKey
  until: number
}

export interface VerifiedTokens {
  /** The caller this token was verified as, if its key still holds; the time claims are the caller's to check. */
  recall (token: string): { caller: Caller, issuer: IssuerConfig } | undefined
  remember (token: string, entry: Omit<Entry, 'until' | 'token'>): void
  readonly size: number
}

/** Tokens kept at most (a verified token's entry is about 1.5 KB with its claims). */
export const MAX_VERIFIED_TOKENS = 10_000
/** How long a verified token is kept; its time claims are checked on every use regardless. */
export const VERIFIED_TOKEN_TTL_MS = 10 * 60 * 1000

/** A string's entry is found by this many of its last characters (then compared whole). */
const FOUND_BY = 64

const slotOf = (token: string): string => token.length > FOUND_BY ? token.slice(-FOUND_BY) : token

export function createVerifiedTokens (now: () => number, max = MAX_VERIFIED_TOKENS): VerifiedTokens {
  const entries = new Map<string, Entry>()
  return {
    get size () { return entries.size },
    recall (token) {
      const slot = slotOf(token)
      const e = entries.get(slot)
      if (e === undefined || e.token !== token) return undefined
      if (now() >= e.until || !e.keys.holds(e.key)) {
        entries.delete(slot)
        return undefined
      }
      return e
    },
    remember (token, entry) {
      if (max <= 0) return
      const slot = slotOf(token)
      entries.delete(slot)
      if (entries.size >= max) entries.delete(entries.keys().next().value as string)
      // Built field by field, not spread: Node 20's V8 gives a spread copy a hidden class
      // of its own once the copying site has seen a few, so every remembered token had its
      // own and every recall's property reads went megamorphic, through the runtime.
      entries.set(slot, { token, caller: entry.caller, issuer: entry.issuer, keys: entry.keys, key: entry.key, until: now() + VERIFIED_TOKEN_TTL_MS })
    }
  }
}
