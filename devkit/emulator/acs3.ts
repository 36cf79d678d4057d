// Server-side verification of ACS3-HMAC-SHA256, the V3 signature @alicloud/openapi-core
// puts on every call (utils.js getAuthorization). The canonical request is rebuilt from
// what arrived on the wire, never from anything the client claims about itself:
//
//   METHOD \n canonical URI \n canonical query \n canonical headers \n signed headers \n sha256(body)
//
// signed with HMAC-SHA256 under the secret of the AccessKey id named in Credential, and
// compared in constant time. Date window and nonce replay checks live here too, so the
// emulator refuses a replayed or stale request the way the real gateway does.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

export const ACS3_ALGORITHM = 'ACS3-HMAC-SHA256'
/** Largest allowed difference between x-acs-date and the server clock. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000

/** Headers every request must sign; any other x-acs-* header present must be signed too. */
const REQUIRED_SIGNED = ['host', 'x-acs-action', 'x-acs-content-sha256', 'x-acs-date', 'x-acs-signature-nonce', 'x-acs-version']

const AUTHORIZATION = /^ACS3-HMAC-SHA256 Credential=([^\s,;=]+),SignedHeaders=([a-z0-9;-]+),Signature=([0-9a-f]{64})$/
const ACS_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/

export interface Acs3Authorization {
  accessKeyId: string
  signedHeaders: string[]
  signature: string
}

export interface Acs3Refusal {
  ok: false
  status: number
  code: string
  message: string
}

export interface Acs3Accepted {
  ok: true
  accessKeyId: string
  /** Decoded query parameters; a key appears at most once. */
  params: Map<string, string>
}

export type Acs3Verdict = Acs3Accepted | Acs3Refusal

export interface Acs3Request {
  method: string
  /** The request target as received: path and raw query, e.g. req.url. */
  url: string
  /** Received headers, one array per lower-case name (req.headersDistinct). */
  headers: Record<string, string[] | undefined>
  body: Buffer
}

export interface Acs3VerifyOptions {
  secretFor: (accessKeyId: string) => string | undefined
  nowMs: number
  nonces: NonceStore
}

function refuse (status: number, code: string, message: string): Acs3Refusal {
  return { ok: false, status, code, message }
}

export function sha256Hex (data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** The SDK's percent-encoding (encodeURIComponent plus ! ' ( ) *). */
export function acs3Encode (value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
}

export function parseAuthorization (value: string): Acs3Authorization | undefined {
  const m = AUTHORIZATION.exec(value)
  if (m === null) return undefined
  const [, accessKeyId = '', signed = '', signature = ''] = m
  return { accessKeyId, signedHeaders: signed.split(';'), signature }
}

/**
 * Decodes a raw query string. Undefined when it is not well-formed percent-encoding or
 * names a parameter twice (the SDK never does; a duplicate is a tampering attempt).
 */
export function parseQuery (raw: string): Map<string, string> | undefined {
  const params = new Map<string, string>()
  for (const part of raw.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const rawKey = eq === -1 ? part : part.slice(0, eq)
    const rawValue = eq === -1 ? '' : part.slice(eq + 1)
    let key: string
    let value: string
    try {
      key = decodeURIComponent(rawKey.replace(/\+/g, ' '))
      value = decodeURIComponent(rawValue.replace(/\+/g, ' '))
    } catch {
      return undefined
    }
    if (key === '' || params.has(key)) return undefined
    params.set(key, value)
  }
  return params
}

export function canonicalQueryString (params: Map<string, string>): string {
  return [...params.keys()].sort().map((k) => `${acs3Encode(k)}=${acs3Encode(params.get(k) ?? '')}`).join('&')
}

export function canonicalUri (rawPath: string): string {
  return rawPath.replace(/\+/g, '%20').replace(/\*/g, '%2A').replace(/%7E/g, '~')
}

/** name:value lines for the signed headers; several values of one name are sorted and joined with ",". */
export function canonicalHeaders (headers: Record<string, string[] | undefined>, signed: string[]): string {
  return signed.map((name) => {
    const values = (headers[name] ?? []).map((v) => v.trim()).sort()
    return `${name}:${values.join(',')}\n`
  }).join('')
}

export interface CanonicalRequestParts {
  method: string
  canonicalUri: string
  canonicalQuery: string
  canonicalHeaders: string
  signedHeaders: string[]
  hashedPayload: string
}

export function canonicalRequest (p: CanonicalRequestParts): string {
  return [p.method, p.canonicalUri, p.canonicalQuery, p.canonicalHeaders, p.signedHeaders.join(';'), p.hashedPayload].join('\n')
}

/** Hex HMAC-SHA256 over "ACS3-HMAC-SHA256\n" + sha256(canonical request). */
export function acs3Signature (secret: string, canonical: string): string {
  const stringToSign = `${ACS3_ALGORITHM}\n${sha256Hex(canonical)}`
  return createHmac('sha256', secret).update(stringToSign).digest('hex')
}

