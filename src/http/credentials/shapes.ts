// The answer of POST /credentials in each format. The default body is returned as is
// and serialised by the route's response schema; another format's body is serialised
// through its own schema (schemas.ts), so no field beyond the listed ones can leave
// the service in any shape.
import type { TSchema } from '@sinclair/typebox'
import { stsTime } from '../../core/index.js'
import type { Issued } from '../../vend.js'
import type { ErrorBody } from '../error-handler.js'
import type { Format } from './formats.js'
import { CredentialsUriResponse, OssAppServerResponse, type CredentialsResponse } from './schemas.js'

export { stsTime }

export function defaultBody (issued: Issued): CredentialsResponse {
  return {
    accessKeyId: issued.accessKeyId,
    accessKeySecret: issued.accessKeySecret,
    securityToken: issued.securityToken,
    expiration: stsTime(issued.expiration),
    bucket: issued.bucket,
    region: issued.region,
    ossRegion: `oss-${issued.region}`,
    endpoint: issued.endpoint,
    prefix: issued.prefix,
    actions: issued.actions
  }
}

export interface Sts4 { accessKeyId: string, accessKeySecret: string, securityToken: string, expiration: string }

export function shapeFor (format: Exclude<Format, 'ali-oss'>, c: Sts4): { schema: TSchema, body: Record<string, unknown> } {
  const common = { AccessKeyId: c.accessKeyId, AccessKeySecret: c.accessKeySecret, SecurityToken: c.securityToken, Expiration: c.expiration }
  return format === 'oss-app-server'
    ? { schema: OssAppServerResponse, body: { StatusCode: 200, ...common } }
    : { schema: CredentialsUriResponse, body: { Code: 'Success', ...common } }
}

/** Errors in the OSS mobile SDKs' shape, which they read on every status. */
export function ossAppServerError (e: ErrorBody): Record<string, unknown> {
  return { StatusCode: e.statusCode, ErrorCode: e.code, ErrorMessage: e.message }
}
