// CORS headers for answers the CORS plugin did not see: a refusal decided before the
// caller surface's hooks ran (the lifecycle's 503 while shutting down) or thrown by an
// earlier hook. Without them a browser on an allowed origin sees an opaque network
// error and cannot read the error code or Retry-After.
import type { FastifyReply, FastifyRequest } from 'fastify'

/** What a browser script may read of an answer: the request id and when to retry. */
export const EXPOSED_HEADERS = ['x-request-id', 'retry-after']

/** What the caller surface gives @fastify/cors besides the origins. */
export const CORS_OPTIONS = {
  methods: ['POST'],
  allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
  exposedHeaders: EXPOSED_HEADERS,
  credentials: false,
  maxAge: 600,
  strictPreflight: true
}

/** The same headers the CORS plugin sets on an answer to an allowed origin. */
export function ensureCorsHeaders (request: FastifyRequest, reply: FastifyReply, origins: ReadonlySet<string>): void {
  const origin = request.headers.origin
  if (origin === undefined || !origins.has(origin) || reply.hasHeader('access-control-allow-origin')) return
  void reply.header('access-control-allow-origin', origin)
  void reply.header('access-control-expose-headers', EXPOSED_HEADERS.join(', '))
  const vary = reply.getHeader('vary')
  if (vary === undefined) void reply.header('vary', 'Origin')
  else if (!/\borigin\b/i.test(String(vary))) void reply.header('vary', `${String(vary)}, Origin`)
}
