// OSS V4 signing for uploads that never see a credential: PostObject form policies and
// query-string presigned URLs (OSS4-HMAC-SHA256). Pure: the clock and the credential
// come in as arguments. The caller's narrowing (key, size, type, expiry) goes into what
// is signed, so OSS enforces it, not the client.
//
// Signing key: HMAC-SHA256 chain "aliyun_v4" + secret -> yyyymmdd -> region -> "oss" ->
// "aliyun_v4_request". A form's signature is the hex HMAC of the base64 policy; a URL's
// is the hex HMAC of "OSS4-HMAC-SHA256\n<x-oss-date>\n<scope>\n<hex sha256 of the
// canonical request>". Matches ali-oss's signPostObjectPolicyV4 and signatureUrlV4
// (test/alicloud/oss-signing.test.ts compares the two).
//
// Keys arrive checked (grants/object-keys.ts) and are signed as they are, never escaped.
//
// Signing as cheap as a hit (issue 25): the signing key changes only with the secret,
// the day and the region, so it is derived once per (credential, day, region) and kept
// with the credential object (a WeakMap: it goes when the cached credential goes); the
// form's policy is written from a template kept the same way, so the parts that do not
// change between callers (bucket, credential scope, security token) are serialised once
// per credential and day, not per request, and the policy's whole fixed beginning is
// base64-encoded once per second (FormPrefix). Both are byte-equal to the plain
// derivation and JSON.stringify (test/alicloud/oss-signing.test.ts).
import { createHash, createHmac, hash } from 'node:crypto'
import type { KeyTarget } from '../grants/object-keys.js'

export const SIGNATURE_VERSION = 'OSS4-HMAC-SHA256'
/** The HTTP status a successful form post answers with. */
export const SUCCESS_STATUS = '201'

export interface SigningCredentials {
  accessKeyId: string
  accessKeySecret: string
  securityToken: string
}

/** `yyyymmddTHHMMSSZ` (UTC), V4's x-oss-date. */
export function v4Date (ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')
}

export function credentialScope (date: string, region: string): string {
  return `${date.slice(0, 8)}/${region}/oss/aliyun_v4_request`
}

export function signingKey (secret: string, date: string, region: string): Buffer {
  const d = createHmac('sha256', `aliyun_v4${secret}`).update(date.slice(0, 8)).digest()
  const r = createHmac('sha256', d).update(region).digest()
  const s = createHmac('sha256', r).update('oss').digest()
  return createHmac('sha256', s).update('aliyun_v4_request').digest()
}

export function signV4 (secret: string, date: string, region: string, stringToSign: string): string {
  return createHmac('sha256', signingKey(secret, date, region)).update(stringToSign, 'utf8').digest('hex')
}

/** What a credential keeps for one (day, region, bucket): its signing key and the fixed parts of what it signs. */
interface Derived {
  /** The secret it was derived from: a credential object changed in place is derived afresh. */
  secret: string
  token: string
  /** The signing key padded to SHA-256's 64-byte block and XOR-ed with HMAC's inner and outer pads (RFC 2104). */
  pads: HmacPads
  /** `<AccessKeyId>/<scope>` (x-oss-credential). */
  credential: string
  /** The form policy's JSON between the x-oss-date value and the key condition. */
  policyMiddle: string
  /** The form policy's JSON between the expiration and the x-oss-date value. */
  policyHead: string
  /** The fields' JSON from after the policy's value to the x-oss-date value. */
  fieldsMiddle: string
  /** The fields' JSON from after the x-oss-date value to the end of the fixed fields. */
  fieldsTail: string
  /** `<scope>` of the string to sign. */
  scope: string
  /** `/<bucket>/`, URI-encoded as the canonical request's path begins. */
  canonicalBucket: string
  /** A presigned URL's query (canonical order) up to the x-oss-date value. */
  queryHead: string
  /** The query from the security token to its end, signature excluded. */
  queryTail: string
  /** The form policy's fixed beginning for the last (second, expiry) signed, base64-encoded once. */
  formPrefix?: FormPrefix
}

