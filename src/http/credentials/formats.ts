// Response shapes that existing clients already read, chosen per request with
// `?format=` or an Accept media type:
//   ali-oss          (default) our contract, which plugs into `new OSS({...})` as is
//   oss-app-server   the OSS Android/iOS SDKs' "STS app server" shape
//   credentials-uri  @alicloud/credentials' ALIBABA_CLOUD_CREDENTIALS_URI shape
// Every shape is JSON, so an Accept header that admits neither `application/json` nor
// one of the vendor types is answered 406 rather than with a body the client refused.
import Negotiator from 'negotiator'
import { NotAcceptable, UnknownFormat } from '../../errors.js'

export const FORMATS = ['ali-oss', 'oss-app-server', 'credentials-uri'] as const
export type Format = typeof FORMATS[number]

export const MEDIA_TYPES: Record<string, Format> = {
  'application/vnd.sts-vending.ali-oss+json': 'ali-oss',
  'application/vnd.sts-vending.oss-app-server+json': 'oss-app-server',
  'application/vnd.sts-vending.credentials-uri+json': 'credentials-uri'
}

// With the charset we send, so that `application/json; charset=utf-8` in Accept matches too.
const ANSWERABLE = ['application/json; charset=utf-8', ...Object.keys(MEDIA_TYPES)]

/** The format a request asks for: `?format=` wins, then a vendor Accept type, else the default. */
export function requestedFormat (query: unknown, accept: string | undefined): Format {
  const q = (query as Record<string, unknown> | undefined)?.format
  if (q !== undefined) {
    if (typeof q === 'string' && (FORMATS as readonly string[]).includes(q)) return q as Format
    throw new UnknownFormat()
  }
  if (accept !== undefined) {
    for (const part of accept.split(',')) {
      const type = part.split(';')[0]?.trim().toLowerCase() ?? ''
      const format = MEDIA_TYPES[type]
      if (format !== undefined) return format
    }
  }
  return 'ali-oss'
}

/** Refuse (406) an Accept header that admits no JSON answer; no header, or an empty one, admits any. */
export function assertAcceptable (accept: string | undefined): void {
  if (accept === undefined || accept.trim() === '') return
  if (new Negotiator({ headers: { accept } }).mediaTypes(ANSWERABLE).length === 0) throw new NotAcceptable()
}
