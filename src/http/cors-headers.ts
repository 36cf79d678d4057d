// CORS headers for answers the CORS plugin did not see: a refusal decided before the
// caller surface's hooks ran (the lifecycle's 503 while shutting down) or thrown by an
// earlier hook. Without them a browser on an allowed origin sees an opaque network
// error and cannot read the error code or Retry-After.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import cors, { type FastifyCorsOptions } from '@fastify/cors'

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

/** `Vary: Origin`, added to any Vary already set: the answer depends on the Origin header, so no cache may serve it for another. */
export function varyOnOrigin (reply: FastifyReply): void {
  const vary = reply.getHeader('vary')
  if (vary === undefined) void reply.header('vary', 'Origin')
  else if (!/\borigin\b/i.test(String(vary))) void reply.header('vary', `${String(vary)}, Origin`)
}

/** The same headers the CORS plugin sets on an answer to an allowed origin. */
export function ensureCorsHeaders (request: FastifyRequest, reply: FastifyReply, origins: ReadonlySet<string>): void {
  const origin = request.headers.origin
  if (origin === undefined || !origins.has(origin) || reply.hasHeader('access-control-allow-origin')) return
  void reply.header('access-control-allow-origin', origin)
  void reply.header('access-control-expose-headers', EXPOSED_HEADERS.join(', '))
  varyOnOrigin(reply)
}

type CorsHook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void

/**
 * Registers @fastify/cors so that its hook runs only for requests that can be CORS: those
 * with an Origin header, and every OPTIONS (a preflight, or the strict mode's 400). The
 * plugin's hook copies its options and resolves the origin on every request, about 4 µs
 * of a 60 µs cache hit (issue 25); a request without Origin is no browser's cross-origin
 * call, and gets only the `Vary: Origin` the plugin would have set, so a cache never
 * serves it to one. The plugin adds one onRequest hook; anything else refuses to start.
 */
export async function registerCors (routes: FastifyInstance, options: FastifyCorsOptions): Promise<void> {
  const addHook = routes.addHook
  let wrapped = 0
  const onlyCors = function (this: FastifyInstance, name: string, hook: CorsHook): FastifyInstance {
    if (name !== 'onRequest' || typeof hook !== 'function' || hook.length !== 3) throw new Error(`@fastify/cors added a ${name} hook this service does not expect`)
    wrapped++
    const corsWhenOrigin = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
      if (request.headers.origin !== undefined || request.raw.method === 'OPTIONS') {
        hook.call(this, request, reply, done)
        return
      }
      varyOnOrigin(reply)
      done()
    }
    return (addHook as (this: FastifyInstance, name: string, hook: unknown) => FastifyInstance).call(this, 'onRequest', corsWhenOrigin)
  }
  routes.addHook = onlyCors as unknown as FastifyInstance['addHook']
  try {
    await routes.register(cors, options)
  } finally {
    routes.addHook = addHook
  }
  if (wrapped !== 1) throw new Error(`@fastify/cors added ${wrapped} hooks; this service expects one`)
}
