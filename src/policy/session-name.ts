// RoleSessionName: what ActionTrail shows as "who" for everything done with the
// credentials. STS takes 2-64 characters of [A-Za-z0-9.@_-]. A safe, short subject is
// used as it is (after the issuer's name and a "."), so an operator reads "corp.alice".
// Anything else becomes a readable head plus "-" and 12 hex of a SHA-256 over the exact
// (issuer, subject) pair, so distinct callers stay distinct. A verbatim name never ends
// in "-<12 hex>" (such subjects are hashed too), so the two forms cannot collide.
// This is for auditing only; access is confined by the session policy, not by this name.
import { createHash } from 'node:crypto'

export const SESSION_NAME_MIN = 2
export const SESSION_NAME_MAX = 64
export const SESSION_NAME = /^[A-Za-z0-9.@_-]{2,64}$/

const SAFE = /^[A-Za-z0-9.@_-]+$/
const ISSUER = /^[A-Za-z0-9_-]{1,63}$/
const HASHED_TAIL = /-[0-9a-f]{12}$/
const HASH_CHARS = 12
const ISSUER_HEAD_MAX = 20

function sanitise (s: string): string {
  return s.replace(/[^A-Za-z0-9.@_-]+/g, '_')
}

export function roleSessionName (subject: string, issuerName?: string): string {
  const sub = typeof subject === 'string' ? subject : String(subject)
  const iss = typeof issuerName === 'string' && issuerName !== '' ? issuerName : undefined
  // An issuer name has no ".", so "<issuer>.<subject>" splits back unambiguously.
  const verbatim = iss === undefined ? sub : `${iss}.${sub}`
  if ((iss === undefined || ISSUER.test(iss)) && SAFE.test(sub) && !HASHED_TAIL.test(sub) &&
      verbatim.length >= SESSION_NAME_MIN && verbatim.length <= SESSION_NAME_MAX) {
    return verbatim
  }
  // JSON.stringify escapes lone surrogates, so the hash input is injective.
  const hash = createHash('sha256').update(JSON.stringify([iss ?? null, sub]), 'utf8').digest('hex').slice(0, HASH_CHARS)
  const lead = iss === undefined ? '' : sanitise(iss).replace(/\./g, '_').slice(0, ISSUER_HEAD_MAX) + '.'
  const room = SESSION_NAME_MAX - lead.length - 1 - HASH_CHARS
  const head = sanitise(sub).slice(0, room)
  return `${lead}${head === '' ? 'x' : head}-${hash}`
}