/** Parses x-acs-date (YYYY-MM-DDTHH:MM:SSZ); undefined when malformed. */
export function parseAcsDate (value: string): number | undefined {
  if (!ACS_DATE.test(value)) return undefined
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? undefined : ms
}

/**
 * Nonces seen within the clock-skew window. A nonce older than twice the window cannot
 * come back (its date would be refused), so it is forgotten.
 */
export class NonceStore {
  readonly #seen = new Map<string, number>()

  /** True when the nonce is new (and records it), false when it is a replay. */
  claim (nonce: string, nowMs: number): boolean {
    if (this.#seen.size > 1000) this.#prune(nowMs)
    if (this.#seen.has(nonce)) return false
    this.#seen.set(nonce, nowMs)
    return true
  }

  clear (): void {
    this.#seen.clear()
  }

  #prune (nowMs: number): void {
    for (const [nonce, at] of this.#seen) {
      if (Math.abs(nowMs - at) > 2 * MAX_CLOCK_SKEW_MS) this.#seen.delete(nonce)
    }
  }
}

function single (headers: Acs3Request['headers'], name: string): string | undefined {
  const v = headers[name]
  return v !== undefined && v.length === 1 ? v[0] : undefined
}

export function verifyAcs3 (req: Acs3Request, opts: Acs3VerifyOptions): Acs3Verdict {
  const authorization = single(req.headers, 'authorization')
  if (authorization === undefined) return refuse(400, 'IncompleteSignature', 'The request must carry exactly one Authorization header.')
  const auth = parseAuthorization(authorization)
  if (auth === undefined) return refuse(400, 'IncompleteSignature', `The Authorization header is not a well-formed ${ACS3_ALGORITHM} authorization.`)

  const secret = opts.secretFor(auth.accessKeyId)
  if (secret === undefined) return refuse(404, 'InvalidAccessKeyId.NotFound', 'Specified access key is not found.')

  const signed = auth.signedHeaders
  const sorted = [...new Set(signed)].sort()
  if (sorted.length !== signed.length || sorted.some((h, i) => h !== signed[i])) {
    return refuse(400, 'IncompleteSignature', 'SignedHeaders must be lower-case, sorted and unique.')
  }
  for (const name of REQUIRED_SIGNED) {
    if (!signed.includes(name)) return refuse(400, 'IncompleteSignature', `SignedHeaders must include ${name}.`)
  }
  for (const name of Object.keys(req.headers)) {
    if ((name.startsWith('x-acs-') || name === 'content-type') && !signed.includes(name)) {
      return refuse(400, 'IncompleteSignature', `Header ${name} is present but not signed.`)
    }
  }
  for (const name of signed) {
    if (req.headers[name] === undefined) return refuse(400, 'IncompleteSignature', `Signed header ${name} is missing.`)
  }
  for (const name of REQUIRED_SIGNED) {
    if (single(req.headers, name) === undefined) return refuse(400, 'IncompleteSignature', `Header ${name} must appear exactly once.`)
  }

  const q = req.url.indexOf('?')
  const rawPath = q === -1 ? req.url : req.url.slice(0, q)
  const params = parseQuery(q === -1 ? '' : req.url.slice(q + 1))
  if (params === undefined) return refuse(400, 'InvalidParameter', 'The query string is malformed or repeats a parameter.')

  const hashedPayload = sha256Hex(req.body)
  if (single(req.headers, 'x-acs-content-sha256') !== hashedPayload) {
    return refuse(400, 'SignatureDoesNotMatch', 'x-acs-content-sha256 does not match the request body.')
  }

  const canonical = canonicalRequest({
    method: req.method,
    canonicalUri: canonicalUri(rawPath),
    canonicalQuery: canonicalQueryString(params),
    canonicalHeaders: canonicalHeaders(req.headers, signed),
    signedHeaders: signed,
    hashedPayload
  })
  const expected = Buffer.from(acs3Signature(secret, canonical), 'hex')
  const given = Buffer.from(auth.signature, 'hex')
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return refuse(400, 'SignatureDoesNotMatch', 'The request signature does not match the signature the server calculated.')
  }

  const date = parseAcsDate(single(req.headers, 'x-acs-date') ?? '')
  if (date === undefined) return refuse(400, 'InvalidTimeStamp.Format', 'x-acs-date must be YYYY-MM-DDTHH:MM:SSZ.')
  if (Math.abs(opts.nowMs - date) > MAX_CLOCK_SKEW_MS) {
    return refuse(400, 'InvalidTimeStamp.Expired', 'x-acs-date is more than 15 minutes away from the server time.')
  }
  const nonce = single(req.headers, 'x-acs-signature-nonce') ?? ''
  if (nonce === '' || nonce.length > 128) return refuse(400, 'IncompleteSignature', 'x-acs-signature-nonce must be 1-128 characters.')
  // Claimed only once the signature is proven, so nobody can burn someone else's nonce.
  if (!opts.nonces.claim(nonce, opts.nowMs)) return refuse(400, 'SignatureNonceUsed', 'Specified signature nonce was used already.')

  return { ok: true, accessKeyId: auth.accessKeyId, params }
}
