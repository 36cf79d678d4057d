// The Fastify instance's options: the node:http server with every limit set from the
// config rather than left to Node's defaults, the request-id policy, and logging.
import { clientErrorHandler } from './error-handler.js'
import { lazyCompilers, type LazyCompilers } from './lazy-compilers.js'
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance, FastifyServerOptions } from 'fastify'
import type { Config } from '../config/schema.js'
import { loggerOptions } from '../observability/logger.js'
import { lazyRequestLogger, RequestLogController } from '../observability/request-log.js'

/** A pino instance, or Fastify's own logger setting (false, true, pino options). */
export type LoggerSetting = FastifyServerOptions['logger'] | FastifyBaseLogger

// An incoming X-Request-Id is kept (an ingress's id correlates across hops) only when
// it is short and plain; anything else could forge or break log lines, so it is replaced.
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function requestId (incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

function isLoggerInstance (logger: LoggerSetting): logger is FastifyBaseLogger {
  return typeof logger === 'object' && logger !== null && typeof (logger as { child?: unknown }).child === 'function'
}

export function serverOptions (server: Config['server'], logger: LoggerSetting = loggerOptions('info'), compilers: LazyCompilers = lazyCompilers()): FastifyServerOptions {
  return {
    ...(isLoggerInstance(logger) ? { loggerInstance: logger } : { logger }),
    // One line per request instead of Fastify's two (observability/request-log.ts).
    logController: new RequestLogController(),
    // request.log made on first use: a cache hit logs nothing through it.
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: server.bodyLimitBytes,
    serverFactory: (handler) => {
      const http = createServer({
        maxHeaderSize: server.maxHeaderBytes,
        headersTimeout: server.headersTimeoutMs,
        requestTimeout: server.requestTimeoutMs,
        keepAliveTimeout: server.keepAliveTimeoutMs,
        // Node checks headersTimeout/requestTimeout only this often (default 30 s).
        connectionsCheckingInterval: Math.min(1000, server.headersTimeoutMs)
      }, handler)
      http.setTimeout(server.requestTimeoutMs)
      return http
    },
    trustProxy: server.trustProxy as FastifyServerOptions['trustProxy'],
    // Node's own 431/408/400 answers, in our error shape.
    clientErrorHandler,
    return503OnClosing: false, // lifecycle.ts answers with our own code and Connection: close
    forceCloseConnections: 'idle',
    requestIdHeader: false,
    genReqId: (req) => requestId(req.headers['x-request-id']),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // Validators and serialisers compiled on first use, not at start (lazy-compilers.ts).
    schemaController: { compilersFactory: compilers }
  }
}

/** Every answer names its request id, so a caller can quote it and an operator find it. */
export const requestIdHeader = fp(async function requestIdHeader (app: FastifyInstance): Promise<void> {
  app.addHook('onSend', (request, reply, payload, done) => {
    void reply.header('x-request-id', request.id)
    done(null, payload)
  })
}, { name: 'request-id', fastify: '5.x' })