/**
 * A form policy's JSON up to the key condition is the same for every form a credential
 * signs in one second with one expiry: expiration, bucket, credential, date and the
 * security token, about 1.2 KB of its 1.4 with an STS token of 0.8 KB. Base64 turns
 * each 3 bytes into 4 characters on their own, so the first whole triples of that prefix
 * are encoded once, and kept after the HMAC's inner pad in a buffer of their own; each
 * form encodes only the prefix's last 0 to 2 bytes with its own conditions, writes that
 * after them and hashes the whole block in one call. (Continuing a kept SHA-256 with
 * Hash.copy() hashes less, but under load the Hash object made, fed and digested per
 * form cost about 2.7 µs against 2.3 µs for the one-shot hash of the whole block:
 * profiled, bench --profile --only 7b.)
 */
interface FormPrefix {
  issuedAt: number
  expiresAt: number
  /** The policy's JSON up to the key condition. */
  json: string
  /** Base64 of the prefix's first whole 3-byte groups. */
  encoded: string
  /** The prefix's last 0 to 2 bytes, encoded with what follows them. */
  rest: Buffer
  /** The HMAC's inner pad, then `encoded`; a form's own base64 is written after them. */
  block: Buffer
}

// A credential asks for a handful of (day, region, bucket) at a time: a grant's one
// region and bucket, today and at midnight tomorrow. The bound keeps a long-lived
// credential from collecting days.
const DERIVED_PER_CREDENTIAL = 8
const derivedKeys = new WeakMap<SigningCredentials, Map<string, Derived>>()

// The last derivation asked for, with what it was asked for: a replica signs for one or
// two grants, so most requests ask for the one before them (`date` is v4DateOf's string,
// the same object for a whole second).
let last: { c: SigningCredentials, date: string, region: string, bucket: string, derived: Derived } | undefined

/** The signing key and policy parts of `c` for the day of `date`, derived on first use. */
function derivedFor (c: SigningCredentials, date: string, region: string, bucket: string): Derived {
  if (last !== undefined && last.c === c && last.date === date && last.region === region && last.bucket === bucket &&
    last.derived.secret === c.accessKeySecret && last.derived.token === c.securityToken) return last.derived
  const derived = derivedAfresh(c, date, region, bucket)
  last = { c, date, region, bucket, derived }
  return derived
}

function derivedAfresh (c: SigningCredentials, date: string, region: string, bucket: string): Derived {
  const day = date.slice(0, 8)
  const id = `${day}\n${region}\n${bucket}`
  let perCredential = derivedKeys.get(c)
  const known = perCredential?.get(id)
  if (known !== undefined && known.secret === c.accessKeySecret && known.token === c.securityToken) return known
  const scope = credentialScope(date, region)
  const credential = `${c.accessKeyId}/${scope}`
  const derived: Derived = {
    scope,
    queryHead: `x-oss-credential=${uriEncode(credential)}&x-oss-date=`,
    queryTail: `&x-oss-security-token=${uriEncode(c.securityToken)}&x-oss-signature-version=${SIGNATURE_VERSION}`,
    secret: c.accessKeySecret,
    token: c.securityToken,
    pads: hmacPads(signingKey(c.accessKeySecret, date, region)),
    canonicalBucket: uriEncode(`/${bucket}/`).replace(/%2F/g, '/'),
    credential,
    policyHead: `","conditions":[{"bucket":${JSON.stringify(bucket)}},{"x-oss-signature-version":"${SIGNATURE_VERSION}"},{"x-oss-credential":${JSON.stringify(credential)}},{"x-oss-date":`,
    policyMiddle: `},{"x-oss-security-token":${JSON.stringify(c.securityToken)}},`,
    fieldsMiddle: `,"x-oss-signature-version":"${SIGNATURE_VERSION}","x-oss-credential":${JSON.stringify(credential)},"x-oss-date":"`,
    fieldsTail: `","x-oss-security-token":${JSON.stringify(c.securityToken)},"success_action_status":"${SUCCESS_STATUS}"`
  }
  if (perCredential === undefined) derivedKeys.set(c, perCredential = new Map())
  if (perCredential.size >= DERIVED_PER_CREDENTIAL && !perCredential.has(id)) perCredential.delete(perCredential.keys().next().value as string)
  perCredential.set(id, derived)
  return derived
}

