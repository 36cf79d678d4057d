// Upload callbacks, without HTTP: OSS posts here once an object signed by sign.ts has
// landed. Verify OSS's signature (alicloud/oss-callback.ts), then the ticket the form
// carried (grants/upload-ticket.ts: grant, caller, key, expiry), then that this ticket
// and object have not been seen before (fleet-wide with Redis), then forward the event
// to the grant's forwardUrl, signed so the app can check it came from here:
// `X-Sts-Vending-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
// Nothing unverified is ever forwarded. OSS relays what this answers to the browser:
// the app's JSON when it gave one, else {"ok":true,"key":…}; a forward that fails is
// answered 200 with ok false (OSS would otherwise report a failed upload that did land)
// and counted.
import { createHash, createHmac } from 'node:crypto'
import type { GrantConfig } from './config/schema.js'
import { BadRequest, CallbackNotVerified, CallbackReplayed, KeysUnavailable } from './errors.js'
import { readTicket, ticketCovers } from './grants/upload-ticket.js'
import { readBounded, type CallbackRequest, type CallbackVerifier } from './alicloud/oss-callback.js'
import type { OnceStore } from './redis/once.js'

/** OSS's callback body is small; anything larger is refused before it is read. */
export const CALLBACK_BODY_MAX_BYTES = 64 * 1024
/** The forward's whole deadline, connection to last byte. */
export const FORWARD_TIMEOUT_MS = 5000
/** The app's answer is relayed to the browser through OSS: bounded. */
export const FORWARD_ANSWER_MAX_BYTES = 64 * 1024
export const SIGNATURE_HEADER = 'x-sts-vending-signature'

export interface CompletedUpload {
  type: 'upload.completed'
  grant: string
  /** The caller's hashed id (issuer and subject), as in the ticket. */
  caller: string
  bucket: string
  key: string
  size: number
  contentType: string
  etag: string
  /** ISO time the callback was verified. */
  at: string
}

export interface CallbackResult {
  /** What OSS relays to the browser. */
  answer: Record<string, unknown>
  event: CompletedUpload
  delivered: boolean
}

export type Forward = (url: string, body: string, headers: Record<string, string>, signal: AbortSignal) => Promise<{ status: number, contentType: string, body: string }>

export interface CallbackDeps {
  grants: readonly GrantConfig[]
  secrets: ReadonlyMap<string, Buffer>
  verifier: CallbackVerifier
  once: OnceStore
  now: () => number
  forward?: Forward
  /** Why a callback was refused, for the one log line each (never its content). */
  onRefused?: (reason: string) => void
}

export interface CallbackHandler { handle (req: CallbackRequest): Promise<CallbackResult> }

/** The header value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function forwardSignature (secret: Buffer, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest('hex')}`
}

const fetchForward: Forward = async (url, body, headers, signal) => {
  const res = await fetch(url, { method: 'POST', body, headers, signal, redirect: 'error' })
  const text = res.body === null ? '' : await readBounded(res.body.getReader(), FORWARD_ANSWER_MAX_BYTES)
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: text }
}

interface Reported { bucket: string, object: string, size: number, mimeType: string, etag: string, ticket: string }

function parseBody (body: string): Reported | undefined {
  let v: unknown
  try {
    v = JSON.parse(body)
  } catch {
    return undefined
  }
  if (v === null || typeof v !== 'object') return undefined
  const b = v as Record<string, unknown>
  const size = typeof b.size === 'string' && /^\d{1,16}$/.test(b.size) ? Number(b.size) : b.size
  if (typeof b.bucket !== 'string' || typeof b.object !== 'string' || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 ||
    typeof b.mimeType !== 'string' || typeof b.etag !== 'string' || typeof b.ticket !== 'string') return undefined
  return { bucket: b.bucket, object: b.object, size, mimeType: b.mimeType, etag: b.etag, ticket: b.ticket }
}

export function createCallbackHandler (deps: CallbackDeps): CallbackHandler {
  const { secrets, verifier, once, now } = deps
  const forward = deps.forward ?? fetchForward
  const byName = new Map(deps.grants.map((g) => [g.name, g]))
  const refuse = (reason: string, err: Error): never => {
    deps.onRefused?.(reason)
    throw err
  }

  return {
    async handle (req) {
      const verdict = await verifier.verify(req)
      if (verdict === 'key-unavailable') refuse(verdict, new KeysUnavailable())
      if (verdict !== 'ok') refuse(verdict, new CallbackNotVerified())
      const reported = parseBody(req.body) ?? refuse('malformed-body', new BadRequest('the callback body is not what this service asked OSS to send'))
      const claims = readTicket(reported.ticket, (g) => secrets.get(g), now()) ?? refuse('bad-ticket', new CallbackNotVerified())
      const grant = byName.get(claims.g)
      const callback = grant?.signing?.callback
      if (grant === undefined || callback === undefined || reported.bucket !== grant.bucket || !ticketCovers(claims, reported.object)) {
        refuse('ticket-mismatch', new CallbackNotVerified())
      }
      const g = grant as GrantConfig
      const cb = callback as NonNullable<typeof callback>
      // One event per ticket and object: the same callback again (a replay, or OSS
      // retrying) is refused here and never forwarded twice.
      const seen = createHash('sha256').update(`${reported.ticket}\n${reported.object}`, 'utf8').digest('base64url')
      const first = await once.claim(`cb:${seen}`, Math.max(1000, claims.e * 1000 - now()))
      if (!first) refuse('replayed', new CallbackReplayed())

      const event: CompletedUpload = {
        type: 'upload.completed',
        grant: g.name,
        caller: claims.c,
        bucket: reported.bucket,
        key: reported.object,
        size: reported.size,
        contentType: reported.mimeType,
        etag: reported.etag.replace(/^"|"$/g, ''),
        at: new Date(now()).toISOString()
      }
      const body = JSON.stringify(event)
      const secret = secrets.get(g.name) as Buffer
      let answer: Record<string, unknown> = { ok: true, key: event.key }
      let delivered = false
      try {
        const res = await forward(cb.forwardUrl, body, {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: forwardSignature(secret, Math.floor(now() / 1000), body)
        }, AbortSignal.timeout(FORWARD_TIMEOUT_MS))
        if (res.status >= 200 && res.status < 300) {
          delivered = true
          if (/^application\/(?:[\w.+-]+\+)?json\b/i.test(res.contentType)) {
            try {
              const parsed: unknown = JSON.parse(res.body)
              if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) answer = parsed as Record<string, unknown>
            } catch {}
          }
        }
      } catch {}
      if (!delivered) answer = { ok: false, key: event.key, error: 'the upload landed, but the event could not be delivered' }
      return { answer, event, delivered }
    }
  }
}
