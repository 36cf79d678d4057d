// Response shapes that existing clients already read, chosen per request with
// `?format=` or an Accept media type:
//   ali-oss          (default) our contract, which plugs into `new OSS({...})` as is
//   oss-app-server   the OSS Android/iOS SDKs' "STS app server" shape
//   credentials-uri  @alicloud/credentials' ALIBABA_CLOUD_CREDENTIALS_URI shape
// Each shape has its own schema, and a non-default body is serialised through it, so
// no field beyond the listed ones can leave the service.
import { Type, type TSchema } from '@sinclair/typebox'
import type { ErrorBody } from '../error-handler.js'
import { ErrorCode, UnknownFormat } from '../../errors.js'

export const FORMATS = ['ali-oss', 'oss-app-server', 'credentials-uri'] as const
export type Format = typeof FORMATS[number]

export const MEDIA_TYPES: Record<string, Format> = {
  'application/vnd.sts-vending.ali-oss+json': 'ali-oss',
  'application/vnd.sts-vending.oss-app-server+json': 'oss-app-server',
  'application/vnd.sts-vending.credentials-uri+json': 'credentials-uri'
}

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

export const OssAppServerResponse = Type.Object({
  StatusCode: Type.Literal(200),
  AccessKeyId: Type.String(),
  AccessKeySecret: Type.String(),
  SecurityToken: Type.String(),
  Expiration: Type.String({ format: 'date-time' })
}, { additionalProperties: false })

export const OssAppServerError = Type.Object({
  StatusCode: Type.Integer({ minimum: 400, maximum: 599 }),
  ErrorCode,
  ErrorMessage: Type.String()
}, { additionalProperties: false })

export const CredentialsUriResponse = Type.Object({
  Code: Type.Literal('Success'),
  AccessKeyId: Type.String(),
  AccessKeySecret: Type.String(),
  SecurityToken: Type.String(),
  Expiration: Type.String({ format: 'date-time' })
}, { additionalProperties: false })

export interface Sts4 { accessKeyId: string, accessKeySecret: string, securityToken: string, expiration: string }

export function shapeFor (format: Exclude<Format, 'ali-oss'>, c: Sts4): { schema: TSchema, body: Record<string, unknown> } {
  const common = { AccessKeyId: c.accessKeyId, AccessKeySecret: c.accessKeySecret, SecurityToken: c.securityToken, Expiration: c.expiration }
  return format === 'oss-app-server'
    ? { schema: OssAppServerResponse, body: { StatusCode: 200, ...common } }
    : { schema: CredentialsUriResponse, body: { Code: 'Success', ...common } }
}

export function ossAppServerError (e: ErrorBody): Record<string, unknown> {
  return { StatusCode: e.statusCode, ErrorCode: e.code, ErrorMessage: e.message }
}