export interface HmacPads { inner: Buffer, outer: Buffer }

/** A key of at most 64 bytes (a V4 signing key is 32) as HMAC-SHA256's two padded key blocks. */
export function hmacPads (key: Buffer): HmacPads {
  if (key.length > 64) throw new RangeError('an HMAC-SHA256 key of more than 64 bytes is hashed first; not needed here')
  const inner = Buffer.alloc(64, 0x36)
  const outer = Buffer.alloc(64, 0x5c)
  for (let i = 0; i < key.length; i++) {
    inner[i] = (inner[i] as number) ^ (key[i] as number)
    outer[i] = (outer[i] as number) ^ (key[i] as number)
  }
  return { inner, outer }
}

// HMAC-SHA256 as RFC 2104 defines it, SHA-256(outer pad || SHA-256(inner pad || data)),
// from two one-shot hashes over blocks kept per key. The same bytes as createHmac
// (test/alicloud/oss-signing.test.ts), without the Hmac object, its key import and its
// digest lookup on every call: about 3 µs of a signed form or URL under load (issue 25). The
// scratch buffers are this module's own and only used synchronously.
let scratch = Buffer.allocUnsafeSlow(8192)
const outerBlock = Buffer.allocUnsafeSlow(64 + 32)

/** Hex HMAC-SHA256 of `data` (UTF-8) under the key `pads` were made from. */
export function hmacHex (pads: HmacPads, data: string): string {
  // A UTF-16 code unit is at most three UTF-8 bytes, so the write is never cut short.
  if (scratch.length < 64 + 3 * data.length) scratch = Buffer.allocUnsafeSlow(64 + 3 * data.length)
  pads.inner.copy(scratch, 0)
  const n = scratch.write(data, 64, 'utf8')
  // The inner digest comes back as a 'binary' (latin1) string, one byte per character: a 'buffer'
  // answer would allocate an ArrayBuffer per call, which costs more than the hash.
  const inner = hash('sha256', scratch.subarray(0, 64 + n), 'binary')
  pads.outer.copy(outerBlock, 0)
  outerBlock.write(inner, 64, 'latin1')
  return hash('sha256', outerBlock, 'hex')
}

/** `d`'s form policy prefix for this second and expiry, made on the first form of the second. */
function formPrefixOf (d: Derived, issuedAt: number, expiresAt: number, date: string): FormPrefix {
  const known = d.formPrefix
  if (known !== undefined && known.issuedAt === issuedAt && known.expiresAt === expiresAt) return known
  const json = `{"expiration":"${isoOf(expiresAt)}${d.policyHead}"${date}"${d.policyMiddle}`
  const bytes = Buffer.from(json, 'utf8')
  const whole = bytes.length - bytes.length % 3
  const encoded = bytes.toString('base64', 0, whole)
  // Room for a form's own part too: the key condition and what follows are a few hundred bytes.
  const block = Buffer.allocUnsafeSlow(64 + encoded.length + 1024)
  d.pads.inner.copy(block, 0)
  block.write(encoded, 64, 'latin1')
  const prefix: FormPrefix = { issuedAt, expiresAt, json, encoded, rest: Buffer.from(bytes.subarray(whole)), block }
  d.formPrefix = prefix
  return prefix
}

