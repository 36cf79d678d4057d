// Upload tickets: what a signed form's callback carries so that, when OSS calls back,
// the service knows which grant, caller, key and lifetime the upload was signed for.
// Opaque to everyone else and unforgeable: base64url JSON, a dot, and the base64url
// HMAC-SHA256 of the JSON under the grant's forward secret (every replica has it, so
// any replica can check a ticket another one issued). The caller is named by a hash of
// issuer and subject, never the subject itself: the ticket passes through the browser.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

export interface TicketClaims {
  /** Grant name. */
  g: string
  /** The caller's hashed id (callerHash). */
  c: string
  /** The key, exact, or the prefix every key must start with. */
  k: string
  x: 'exact' | 'prefix'
  /** Unix seconds after which the ticket is refused. */
  e: number
  /** A random nonce: two forms for the same key are two tickets. */
  n: string
}

const DOMAIN = 'sts-vending upload ticket v1\n'
/**
 * How long after its form expires a ticket is still honoured: the upload must start
 * before the form expires, but a large one can land (and OSS call back) much later.
 */
export const CALLBACK_GRACE_SECONDS = 3600
/** Longest ticket accepted: a key of 1023 bytes, base64-expanded, and the rest. */
export const TICKET_MAX_LENGTH = 2048

/** 32 hex of SHA-256 over `issuer\nsubject`: stable per caller, reveals neither. */
export function callerHash (issuer: string, subject: string): string {
  return createHash('sha256').update(`${issuer}\n${subject}`, 'utf8').digest('hex').slice(0, 32)
}

function mac (secret: Buffer, payload: string): Buffer {
  return createHmac('sha256', secret).update(DOMAIN + payload, 'utf8').digest()
}

export function issueTicket (secret: Buffer, claims: TicketClaims): string {
  const payload = Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url')
  return `${payload}.${mac(secret, payload).toString('base64url')}`
}

/**
 * The claims of a ticket this service issued for the grant it names, still valid at
 * `nowMs`; undefined for anything else (malformed, unknown grant, forged, expired).
 */
export function readTicket (ticket: unknown, secretFor: (grant: string) => Buffer | undefined, nowMs: number): TicketClaims | undefined {
  if (typeof ticket !== 'string' || ticket.length > TICKET_MAX_LENGTH) return undefined
  const [payload, tag, extra] = ticket.split('.')
  if (payload === undefined || tag === undefined || extra !== undefined) return undefined
  let claims: unknown
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
  if (claims === null || typeof claims !== 'object') return undefined
  const c = claims as Partial<TicketClaims>
  if (typeof c.g !== 'string' || typeof c.c !== 'string' || typeof c.k !== 'string' || (c.x !== 'exact' && c.x !== 'prefix') ||
    typeof c.e !== 'number' || typeof c.n !== 'string') return undefined
  const secret = secretFor(c.g)
  if (secret === undefined) return undefined
  const given = Buffer.from(tag, 'base64url')
  const want = mac(secret, payload)
  if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined
  if (nowMs > c.e * 1000) return undefined
  return c as TicketClaims
}

/** Whether the object OSS reports is the one the ticket was issued for. */
export function ticketCovers (claims: TicketClaims, object: string): boolean {
  return claims.x === 'exact' ? object === claims.k : object.startsWith(claims.k) && object.length > claims.k.length
}
