// A thin client over @alicloud/sts20150401: one assumeRole() is exactly one HTTP request
// (the SDK's retries stay off; upstream/ decides), bounded by
// timeoutMs, and every failure becomes an StsError of a small, closed set of kinds.
//
// SDK errors are never passed on (sdk-errors.ts reads them): only the code, status,
// request id and a trimmed, redacted upstream message reach an StsError.
//
// Timeouts: the SDK (httpx) arms a read timer from socket connect and a socket idle
// timeout, both of which destroy the socket. The read timer is not cleared after a
// successful response and can clear a later request's timer on a reused keep-alive
// socket, so a deadline of our own also bounds every call.
import StsModule, { AssumeRoleRequest } from '@alicloud/sts20150401'
import { sdkConfig, type CredentialLike } from './sdk-config.js'
import { readSdkError, str } from './sdk-errors.js'

// CommonJS: under Node's ESM loader the default import is module.exports.
const SdkClient = StsModule.default

export interface AssumeRoleInput {
  roleArn: string
  roleSessionName: string
  durationSeconds: number
  policy?: string
  externalId?: string
  sourceIdentity?: string
}

export interface StsCredentials {
  accessKeyId: string
  accessKeySecret: string
  securityToken: string
  expiration: Date
}

export type StsErrorKind = 'throttled' | 'unavailable' | 'rejected' | 'bad_response'

export interface StsErrorDetails {
  /** Upstream code (Throttling.User, NoPermission, …) or a network condition (ECONNREFUSED, TIMEOUT). */
  code: string
  status?: number
  timedOut?: boolean
  retryAfterMs?: number
  requestId?: string
}

/** A failed AssumeRole. The message is a safe one-line summary for logs. */
export class StsError extends Error {
  override name = 'StsError'
  readonly kind: StsErrorKind
  readonly code: string
  // Declared, not initialised, so absent details are absent (not own properties set to undefined).
  declare readonly status?: number
  readonly timedOut: boolean
  declare readonly retryAfterMs?: number
  declare readonly requestId?: string

  constructor (kind: StsErrorKind, message: string, details: StsErrorDetails) {
    super(message)
    this.kind = kind
    this.code = details.code
    this.timedOut = details.timedOut ?? false
    if (details.status !== undefined) this.status = details.status
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs
    if (details.requestId !== undefined) this.requestId = details.requestId
  }
}

export interface StsClient {
  assumeRole (input: AssumeRoleInput): Promise<StsCredentials>
}

/** What the SDK needs from a credential: @alicloud/credentials' Credential satisfies it. */
export type { CredentialLike } from './sdk-config.js'
// Kept here too for the modules that import it from the STS client.
export { trimUpstreamMessage } from './sdk-errors.js'

export interface StsClientOptions {
  /** http(s)://host[:port], no path. */
  endpoint: string
  /** Bound on one call, connection and credential lookup included. */
  timeoutMs: number
  credential: CredentialLike
}

const EXPIRATION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/
const USER_AGENT = 'sts-vending'

const KIND_TEXT: Record<StsErrorKind, string> = {
  throttled: 'throttled',
  unavailable: 'unavailable',
  rejected: 'rejected',
  bad_response: 'answered with something unusable'
}

function describe (kind: StsErrorKind, d: StsErrorDetails, upstream?: string): string {
  let msg = `STS AssumeRole ${KIND_TEXT[kind]}: ${d.code}`
  if (d.status !== undefined) msg += ` (HTTP ${d.status})`
  if (d.requestId !== undefined) msg += ` request ${d.requestId}`
  if (upstream !== undefined) msg += ` - ${upstream}`
  return msg
}

function make (kind: StsErrorKind, d: StsErrorDetails, upstream?: string): StsError {
  return new StsError(kind, describe(kind, d, upstream), d)
}

/** Maps whatever the SDK threw to an StsError (safe fields only, see sdk-errors.ts). */
export function classifySdkError (err: unknown): StsError {
  if (err instanceof StsError) return err
  const f = readSdkError(err)
  switch (f.kind) {
    case 'credential': return make('unavailable', { code: 'CredentialUnavailable' })
    case 'timeout': return make('unavailable', { code: 'TIMEOUT', timedOut: true })
    case 'network': return make('unavailable', { code: f.code, timedOut: f.code === 'ETIMEDOUT' })
    case 'not-json': return make('bad_response', { code: 'InvalidJSON' })
    case 'unknown': return make('unavailable', { code: 'Unknown' })
  }
  const base = { code: f.code, status: f.status, ...(f.requestId !== undefined ? { requestId: f.requestId } : {}) }
  if (f.code.includes('Throttling') || f.status === 429) {
    return make('throttled', { ...base, ...(f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {}) }, f.message)
  }
  return make(f.status >= 500 ? 'unavailable' : 'rejected', base, f.message)
}

function badResponse (code: string, requestId: string | undefined): StsError {
  return make('bad_response', { code, ...(requestId !== undefined ? { requestId } : {}) })
}

/** The credentials of a 200 answer, or a bad_response StsError. */
function toCredentials (response: unknown): StsCredentials {
  const body = (response as { body?: { requestId?: unknown, credentials?: Record<string, unknown> } } | undefined)?.body
  const requestId = str(body?.requestId)
  const c = body?.credentials
  const accessKeyId = str(c?.accessKeyId)
  const accessKeySecret = str(c?.accessKeySecret)
  const securityToken = str(c?.securityToken)
  const rawExpiration = str(c?.expiration)
  if (accessKeyId === undefined || accessKeySecret === undefined || securityToken === undefined) throw badResponse('MissingCredentials', requestId)
  if (rawExpiration === undefined || !EXPIRATION.test(rawExpiration)) throw badResponse('InvalidExpiration', requestId)
  const expiration = new Date(rawExpiration)
  if (Number.isNaN(expiration.getTime())) throw badResponse('InvalidExpiration', requestId)
  return { accessKeyId, accessKeySecret, securityToken, expiration }
}

export function createStsClient (opts: StsClientOptions): StsClient {
  if (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs <= 0) throw new TypeError('timeoutMs must be a positive integer')
  const sdk = new SdkClient(sdkConfig({ endpoint: opts.endpoint, what: 'sts endpoint', timeoutMs: opts.timeoutMs, credential: opts.credential, userAgent: USER_AGENT }))

  return {
    async assumeRole (input) {
      const request = new AssumeRoleRequest({
        roleArn: input.roleArn,
        roleSessionName: input.roleSessionName,
        durationSeconds: input.durationSeconds,
        ...(input.policy !== undefined ? { policy: input.policy } : {}),
        ...(input.externalId !== undefined ? { externalId: input.externalId } : {}),
        ...(input.sourceIdentity !== undefined ? { sourceIdentity: input.sourceIdentity } : {})
      })
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(make('unavailable', { code: 'TIMEOUT', timedOut: true })), opts.timeoutMs)
      })
      const call = sdk.assumeRole(request)
      // After the deadline the SDK still settles (its own timers destroy the socket).
      call.catch(() => {})
      let response: unknown
      try {
        response = await Promise.race([call, deadline])
      } catch (err) {
        throw classifySdkError(err)
      } finally {
        clearTimeout(timer)
      }
      return toCredentials(response)
    }
  }
}