/**
 * The base64 policy and its hex signature, from the prefix's kept parts: base64 of the
 * prefix's last bytes and `after` (the policy's JSON from the key condition), and
 * HMAC-SHA256 as hmacHex computes it, over the kept inner pad and encoded prefix.
 */
function signPolicy (d: Derived, prefix: FormPrefix, after: string): { encoded: string, signature: string } {
  if (scratch.length < 2 + 3 * after.length) scratch = Buffer.allocUnsafeSlow(2 + 3 * after.length)
  prefix.rest.copy(scratch, 0)
  const n = prefix.rest.length + scratch.write(after, prefix.rest.length, 'utf8')
  const tail = scratch.toString('base64', 0, n)
  const start = 64 + prefix.encoded.length
  if (prefix.block.length < start + tail.length) {
    const grown = Buffer.allocUnsafeSlow(start + tail.length + 1024)
    prefix.block.copy(grown, 0, 0, start)
    prefix.block = grown
  }
  prefix.block.write(tail, start, 'latin1')
  const inner = hash('sha256', prefix.block.subarray(0, start + tail.length), 'binary')
  d.pads.outer.copy(outerBlock, 0)
  outerBlock.write(inner, 64, 'latin1')
  return { encoded: prefix.encoded + tail, signature: hash('sha256', outerBlock, 'hex') }
}

// The date strings of the last second signed: every request within a second shares them.
let lastSecond = Number.NaN
let lastDate = ''
function v4DateOf (issuedAt: number): string {
  if (issuedAt !== lastSecond) {
    lastDate = v4Date(issuedAt)
    lastSecond = issuedAt
  }
  return lastDate
}
let lastExpiry = Number.NaN
let lastExpiryIso = ''
/** The policy's `expiration` (ISO 8601 with milliseconds) of the last expiry signed. */
function isoOf (expiresAt: number): string {
  if (expiresAt !== lastExpiry) {
    lastExpiryIso = new Date(expiresAt).toISOString()
    lastExpiry = expiresAt
  }
  return lastExpiryIso
}

