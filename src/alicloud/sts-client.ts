// A thin client over @alicloud/sts20150401: one assumeRole() is exactly one HTTP request
// (the SDK's retries stay off; the resilience layer in resilient.ts decides), bounded by
// timeoutMs, and every failure becomes an StsError of a small, closed set of kinds.
//
// SDK errors are never passed on: they carry the signed request (`data`, the headers with
// the Authorization) and their messages echo the full URL. Only the code, status, request
// id and a trimmed, redacted upstream message are copied.
//
// Timeouts: the SDK (httpx) arms a read timer from socket connect and a socket idle
// timeout, both of which destroy the socket. The read timer is not cleared after a
// successful response and can clear a later request's timer on a reused keep-alive
// socket, so a deadline of our own also bounds every call.
import StsModule, { AssumeRoleRequest } from '@alicloud/sts20150401'
import { CredentialLookupFailed, sdkConfig, type CredentialLike } from './sdk-config.js'

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

export interface StsClientOptions {
  /** http(s)://host[:port], no path. */
  endpoint: string
  /** Bound on one call, connection and credential lookup included. */
  timeoutMs: number
  credential: CredentialLike
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENETDOWN', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER'
])
const EXPIRATION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/
const USER_AGENT = 'sts-vending'

const KIND_TEXT: Record<StsErrorKind, string> = {
  throttled: 'throttled',
  unavailable: 'unavailable',
  rejected: 'rejected',
  bad_response: 'answered with something unusable'
}

function str (v: unknown): string | undefined {
  // The SDK stringifies absent fields into "undefined".
  return typeof v === 'string' && v !== '' && v !== 'undefined' ? v : undefined
}

/**
 * The upstream Message, for logs only: the SDK wraps it as "<Code>: code: <status>,
 * <Message> request id: <id>"; keep the middle, drop anything shaped like a credential or a
 * signature, and bound it to one short line.
 */
export function trimUpstreamMessage (raw: unknown): string | undefined {
  const text = str(raw)
  if (text === undefined) return undefined
  const inner = text.replace(/^(?:\S+: )?code: \d+, /, '').replace(/ request id: \S*$/, '')
  const redacted = inner
    .replace(/\b(Signature|Credential|Authorization|AccessKeySecret|SecurityToken|x-acs-security-token)\b\s*[=:]\s*\S*/gi, '[redacted]')
    .replace(/ACS3-[A-Z0-9-]+\s+\S*/g, '[redacted]')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
    .trim()
  if (redacted === '' || redacted === 'undefined') return undefined
  return redacted.length > 160 ? redacted.slice(0, 157) + '...' : redacted
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

/** Maps whatever the SDK threw to an StsError, copying only safe fields. */
export function classifySdkError (err: unknown): StsError {
  if (err instanceof StsError) return err
  if (err instanceof CredentialLookupFailed) return make('unavailable', { code: 'CredentialUnavailable' })
  if (typeof err !== 'object' || err === null) return make('unavailable', { code: 'Unknown' })
  const e = err as Record<string, unknown>
  const name = str(e.name) ?? ''
  const code = str(e.code)
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined
  const requestId = str(e.requestId)
  const base = { ...(status !== undefined ? { status } : {}), ...(requestId !== undefined ? { requestId } : {}) }

  if (status !== undefined) {
    const upstreamCode = code ?? 'Unknown'
    const upstream = trimUpstreamMessage(e.message)
    if (upstreamCode.includes('Throttling') || status === 429) {
      const retryAfterMs = typeof e.retryAfter === 'number' && Number.isFinite(e.retryAfter) && e.retryAfter >= 0 ? e.retryAfter : undefined
      return make('throttled', { code: upstreamCode, ...base, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }, upstream)
    }
    if (status >= 500) return make('unavailable', { code: upstreamCode, ...base }, upstream)
    return make('rejected', { code: upstreamCode, ...base }, upstream)
  }
  if (name === 'RequestTimeoutError') return make('unavailable', { code: 'TIMEOUT', timedOut: true })
  if (code !== undefined && NETWORK_CODES.has(code)) return make('unavailable', { code, timedOut: code === 'ETIMEDOUT' })
  // A body that is not JSON. The SDK parses error bodies before it looks at the status,
  // so this is also what a non-JSON 5xx from a proxy looks like; the status is lost.
  if (err instanceof SyntaxError) return make('bad_response', { code: 'InvalidJSON' })
  return make('unavailable', { code: 'Unknown' })
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
