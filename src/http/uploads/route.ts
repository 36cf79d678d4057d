// POST /uploads/form and POST /uploads/url: signed uploads into the caller's directory.
// The caller surface (caller-surface.ts) authenticates the caller before the body is
// parsed and owns every guard; this family only signs. Registered under `/uploads`, so
// its CORS preflight route is OPTIONS /uploads/*.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { MissingToken } from '../../errors.js'
import type { Caller } from '../../auth/caller.js'
import type { Signer, SignedFormResult, SignedUrlResult } from '../../sign.js'
import type { CallerRoutes } from '../caller-surface.js'
import { ErrorResponse } from '../schemas.js'
import { UploadFormRequest, UploadFormResponse, UploadUrlRequest, UploadUrlResponse } from './schemas.js'
import { formBody, urlBody } from './bodies.js'
import { keptBytes } from '../kept-bytes.js'

const JSON_TYPE = 'application/json; charset=utf-8'

export interface UploadsRouteOptions {
  signer: Signer
  /** Records the signing; the answer waits for what it returns (the audit line written). */
  onSigned?: (request: FastifyRequest, caller: Caller, signed: SignedFormResult | SignedUrlResult) => Promise<void> | undefined
}

const responses = (ok: unknown) => ({ 200: ok, '4xx': ErrorResponse, '5xx': ErrorResponse })

// A POST without a body asks for the grant's defaults (the form route's fields are all optional).
function emptyBody (request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  if (request.body === undefined || request.body === null) request.body = {}
  done()
}

export function uploadsRoutes (opts: UploadsRouteOptions): CallerRoutes {
  const { signer } = opts

  /** The verified caller; fail closed: without one (a hook removed by mistake) nothing is signed. */
  function callerOf (request: FastifyRequest): Caller {
    const caller = request.caller
    if (caller === null) throw new MissingToken()
    return caller
  }

  // The bytes of a kept answer (sign.ts hands out one frozen answer per caller, request
  // and second): written once, sent as they are to every request it answers.
  const bodies = new WeakMap<SignedFormResult | SignedUrlResult, Buffer>()
  function bytesOf<T extends SignedFormResult | SignedUrlResult> (signed: T, write: (signed: T) => string): string | Buffer {
    if (!Object.isFrozen(signed)) return write(signed)
    let bytes = bodies.get(signed)
    if (bytes === undefined) bodies.set(signed, bytes = keptBytes(write(signed)))
    return bytes
  }

  /** Marks the answer uncacheable and records the signing; the answer waits for what this returns (its audit line written). */
  function record (request: FastifyRequest, reply: FastifyReply, caller: Caller, result: SignedFormResult | SignedUrlResult): Promise<void> | undefined {
    void reply.header('cache-control', 'no-store')
    return opts.onSigned?.(request, caller, result)
  }

  return {
    name: 'uploads',
    prefix: '/uploads',
    plugin: async (app) => {
      app.post('/form', { schema: { body: UploadFormRequest, response: responses(UploadFormResponse) }, preValidation: emptyBody }, async (request, reply) => {
        const caller = callerOf(request)
        // A signing credential in the cache: signed without a promise until the audit line is awaited.
        const form = signer.formCached(caller, request.body as UploadFormRequest) ?? await signer.form(caller, request.body as UploadFormRequest)
        const body = bytesOf(form, formBody)
        const written = record(request, reply, caller, form)
        if (written !== undefined) await written
        return reply.type(JSON_TYPE).send(body)
      })

      app.post('/url', { schema: { body: UploadUrlRequest, response: responses(UploadUrlResponse) }, preValidation: emptyBody }, async (request, reply) => {
        const caller = callerOf(request)
        const url = signer.urlCached(caller, request.body as UploadUrlRequest) ?? await signer.url(caller, request.body as UploadUrlRequest)
        const body = bytesOf(url, urlBody)
        const written = record(request, reply, caller, url)
        if (written !== undefined) await written
        return reply.type(JSON_TYPE).send(body)
      })
    }
  }
}
