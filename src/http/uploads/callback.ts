// POST /uploads/callback: where OSS posts once a signed form's object has landed. Not a
// caller route: OSS carries no bearer token and no browser calls it, so it registers
// beside the caller surface, with no CORS and no per-caller limit, and its own body
// handling: the raw text (OSS's signature covers the exact bytes), at most 64 KiB.
// Everything else (signature, ticket, replay, forward) is callback.ts.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { CALLBACK_BODY_MAX_BYTES, createCallbackHandler, type CallbackDeps, type CallbackResult } from '../../callback.js'
import { createCallbackVerifier, type FetchKey } from '../../alicloud/oss-callback.js'
import { ErrorResponse } from '../schemas.js'

export interface CallbackRouteOptions extends Omit<CallbackDeps, 'verifier'> {
  /** `uploads.callbackKeyUrlPrefixes`: where OSS's public keys may be fetched from. */
  allowedPrefixes: readonly string[]
  /** How a public key is fetched (tests); default a bounded HTTPS fetch. */
  fetchKey?: FetchKey | undefined
  /** Records the verified upload (audit line, metric); the answer waits for it. */
  onCompleted?: (request: FastifyRequest, result: CallbackResult) => Promise<void> | undefined
}

function header (request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name]
  return typeof v === 'string' ? v : undefined
}

export default async function callbackRoute (app: FastifyInstance, opts: CallbackRouteOptions): Promise<void> {
  const { allowedPrefixes, fetchKey, onCompleted: _onCompleted, ...deps } = opts
  const handler = createCallbackHandler({ ...deps, verifier: createCallbackVerifier({ allowedPrefixes, ...(fetchKey !== undefined ? { fetchKey } : {}) }) })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: CALLBACK_BODY_MAX_BYTES }, (_req, body, done) => { done(null, body) })
  app.post('/uploads/callback', {
    bodyLimit: CALLBACK_BODY_MAX_BYTES,
    schema: { response: { 200: Type.Object({}, { additionalProperties: true }), '4xx': ErrorResponse, '5xx': ErrorResponse } }
  }, async (request, reply) => {
    const result = await handler.handle({
      url: request.url,
      authorization: header(request, 'authorization'),
      pubKeyUrl: header(request, 'x-oss-pub-key-url'),
      body: typeof request.body === 'string' ? request.body : ''
    })
    const recorded = opts.onCompleted?.(request, result)
    if (recorded !== undefined) await recorded
    void reply.header('cache-control', 'no-store')
    return result.answer
  })
}
