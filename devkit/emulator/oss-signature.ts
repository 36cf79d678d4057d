// OSS V1 request signatures, as OSS checks them: `Authorization: OSS <AccessKeyId>:<sig>`
// where sig = base64(HMAC-SHA1(secret, VERB \n Content-MD5 \n Content-Type \n Date \n
// CanonicalizedOSSHeaders CanonicalizedResource)). Date is x-oss-date when present (a
// browser cannot set Date). Only OSS's own sub-resources enter the canonical resource,
// sorted, as `key` or `key=value` with values decoded; any other query parameter
// (prefix, marker, list-type...) is not signed. Mirrors ali-oss lib/common/signUtils.js.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

/** The query parameters OSS signs (the SDKs' SIGNED_PARAMETERS list). */
export const SIGNED_SUBRESOURCES: ReadonlySet<string> = new Set([
  'acl', 'append', 'asyncFetch', 'bucketInfo', 'callback', 'callback-var', 'cname', 'comp', 'continuation-token',
  'cors', 'delete', 'encryption', 'endTime', 'img', 'inventory', 'inventoryId', 'lifecycle', 'live', 'location',
  'logging', 'objectMeta', 'partNumber', 'policy', 'position', 'qos', 'qosInfo', 'referer', 'regionList',
  'replication', 'replicationLocation', 'replicationProgress', 'requestPayment', 'response-cache-control',
  'response-content-disposition', 'response-content-encoding', 'response-content-language',
  'response-content-type', 'response-expires', 'restore', 'security-token', 'sequential', 'startTime', 'stat',
  'status', 'style', 'styleName', 'symlink', 'tagging', 'transferAcceleration', 'udf', 'udfApplication',
  'udfApplicationLog', 'udfId', 'udfImage', 'udfImageDesc', 'udfName', 'uploadId', 'uploads', 'versionId',
  'versioning', 'versions', 'vod', 'website', 'worm', 'wormExtend', 'wormId', 'x-oss-ac-source-ip',
  'x-oss-process', 'x-oss-request-payer', 'x-oss-traffic-limit'
])

export type HeaderBag = Record<string, string | string[] | undefined>

function header (headers: HeaderBag, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v.join(',') : v
}

/** Parse a query string the way OSS does: `+` is a plus, not a space. Undefined when malformed. */
export function parseQuery (search: string): Map<string, string> | undefined {
  const out = new Map<string, string>()
  if (search === '') return out
  for (const pair of search.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    try {
      const key = decodeURIComponent(eq === -1 ? pair : pair.slice(0, eq))
      const value = eq === -1 ? '' : decodeURIComponent(pair.slice(eq + 1))
      out.set(key, value)
    } catch {
      return undefined
    }
  }
  return out
}

export function canonicalResource (bucket: string, key: string, query: Map<string, string>): string {
  const base = key === '' ? `/${bucket}/` : `/${bucket}/${key}`
  const signed = [...query.keys()].filter((k) => SIGNED_SUBRESOURCES.has(k)).sort()
  if (signed.length === 0) return base
  return base + '?' + signed.map((k) => {
    const v = query.get(k) ?? ''
    return v === '' ? k : `${k}=${v}`
  }).join('&')
}

export function stringToSign (method: string, headers: HeaderBag, resource: string): string {
  const ossHeaders = Object.keys(headers)
    .map((k) => k.toLowerCase())
    .filter((k) => k.startsWith('x-oss-'))
    .sort()
    .map((k) => `${k}:${(header(headers, k) ?? '').trim()}`)
  return [
    method.toUpperCase(),
    header(headers, 'content-md5') ?? '',
    header(headers, 'content-type') ?? '',
    header(headers, 'x-oss-date') ?? header(headers, 'date') ?? '',
    ...ossHeaders,
    resource
  ].join('\n')
}

export function sign (secret: string, canonical: string): string {
  return createHmac('sha1', secret).update(canonical, 'utf8').digest('base64')
}

