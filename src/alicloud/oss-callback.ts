// OSS's upload-callback signature, checked as OSS documents it: RSA with MD5 over
// `urldecode(path) + query + "\n" + body`, the signature base64 in `authorization`, the
// public key's URL base64 in `x-oss-pub-key-url`. The URL comes from the request, so it
// is fetched only when it starts with an allowed prefix (uploads.callbackKeyUrlPrefixes:
// an attacker must not choose the key that verifies its own forgery, nor make the
// service fetch an address of its choosing), with a deadline and a size limit, and
// each key is cached (a bounded map; OSS rotates rarely).
import { createPublicKey, createVerify, type KeyObject } from 'node:crypto'

/** A PEM public key is well under this. */
export const PUBLIC_KEY_MAX_BYTES = 8192
export const PUBLIC_KEY_FETCH_MS = 3000
const CACHE_MAX = 16

export type CallbackVerdict = 'ok' | 'malformed' | 'key-url-not-allowed' | 'key-unavailable' | 'bad-signature'

export interface CallbackRequest {
  /** The request target as received: path and query, undecoded. */
  url: string
  authorization: string | undefined
  pubKeyUrl: string | undefined
  body: string
}

export interface CallbackVerifier { verify (req: CallbackRequest): Promise<CallbackVerdict> }

export type FetchKey = (url: string, signal: AbortSignal) => Promise<string>

/** A response body as text, read only up to `max` bytes (the stream is cancelled past it). */
export async function readBounded (reader: ReadableStreamDefaultReader<Uint8Array>, max: number): Promise<string> {
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > max) {
      await reader.cancel()
      throw new Error('answer too large')
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** fetch with the size limit: the body is read only up to PUBLIC_KEY_MAX_BYTES. */
export const fetchPublicKey: FetchKey = async (url, signal) => {
  const res = await fetch(url, { signal, redirect: 'error' })
  if (!res.ok || res.body === null) throw new Error(`public key fetch answered ${res.status}`)
  return await readBounded(res.body.getReader(), PUBLIC_KEY_MAX_BYTES)
}

/** The string OSS signs: the path URL-decoded, the raw query with its `?`, a newline, the body. */
export function callbackStringToSign (url: string, body: string): string {
  const at = url.indexOf('?')
  const path = at === -1 ? url : url.slice(0, at)
  const query = at === -1 ? '' : url.slice(at)
  return `${decodeURIComponent(path)}${query}\n${body}`
}

export function createCallbackVerifier (opts: { allowedPrefixes: readonly string[], fetchKey?: FetchKey }): CallbackVerifier {
  const fetchKey = opts.fetchKey ?? fetchPublicKey
  const keys = new Map<string, Promise<KeyObject>>()

  function keyFor (url: string): Promise<KeyObject> {
    const known = keys.get(url)
    if (known !== undefined) return known
    const loading = fetchKey(url, AbortSignal.timeout(PUBLIC_KEY_FETCH_MS)).then((pem) => createPublicKey(pem))
    // A failed fetch is not remembered: the next callback tries again.
    loading.catch(() => { if (keys.get(url) === loading) keys.delete(url) })
    if (keys.size >= CACHE_MAX) keys.delete(keys.keys().next().value as string)
    keys.set(url, loading)
    return loading
  }

  return {
    async verify (req) {
      if (req.authorization === undefined || req.pubKeyUrl === undefined) return 'malformed'
      const signature = Buffer.from(req.authorization, 'base64')
      if (signature.length < 64 || signature.toString('base64') !== req.authorization.replace(/\s/g, '')) return 'malformed'
      const url = Buffer.from(req.pubKeyUrl, 'base64').toString('utf8')
      // Whole-prefix match on the decoded URL; nothing outside the prefixes is fetched.
      if (!/^https?:\/\/[^\s]+$/.test(url) || !opts.allowedPrefixes.some((p) => url.startsWith(p))) return 'key-url-not-allowed'
      let toSign: string
      try {
        toSign = callbackStringToSign(req.url, req.body)
      } catch {
        return 'malformed'
      }
      let key: KeyObject
      try {
        key = await keyFor(url)
      } catch {
        return 'key-unavailable'
      }
      const ok = createVerify('RSA-MD5').update(toSign, 'utf8').verify(key, signature)
      return ok ? 'ok' : 'bad-signature'
    }
  }
}

/**
 * The callback body OSS sends, as JSON: OSS fills the `${…}` variables (strings quoted,
 * the size a number); the ticket is a literal of base64url and a dot, so it needs no
 * escaping. Signed into the form (pinned with eq), so the client can change none of it.
 */
export function callbackBody (ticket: string): string {
  // eslint-disable-next-line no-template-curly-in-string -- OSS's variables, filled by OSS
  return '{"bucket":${bucket},"object":${object},"size":${size},"mimeType":${mimeType},"etag":${etag},"ticket":"' + ticket + '"}'
}

/** OSS's `callback` form field: base64 of the JSON parameter. */
export function callbackParameter (callbackUrl: string, ticket: string): string {
  return Buffer.from(JSON.stringify({ callbackUrl, callbackBody: callbackBody(ticket), callbackBodyType: 'application/json' }), 'utf8').toString('base64')
}
