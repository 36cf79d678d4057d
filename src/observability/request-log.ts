// One log line per request, written once the answer is sent, in place of Fastify's
// two ("incoming request" and "request completed"), which cost about half the CPU of
// a cache hit at the default level. Fastify's LogController is the documented place to
// reshape its request lines. Routes that set a quieter `logLevel` (probes, /metrics,
// /openapi.*) write none at info, as before.
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Bindings, ChildLoggerOptions } from 'pino'
import { keptChild, redactUrl, requestLineLogger, scrub } from './logger.js'

// The levels at which an info line is written (a disabled logger has no level at all).
const INFO_ON = new Set(['info', 'debug', 'trace'])

export class RequestLogController extends LogController {
  #line: FastifyBaseLogger | undefined
  // Route templates x methods x statuses: bounded like the HTTP metrics' labels.
  #lines = new Map<string, Map<string, Map<number, FastifyBaseLogger>>>()

  #lineOf (route: string, method: string, statusCode: number): FastifyBaseLogger {
    let byMethod = this.#lines.get(route)
    if (byMethod === undefined) this.#lines.set(route, byMethod = new Map())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map())
    let line = byStatus.get(statusCode)
    if (line === undefined) byStatus.set(statusCode, line = keptChild(this.#line as FastifyBaseLogger, { method, route, statusCode }))
    return line
  }

  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error !== null && error !== undefined) {
      reply.log.error({ err: error, route: request.routeOptions.url ?? null, statusCode: reply.statusCode, responseTime: reply.elapsedTime }, 'request errored')
      return
    }
    if (!INFO_ON.has(reply.log.level)) return
    // Created once: a child without the redaction pass, since this line carries no
    // header, body or raw URL (see requestLineLogger).
    this.#line ??= requestLineLogger(request.server.log)
    const route = request.routeOptions.url
    if (route !== undefined) {
      // A matched route's fixed fields (method, route, status) are serialised once, as a
      // child's bindings; each line adds its id and time (issue 25).
      this.#lineOf(route, request.method, reply.statusCode).info({ reqId: request.id, responseTime: Math.round(reply.elapsedTime * 100) / 100 }, 'request completed')
      return
    }
    this.#line.info({
      reqId: request.id,
      method: request.method,
      route: route ?? null,
      // Only an unmatched request has no template to show; its path is the caller's
      // text, so it alone goes through the query strip and the token scrub.
      ...(route === undefined ? { url: scrub(redactUrl(request.url)) } : {}),
      statusCode: reply.statusCode,
      responseTime: Math.round(reply.elapsedTime * 100) / 100
    }, 'request completed')
  }
}

type Log = (...args: unknown[]) => void

/**
 * `request.log`, made only when something is logged through it. Fastify builds a pino
 * child per request (its bindings serialised, through the redaction pass); a cache hit
 * logs nothing through it (the request line above has its own logger), so the child
 * cost a few per cent of a hit for nothing. The first call makes the real child with
 * the same bindings and options, and everything goes to it from then on.
 */
export class LazyRequestLogger {
  #parent: FastifyBaseLogger
  #bindings: Bindings
  #opts: Record<string, unknown>
  #child: FastifyBaseLogger | undefined

  constructor (parent: FastifyBaseLogger, bindings: Bindings, opts: Record<string, unknown>) {
    this.#parent = parent
    this.#bindings = bindings
    this.#opts = opts
  }

  #real (): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#opts)
    return this.#child
  }

  get level (): string { return this.#child?.level ?? (this.#opts.level as string | undefined) ?? this.#parent.level }
  set level (level: string) { this.#real().level = level }
  fatal (...args: unknown[]): void { (this.#real().fatal as Log)(...args) }
  error (...args: unknown[]): void { (this.#real().error as Log)(...args) }
  warn (...args: unknown[]): void { (this.#real().warn as Log)(...args) }
  info (...args: unknown[]): void { (this.#real().info as Log)(...args) }
  debug (...args: unknown[]): void { (this.#real().debug as Log)(...args) }
  trace (...args: unknown[]): void { (this.#real().trace as Log)(...args) }
  silent (...args: unknown[]): void { (this.#real().silent as Log)(...args) }
  child (bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger { return this.#real().child(bindings, opts) }
}

/** Fastify's `childLoggerFactory`: a LazyRequestLogger in place of an eager child. */
export function lazyRequestLogger (logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyRequestLogger(logger, bindings, opts as Record<string, unknown>) as unknown as FastifyBaseLogger
}
