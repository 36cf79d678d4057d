// POST /credentials: the caller, authenticated by the plugin's hooks (index.ts) before
// the body was even parsed, asks for credentials; vend them and answer in the format
// the request chose. The response schemas (schemas.ts) list every field, so
// serialisation drops any other: nothing can slip into a response by accident.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { MissingToken } from '../../errors.js'
import type { Vender, Issued } from '../../vend.js'
import { CredentialsRequest, CredentialsResponse, ErrorResponse } from './schemas.js'
import { defaultBody, shapeFor } from './shapes.js'

// Importers that name the route module (the bench servers, `verify`, the audit trail).
export { CredentialsRequest, CredentialsResponse, ErrorResponse } from './schemas.js'
export { stsTime, defaultBody } from './shapes.js'

export interface CredentialsRouteOptions {
  vender: Vender
  /** The app's clock, for `refreshAfterSeconds`. Default Date.now. */
  now?: () => number
  /** Records the issuance; the answer waits for what it returns (the audit line written). */
  onIssued?: (request: FastifyRequest, issued: Issued) => Promise<void> | undefined
}

export function credentialsRoute (app: FastifyInstance, opts: CredentialsRouteOptions): void {
  const { vender } = opts
  const now = opts.now ?? Date.now
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
    const issued = await vender.vend(request.caller, request.body)
    const recorded = opts.onIssued?.(request, issued)
    if (recorded !== undefined) await recorded
    void reply.header('cache-control', 'no-store')
    const body = defaultBody(issued, now())
    if (request.format === 'ali-oss') return body
    const shaped = shapeFor(request.format, body)
    return reply.type('application/json; charset=utf-8').send(reply.serializeInput(shaped.body, shaped.schema))
  })
}