/** `OSS <id>:<sig>` → its parts, or undefined when the header is not a V1 signature. */
export function parseAuthorization (value: string | undefined): { accessKeyId: string, signature: string } | undefined {
  if (value === undefined) return undefined
  const m = /^OSS ([^:\s]+):(\S+)$/.exec(value)
  if (m === null) return undefined
  return { accessKeyId: m[1] as string, signature: m[2] as string }
}

export function signatureMatches (expected: string, given: string): boolean {
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

// ---- V4 (OSS4-HMAC-SHA256), written from OSS's documentation rather than shared with
// src/alicloud/oss-signing.ts, so that the emulator checks the service's signer instead
// of agreeing with it by construction.

export const V4_ALGORITHM = 'OSS4-HMAC-SHA256'
const V4_CREDENTIAL = /^([^/\s]+)\/(\d{8})\/([a-z0-9-]+)\/oss\/aliyun_v4_request$/
const V4_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/

export interface V4Credential { accessKeyId: string, day: string, region: string }

export function parseV4Credential (value: string | undefined): V4Credential | undefined {
  const m = value === undefined ? null : V4_CREDENTIAL.exec(value)
  return m === null ? undefined : { accessKeyId: m[1] as string, day: m[2] as string, region: m[3] as string }
}

/** `yyyymmddTHHMMSSZ` → epoch ms, or NaN. */
export function parseV4Date (value: string | undefined): number {
  const m = value === undefined ? null : V4_DATE.exec(value)
  if (m === null) return NaN
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number]
  const ms = Date.UTC(y, mo - 1, d, h, mi, s)
  return new Date(ms).getUTCDate() === d ? ms : NaN
}

export function v4SigningKey (secret: string, day: string, region: string): Buffer {
  let key = createHmac('sha256', 'aliyun_v4' + secret).update(day).digest()
  for (const part of [region, 'oss', 'aliyun_v4_request']) key = createHmac('sha256', key).update(part).digest()
  return key
}

export function v4Signature (secret: string, day: string, region: string, stringToSign: string): string {
  return createHmac('sha256', v4SigningKey(secret, day, region)).update(stringToSign).digest('hex')
}

const rfc3986 = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())

/**
 * The string to sign of a query-signed request: the canonical request (verb, `/bucket/key`,
 * every query parameter but the signature, Content-Type / Content-MD5 / x-oss-* headers
 * present plus the listed additional ones, that list, the payload hash) hashed under
 * the algorithm, the date and the scope.
 */
export function v4StringToSign (method: string, bucket: string, key: string, query: Map<string, string>, headers: HeaderBag, date: string, region: string): string {
  const params = [...query].filter(([k]) => k !== 'x-oss-signature').map(([k, v]) => [rfc3986(k), rfc3986(v)]).sort((a, b) => (a[0] as string) < (b[0] as string) ? -1 : 1)
  const additional = (query.get('x-oss-additional-headers') ?? '').split(';').filter((h) => h !== '').map((h) => h.toLowerCase())
  const names = Object.keys(headers).map((k) => k.toLowerCase())
    .filter((k) => k === 'content-type' || k === 'content-md5' || k.startsWith('x-oss-') || additional.includes(k))
  const canonical = [
    method.toUpperCase(),
    rfc3986(`/${bucket}/${key}`).replace(/%2F/g, '/'),
    params.map(([k, v]) => v === '' ? k : `${k}=${v}`).join('&'),
    [...new Set(names)].sort().map((k) => `${k}:${(header(headers, k) ?? '').trim()}\n`).join(''),
    additional.join(';'),
    header(headers, 'x-oss-content-sha256') ?? 'UNSIGNED-PAYLOAD'
  ].join('\n')
  return [V4_ALGORITHM, date, `${date.slice(0, 8)}/${region}/oss/aliyun_v4_request`, createHash('sha256').update(canonical).digest('hex')].join('\n')
}
