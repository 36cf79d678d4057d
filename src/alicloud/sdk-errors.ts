// What an official SDK client (STS, RAM) threw, reduced to safe fields. SDK errors carry
// the signed request (`data`, the headers with the Authorization) and their messages echo
// the full URL, so nothing of them is passed on: only the code, the status, the request
// id, a throttling hint, and the upstream message trimmed and redacted to one short line.
// Each client maps an SdkFailure to its own error type; this is the one place that reads
// what the SDK threw.
import { CredentialLookupFailed } from './sdk-base.js'

export type SdkFailure =
  /** The credential chain failed (RRSA exchange, IMDS, missing variables); see sdk-config.ts. */
  | { kind: 'credential' }
  /** The service answered with an error. `message` is for logs only. */
  | { kind: 'answer', code: string, status: number, requestId?: string, message?: string, retryAfterMs?: number }
  /** The SDK's own read or connect timer fired. */
  | { kind: 'timeout' }
  /** A socket-level failure; `code` is the errno-style code (ECONNREFUSED, EAI_AGAIN, …). */
  | { kind: 'network', code: string }
  /** A body that is not JSON. The SDK parses error bodies before it looks at the status,
   *  so this is also what a non-JSON 5xx from a proxy looks like: the status is lost. */
  | { kind: 'not-json' }
  | { kind: 'unknown' }

/** A non-empty string, or undefined: the SDK stringifies absent fields into "undefined". */
export function str (v: unknown): string | undefined {
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

// Node's socket and DNS codes (ECONNREFUSED, EAI_AGAIN, ERR_SSL_…): an identifier, never text.
const NETWORK_CODE = /^E[A-Z_]{2,40}$/

/** Reads whatever the SDK threw, copying only safe fields. */
export function readSdkError (err: unknown): SdkFailure {
  if (err instanceof CredentialLookupFailed) return { kind: 'credential' }
  if (typeof err !== 'object' || err === null) return { kind: 'unknown' }
  const e = err as Record<string, unknown>
  const code = str(e.code)
  if (typeof e.statusCode === 'number') {
    const requestId = str(e.requestId)
    const message = trimUpstreamMessage(e.message)
    const retryAfterMs = typeof e.retryAfter === 'number' && Number.isFinite(e.retryAfter) && e.retryAfter >= 0 ? e.retryAfter : undefined
    return {
      kind: 'answer',
      code: code ?? 'Unknown',
      status: e.statusCode,
      ...(requestId !== undefined ? { requestId } : {}),
      ...(message !== undefined ? { message } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {})
    }
  }
  if (str(e.name) === 'RequestTimeoutError') return { kind: 'timeout' }
  if (code !== undefined && NETWORK_CODE.test(code)) return { kind: 'network', code }
  if (err instanceof SyntaxError) return { kind: 'not-json' }
  return { kind: 'unknown' }
}
