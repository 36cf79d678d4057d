// Logging policy: JSON lines; nothing that authenticates anyone is ever written.
// Headers are not serialised at all (so Authorization cannot leak), query strings are
// dropped from URLs (a `?token=` must not reach a log line), credential fields are
// redacted wherever they appear, and errors are copied through an allow-list because
// the SDK's error objects carry signed request data.
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import { stdoutSink } from './log-sink.js'

export const REDACT_PATHS = [
  'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'accessKeySecret', '*.accessKeySecret', 'securityToken', '*.securityToken',
  'AccessKeySecret', '*.AccessKeySecret', 'SecurityToken', '*.SecurityToken',
  'token', '*.token', 'jwt', '*.jwt', 'secret', '*.secret', 'credentials', '*.credentials'
]

const SECRETISH: Array<[RegExp, string]> = [
  [/eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*/g, '[redacted-jwt]'],
  [/\bBearer\s+\S+/gi, 'Bearer [redacted]'],
  [/\bSignature=[^,\s&"]+/g, 'Signature=[redacted]'],
  [/\b(SecurityToken|AccessKeySecret|x-acs-security-token|x-oss-security-token)(["']?\s*[:=]\s*["']?)[^,\s&"']+/gi, '$1$2[redacted]']
]

/** Remove anything token-shaped from a free-text message before it is logged. */
export function scrub (text: string): string {
  let out = text
  for (const [re, replacement] of SECRETISH) out = out.replace(re, replacement)
  return out.length > 500 ? out.slice(0, 500) + '…' : out
}

/** The path of a URL, with any query string replaced by a marker. */
export function redactUrl (url: string | undefined): string {
  if (url === undefined) return ''
  const q = url.indexOf('?')
  return q === -1 ? url : `${url.slice(0, q)}?[redacted]`
}

interface ErrLike { name?: unknown, code?: unknown, statusCode?: unknown, kind?: unknown, status?: unknown, message?: unknown, requestId?: unknown, stack?: unknown }

export interface SerializedError { type: string, message: string, stack: string, [key: string]: unknown }

export function serializeError (err: unknown): SerializedError {
  if (err === null || typeof err !== 'object') return { type: typeof err, message: scrub(String(err)), stack: '' }
  const e = err as ErrLike
  const out: SerializedError = { type: typeof e.name === 'string' ? e.name : 'Error', message: '', stack: '' }
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code
  if (typeof e.statusCode === 'number') out.statusCode = e.statusCode
  if (typeof e.status === 'number') out.status = e.status
  if (typeof e.kind === 'string') out.kind = e.kind
  if (typeof e.requestId === 'string') out.upstreamRequestId = e.requestId
  if (typeof e.message === 'string') out.message = scrub(e.message)
  if (typeof e.stack === 'string') out.stack = scrub(e.stack.split('\n').slice(0, 8).join('\n'))
  return out
}

interface ReqLike { method?: string, url?: string, id?: unknown, ip?: string, routeOptions?: { url?: string } }
interface ResLike { statusCode?: number }

export function loggerOptions (level: string): LoggerOptions & NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      req: (req: ReqLike) => ({ method: req.method, url: redactUrl(req.url), route: req.routeOptions?.url, remoteAddress: req.ip }),
      res: (res: ResLike) => ({ statusCode: res.statusCode }),
      err: serializeError
    }
  }
}

/**
 * The service's logger: JSON lines at `level` on `destination`. The default is stdout
 * through log-sink.ts: one synchronous write per event-loop turn. Not pino's default
 * destination, which writes asynchronously and flushes synchronously at exit: when
 * stdout's reader is gone (a log collector that restarted) that exit flush retries
 * EPIPE forever on the main thread (sonic-boom 4's flushSync sleeps and retries on
 * every error), so neither the grace timer nor a second signal could end the process.
 * A synchronous write meets EPIPE at once, and pino then turns the destination into a
 * no-op: logs are lost, the service is not.
 */
export function createLogger (level: string, destination: DestinationStream = stdoutSink()): Logger {
  return pino(loggerOptions(level), destination)
}

/**
 * The logger for the one line per request: it carries only the method, the route
 * template, the status and the time (never a header, a body or a raw URL, except the
 * scrubbed path of an unmatched request), so it skips the redaction pass that every
 * other line pays for.
 */
export function requestLineLogger (log: FastifyBaseLogger): FastifyBaseLogger {
  return log.child({}, { redact: [] })
}

/**
 * The audit logger: a child pinned at info, so that LOG_LEVEL (even `silent`) never
 * switches the audit trail off. Its lines are built field by field in audit.ts from an
 * allow-list that holds no credential, token or header, and none of their keys is a
 * redaction path, so the redaction pass (a copy of every line, profiled at ~6 % of a
 * cache hit) is skipped, as for the request line. It keeps the parent's serializers.
 */
export function auditLogger (log: FastifyBaseLogger): FastifyBaseLogger {
  return log.child({ log: 'audit' }, { level: 'info', redact: [] })
}

/**
 * A child logger kept to write many lines (an issuance's audit line, a route's request
 * line): `parent.child(bindings)`, with its serialised bindings held as one flat string.
 * pino serialises bindings by joining pieces, and every line then copies that joined
 * string piece by piece when the batch is encoded (log-sink.ts); flat, it is copied at
 * once. Measured in issue 25 at about 40 % of the encoding of a cache hit's two lines.
 * The bytes written are the same.
 */
export function keptChild (parent: FastifyBaseLogger, bindings: Record<string, unknown>): FastifyBaseLogger {
  const child = parent.child(bindings)
  const holder = child as unknown as Record<symbol, unknown>
  const serialised = holder[pino.symbols.chindingsSym]
  if (typeof serialised === 'string') holder[pino.symbols.chindingsSym] = Buffer.from(serialised, 'utf8').toString('utf8')
  return child
}