/** RFC 3986 encoding as OSS V4 canonicalises it (ali-oss's encodeString). */
export function uriEncode (s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

// Unreserved characters and '/': what an object key's path keeps as it is.
const PLAIN_PATH = /^[A-Za-z0-9\-._~/]*$/

/** An object key as the canonical request's (and the URL's) path: URI-encoded, its slashes kept. */
export function uriEncodePath (key: string): string {
  return PLAIN_PATH.test(key) ? key : uriEncode(key).replace(/%2F/g, '/')
}

/** The bucket's URL: virtual-hosted on `*.aliyuncs.com`, path-style (`<endpoint>/<bucket>`) elsewhere. */
export function bucketUrl (endpoint: string, bucket: string): string {
  const u = new URL(endpoint)
  if (u.hostname.endsWith('.aliyuncs.com')) return `${u.protocol}//${bucket}.${u.host}`
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}/${bucket}`
}

export interface FormInput {
  credentials: SigningCredentials
  bucket: string
  region: string
  target: KeyTarget
  maxBytes: number
  /** A fixed Content-Type (posted as a field); or, without it, an allow-list. */
  contentType?: string | undefined
  contentTypes?: readonly string[] | undefined
  /** Pin `x-oss-forbid-overwrite: true`: the form can create its key once, never replace it. */
  forbidOverwrite?: boolean | undefined
  /** OSS's base64 `callback` field, pinned with `eq` so the client can neither change nor drop it. */
  callback?: string | undefined
  now: number
  expiresSeconds: number
}

/**
 * The form fields that set the Content-Type OSS stores: `x-oss-content-type`, then the
 * `Content-Type` field (the file part's own type comes after both, so pinning both holds
 * it). A type restriction pins every one of them, or it does not hold.
 */
export const CONTENT_TYPE_FIELDS = ['Content-Type', 'x-oss-content-type'] as const

export interface SignedForm {
  /**
   * The form fields in the order a browser posts them, before the file: the fixed ones
   * (the signature last of them), then what this form pins. The order the response
   * schema's serialiser has always written them in (required fields first).
   */
  fields: Record<string, string>
  /** `fields` as JSON, keys in the same order: `JSON.stringify(fields)`, written from the credential's kept parts. */
  fieldsJson: string
  /** The policy document (what `fields.policy` encodes), as JSON. */
  policyJson: string
  expiration: Date
}

/**
 * A PostObject form for `input.target`. The policy and the fields' JSON are written from
 * the credential's kept parts (issue 25): the date, the expiration, the base64 policy
 * and the hex signature need no escaping, every other value is serialised; both are
 * byte-equal to JSON.stringify of the same document (test/alicloud/oss-signing.test.ts).
 */
export function signPostForm (input: FormInput): SignedForm {
  const { credentials: c, region, target } = input
  const issuedAt = Math.floor(input.now / 1000) * 1000
  const date = v4DateOf(issuedAt)
  const expiresAt = issuedAt + input.expiresSeconds * 1000
  const d = derivedFor(c, date, region, input.bucket)
  const keyJson = JSON.stringify(target.key)
  // JSON.stringify of ["eq","$key",key] or ["starts-with","$key",prefix].
  const keyCondition = target.kind === 'exact' ? `["eq","$key",${keyJson}]` : `["starts-with","$key",${JSON.stringify(target.prefix)}]`
  // After the fixed conditions: what this form pins beyond them, in this order.
  let extra = ''
  if (input.forbidOverwrite === true) extra += ',["eq","$x-oss-forbid-overwrite","true"]'
  if (input.callback !== undefined) extra += `,${JSON.stringify(['eq', '$callback', input.callback])}`
  if (input.contentType !== undefined) {
    for (const field of CONTENT_TYPE_FIELDS) extra += `,${JSON.stringify(['eq', '$' + field.toLowerCase(), input.contentType])}`
  } else if (input.contentTypes !== undefined) {
    for (const field of CONTENT_TYPE_FIELDS) extra += `,${JSON.stringify(['in', '$' + field.toLowerCase(), [...input.contentTypes]])}`
  }
  // The conditions, in order: bucket, signature version, credential, date, security
  // token (the prefix, the same for the whole second), the key, the size range, the
  // success status, then the extras.
  const prefix = formPrefixOf(d, issuedAt, expiresAt, date)
  const after = `${keyCondition},["content-length-range",0,${JSON.stringify(input.maxBytes)}],["eq","$success_action_status","${SUCCESS_STATUS}"]${extra}]}`
  const policyJson = prefix.json + after
  const { encoded, signature } = signPolicy(d, prefix, after)
  const fields: Record<string, string> = {
    key: target.key,
    policy: encoded,
    'x-oss-signature-version': SIGNATURE_VERSION,
    'x-oss-credential': d.credential,
    'x-oss-date': date,
    'x-oss-security-token': c.securityToken,
    success_action_status: SUCCESS_STATUS,
    'x-oss-signature': signature
  }
  let fieldsExtra = ''
  if (input.contentType !== undefined) {
    const type = JSON.stringify(input.contentType)
    for (const field of CONTENT_TYPE_FIELDS) {
      fields[field] = input.contentType
      fieldsExtra += `,"${field}":${type}`
    }
  }
  if (input.forbidOverwrite === true) {
    fields['x-oss-forbid-overwrite'] = 'true'
    fieldsExtra += ',"x-oss-forbid-overwrite":"true"'
  }
  if (input.callback !== undefined) {
    fields.callback = input.callback
    fieldsExtra += `,"callback":${JSON.stringify(input.callback)}`
  }
  const fieldsJson = `{"key":${keyJson},"policy":"${encoded}"${d.fieldsMiddle}${date}${d.fieldsTail},"x-oss-signature":"${signature}"${fieldsExtra}}`
  return { fields, fieldsJson, policyJson, expiration: new Date(expiresAt) }
}

export interface UrlInput {
  credentials: SigningCredentials
  bucket: string
  region: string
  endpoint: string
  /** `bucketUrl(endpoint, bucket)`, when the caller keeps it (sign.ts does, per grant). */
  bucketUrl?: string | undefined
  key: string
  method: 'GET' | 'PUT'
  /** Signed, so the client must send exactly this Content-Type (PUT only). */
  contentType?: string | undefined
  /** Sign `x-oss-forbid-overwrite: true` (PUT only): the URL creates its key once, never replaces it. */
  forbidOverwrite?: boolean | undefined
  now: number
  expiresSeconds: number
}

export interface PresignedUrl {
  url: string
  /** Exactly the headers the client must send. */
  headers: Record<string, string>
  expiration: Date
}

/** The canonical request of a V4 query-signed call, as OSS rebuilds it. */
export function canonicalRequest (method: string, bucket: string, key: string, query: ReadonlyArray<[string, string]>, headers: Readonly<Record<string, string>>): string {
  const canonicalQuery = query
    .filter(([k]) => k !== 'x-oss-signature')
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
    .map(([k, v]) => v === '' ? k : `${k}=${v}`)
    .join('&')
  const names = Object.keys(headers).map((h) => h.toLowerCase()).sort()
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))
  return [
    method.toUpperCase(),
    uriEncode(`/${bucket}/${key}`).replace(/%2F/g, '/'),
    canonicalQuery,
    names.map((h) => `${h}:${(lower[h] ?? '').trim()}\n`).join(''),
    '',
    'UNSIGNED-PAYLOAD'
  ].join('\n')
}

export function stringToSignV4 (date: string, region: string, canonical: string): string {
  return [SIGNATURE_VERSION, date, credentialScope(date, region), createHash('sha256').update(canonical, 'utf8').digest('hex')].join('\n')
}

/**
 * The canonical request and the string to sign are what `canonicalRequest` and
 * `stringToSignV4` make of this query and these headers, written from the credential's
 * kept parts (issue 25): the five query names are already in canonical order, the
 * credential and the token are encoded once per credential and day, the date and the
 * expiry need no encoding, and the signature is appended last (test/alicloud/oss-signing.test.ts
 * holds both equal to ali-oss's signatureUrlV4 and to the plain derivation).
 */
export function presignUrl (input: UrlInput): PresignedUrl {
  const { credentials: c, region } = input
  const issuedAt = Math.floor(input.now / 1000) * 1000
  const date = v4DateOf(issuedAt)
  const d = derivedFor(c, date, region, input.bucket)
  const headers: Record<string, string> = input.contentType !== undefined ? { 'Content-Type': input.contentType } : {}
  // The canonical headers: lower-case names in order (content-type < x-oss-forbid-overwrite), values trimmed.
  let canonicalHeaders = input.contentType !== undefined ? `content-type:${input.contentType.trim()}\n` : ''
  if (input.forbidOverwrite === true) {
    headers['x-oss-forbid-overwrite'] = 'true'
    canonicalHeaders += 'x-oss-forbid-overwrite:true\n'
  }
  const query = `${d.queryHead}${date}&x-oss-expires=${Math.trunc(input.expiresSeconds)}${d.queryTail}`
  const path = uriEncodePath(input.key)
  const canonical = `${input.method}\n${d.canonicalBucket}${path}\n${query}\n${canonicalHeaders}\n\nUNSIGNED-PAYLOAD`
  const digest = hash('sha256', canonical, 'hex')
  const signature = hmacHex(d.pads, `${SIGNATURE_VERSION}\n${date}\n${d.scope}\n${digest}`)
  return { url: `${input.bucketUrl ?? bucketUrl(input.endpoint, input.bucket)}/${path}?${query}&x-oss-signature=${signature}`, headers, expiration: new Date(issuedAt + input.expiresSeconds * 1000) }
}
