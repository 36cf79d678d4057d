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
//
// The SDK itself (sts-sdk.ts) is loaded on first use, not at start: it is the largest
// part of the service's module loading and readiness does not need it. warmUp() loads
// it ahead of the first call (app.ts does so once the server listens); a load that
// fails is an `unavailable` StsError like an unreachable STS, and the next call tries
// the load again.
import { parseEndpoint, type CredentialLike } from './sdk-base.js'
import { readSdkError, str } from './sdk-errors.js'
import type { SdkAssumeRole, SdkAssumeRoleOptions } from './sts-sdk.js'
import type { AssumeRoleInput, StsCredentials } from './sts-types.js'

// The shapes of a call and its answer live in sts-types.ts, which the SDK half imports
// without importing this module back; they are part of this client's API.

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
  /** Loads what the first call needs, so that it does not wait on it. Rejects with an StsError; never needed for correctness. */
  warmUp? (): Promise<void>
}

/** What the SDK needs from a credential: @alicloud/credentials' Credential satisfies it. */
// Kept here too for the modules that import it from the STS client.

export interface StsClientOptions {
  /** http(s)://host[:port], no path. */
  endpoint: string
  /** Bound on one call, connection and credential lookup included. */
  timeoutMs: number
  /** Default: the SDK's default chain (credentials.ts), loaded with the SDK. */
  credential?: CredentialLike
  /** Loads the SDK half of the client. Default: import('./sts-sdk.js'); tests hand in a load that fails. */
  loadSdk?: () => Promise<{ createSdkAssumeRole: (opts: SdkAssumeRoleOptions) => SdkAssumeRole }>
}

const EXPIRATION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/

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
  // Checked now, not at the first call: a bad endpoint is a start-up error.
  parseEndpoint(opts.endpoint, 'sts endpoint')
  const load = opts.loadSdk ?? (async () => await import('./sts-sdk.js'))
  const sdkOptions: SdkAssumeRoleOptions = { endpoint: opts.endpoint, timeoutMs: opts.timeoutMs, ...(opts.credential !== undefined ? { credential: opts.credential } : {}) }
  let sdk: Promise<SdkAssumeRole> | undefined

  function loadSdk (): Promise<SdkAssumeRole> {
    if (sdk !== undefined) return sdk
    // A package that will not load, or an SDK client that cannot be made from it.
    const loading = load().then((m) => m.createSdkAssumeRole(sdkOptions)).catch(() => {
      throw make('unavailable', { code: 'SdkUnavailable' })
    })
    sdk = loading
    // Not kept when it failed: a broken load must not outlive the fault that broke it.
    loading.catch(() => { if (sdk === loading) sdk = undefined })
    return loading
  }

  return {
    async warmUp () {
      await loadSdk()
    },
    async assumeRole (input) {
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(make('unavailable', { code: 'TIMEOUT', timedOut: true })), opts.timeoutMs)
      })
      // The deadline covers loading the SDK too: it bounds the call as the caller sees it.
      const call = loadSdk().then(async (assumeRole) => await assumeRole(input))
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
