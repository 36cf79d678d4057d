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

/**
 * How long before `expiration` a client is told to refresh. ali-oss starts its refresh
 * timer at its first request, not when the credentials were fetched, and refreshes only
 * on that timer (it does not retry on SecurityTokenExpired): the lead covers the gap
 * between fetching and first use, and the refresh call itself.
 */
export const REFRESH_LEAD_SECONDS = 300

/** Whole seconds until a client must fetch new credentials, by the app's clock; never negative. */
export function refreshAfterSeconds (expiration: Date, nowMs: number): number {
  return Math.max(0, Math.floor((expiration.getTime() - nowMs) / 1000) - REFRESH_LEAD_SECONDS)
}

export function defaultBody (issued: Issued, nowMs: number): CredentialsResponse {
  return {
    accessKeyId: issued.accessKeyId,
    accessKeySecret: issued.accessKeySecret,
    securityToken: issued.securityToken,
    expiration: stsTime(issued.expiration),
    refreshAfterSeconds: refreshAfterSeconds(issued.expiration, nowMs),
    bucket: issued.bucket,
    region: issued.region,
    ossRegion: `oss-${issued.region}`,
    endpoint: issued.endpoint,
    prefix: issued.prefix,
    actions: issued.actions
  }
}

export function shapeFor (format: Exclude<Format, 'ali-oss'>, c: CredentialsResponse): { schema: TSchema, body: Record<string, unknown> } {
  const common = { AccessKeyId: c.accessKeyId, AccessKeySecret: c.accessKeySecret, SecurityToken: c.securityToken, Expiration: c.expiration }
  return format === 'oss-app-server'
    ? { schema: OssAppServerResponse, body: { StatusCode: 200, ...common, Bucket: c.bucket, Region: c.region, Endpoint: c.endpoint, Prefix: c.prefix } }
    : { schema: CredentialsUriResponse, body: { Code: 'Success', ...common } }
}

/** Errors in the OSS mobile SDKs' shape, which they read on every status. */
export function ossAppServerError (e: ErrorBody): Record<string, unknown> {
  return { StatusCode: e.statusCode, ErrorCode: e.code, ErrorMessage: e.message }
}
