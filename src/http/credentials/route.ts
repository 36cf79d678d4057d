// POST /credentials: the caller, authenticated by the caller surface (caller-surface.ts)
// before the body was even parsed, asks for credentials; vend them and answer in the
// format the request chose. The family decides its own format, Accept check and error
// shape (the OSS mobile SDKs read their own); every other guard is the surface's. The
// response schemas (schemas.ts) list every field, so serialisation drops any other:
// nothing can slip into a response by accident.
import type { FastifyRequest } from 'fastify'
import { MissingToken } from '../../errors.js'
import type { Vender, Issued } from '../../vend.js'
import type { CallerRoutes } from '../caller-surface.js'
import { ErrorResponse } from '../schemas.js'
import { assertAcceptable, requestedFormat, type Format } from './formats.js'
import { CredentialsRequest, CredentialsResponse } from './schemas.js'
import { defaultBody, ossAppServerError, refreshAfterSeconds, shapeFor } from './shapes.js'
import { keptBytes } from '../kept-bytes.js'

// Importers that name the route module (the bench servers, `verify`).
export { CredentialsResponse } from './schemas.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The response format the request chose (`?format=` or Accept). */
    format: Format
  }
}

export interface CredentialsRouteOptions {
  vender: Vender
  /** The app's clock, for `refreshAfterSeconds`. Default Date.now. */
  now?: () => number
  /** Records the issuance; the answer waits for what it returns (the audit line written). */
  onIssued?: (request: FastifyRequest, issued: Issued) => Promise<void> | undefined
}

const JSON_TYPE = 'application/json; charset=utf-8'
// Stands for refreshAfterSeconds in a kept body: an integer no real answer carries
// (longer than any credential's lifetime in seconds) and that serialises as itself.
const MARKER = 987_654_321_987_654
/**
 * Requests in one second after which an issuance's answer is kept as bytes for the next
 * second. A kept Buffer saves each later request of its second the joining and encoding
 * of the body; but it lives for the whole second, so it reaches V8's old generation, and
 * one per caller per second (2,000 callers each asking a few times a second, row 3g)
 * kept the service marking its whole heap every two seconds on the second core
 * (`--trace-gc-nvp`, 6-8 s windows: mostly 3 or 4 full collections with 400 to 500 ms
 * of background marking, against 0 or 1 and at most 140 ms with bytes kept only past
 * this count; BENCHMARKS.md). A caller looping on one token (row 3f) asks thousands
 * of times a second and is kept; clients asking a few times a second are joined per
 * request, young garbage. Busy callers are at most the request rate over this count,
 * whatever the population.
 */
export const KEEP_BYTES_AFTER = 32

/**
 * A kept default body: its text around the marker, the number the current second's
 * answers carry, how many asked in that second, and their bytes when the second before
 * had more than KEEP_BYTES_AFTER requests (undefined otherwise: each answer is joined).
 */
interface KeptBody { head: string, tail: string, refresh: number, asked: number, bytes: Buffer | undefined }

/** The serialised body cut around the marker; undefined (never kept) when it is not there exactly once. */
function split (bytes: string): KeptBody | undefined {
  const at = bytes.indexOf(`:${MARKER}`)
  if (at === -1 || bytes.indexOf(`:${MARKER}`, at + 1) !== -1) return undefined
  return { head: bytes.slice(0, at + 1), tail: bytes.slice(at + 1 + String(MARKER).length), refresh: Number.NaN, asked: 0, bytes: undefined }
}

export function credentialsRoutes (opts: CredentialsRouteOptions): CallerRoutes {
  const { vender } = opts
  const bodies = new WeakMap<Issued, KeptBody | undefined>()
  const now = opts.now ?? Date.now
  return {
    name: 'credentials',
    // The format comes first so that even a 401 is rendered in the shape the client reads.
    readRequest: (request) => { request.format = requestedFormat(request.query, request.headers.accept) },
    beforeAuth: (request) => { assertAcceptable(request.headers.accept) },
    errorShape: (request) => request.format === 'oss-app-server' ? ossAppServerError : undefined,
    plugin: async (app) => {
      app.decorateRequest('format', 'ali-oss')
      app.post<{ Body: CredentialsRequest }>('/credentials', {
        schema: {
          body: CredentialsRequest,
          response: { 200: CredentialsResponse, '4xx': ErrorResponse, '5xx': ErrorResponse }
        },
        // A POST without a body is a request for the grant's defaults.
        preValidation: (request, _reply, done) => {
          if (request.body === undefined || request.body === null) request.body = {}
          done()
        }
      }, async (request, reply) => {
        // Fail closed: without a verified caller (a hook removed by mistake) nothing is vended.
        if (request.caller === null) throw new MissingToken()
        // A hit is answered without a promise until the audit line is awaited.
        const issued = vender.cached(request.caller, request.body) ?? await vender.vend(request.caller, request.body)
        const recorded = opts.onIssued?.(request, issued)
        if (recorded !== undefined) await recorded
        void reply.header('cache-control', 'no-store')
        const nowMs = now()
        if (request.format === 'ali-oss') {
          // The default body, serialised by the route's own 200 schema once per issuance
          // (one frozen Issued per caller and credential, vend.ts) around a marker in
          // place of refreshAfterSeconds, the one field that moves with the clock. An
          // answer joins the two halves around its number; a busy issuance's answers are
          // made into bytes once a second and sent as they are (KEEP_BYTES_AFTER).
          const refresh = refreshAfterSeconds(issued.expiration, nowMs)
          if (!Object.isFrozen(issued)) return defaultBody(issued, nowMs)
          let kept = bodies.get(issued)
          if (kept === undefined) bodies.set(issued, kept = split(reply.serialize({ ...defaultBody(issued, nowMs), refreshAfterSeconds: MARKER }) as string))
          if (kept === undefined) return defaultBody(issued, nowMs)
          if (kept.refresh !== refresh) {
            kept.bytes = kept.asked > KEEP_BYTES_AFTER ? keptBytes(`${kept.head}${refresh}${kept.tail}`) : undefined
            kept.refresh = refresh
            kept.asked = 0
          }
          kept.asked++
          return reply.type(JSON_TYPE).send(kept.bytes ?? `${kept.head}${refresh}${kept.tail}`)
        }
        const shaped = shapeFor(request.format, defaultBody(issued, nowMs))
        return reply.type(JSON_TYPE).send(reply.serializeInput(shaped.body, shaped.schema))
      })
    }
  }
}
