// The audit trail: one JSON line per issuance and per refusal, on a dedicated child
// logger (`"log":"audit"`), so an operator can answer "who got what, for which
// directory" and match ActionTrail records by the AccessKeyId's first characters.
// The child is pinned at info: LOG_LEVEL tunes the service's own lines, never the trail.
// It never carries the secret, the security token or the caller's JWT. An issuance or
// a signing returns when its line is written (log-sink.ts), and the route sends the
// credentials only then.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Issued } from '../vend.js'
import type { Caller } from '../auth/caller.js'
import type { SignedFormResult, SignedUrlResult } from '../sign.js'
import type { CompletedUpload } from '../callback.js'
import { stsTime } from '../core/index.js'
import { auditLogger, keptChild } from './logger.js'
import { sinkOf } from './log-sink.js'

export const ACCESS_KEY_ID_SHOWN = 12
/** (grant, method) lines kept per caller: a caller signs with one or two grants and methods. */
const SIGNED_LINES_PER_CALLER = 8

export interface Audit {
  /** Resolves once the line is written; undefined when the logger writes at once. */
  issued (request: FastifyRequest, issued: Issued): Promise<void> | undefined
  refused (request: FastifyRequest, statusCode: number, code: string): void
  /** The first refusal of a caller the operator denied fleet-wide (once per replica and entry). */
  callerDenied (request: FastifyRequest): void
  /** A signed upload form or URL: what it allows, never its signature, policy or token. */
  uploadSigned (request: FastifyRequest, caller: Caller, signed: SignedFormResult | SignedUrlResult): Promise<void> | undefined
  uploadRefused (request: FastifyRequest, caller: Caller | null, statusCode: number, code: string): void
  /** GET /grants refused (401, 403, 429): nothing was listed. A listing itself hands out nothing and is not audited. */
  grantsRefused (request: FastifyRequest, statusCode: number, code: string): void
  /** A verified upload callback: what landed and for whom (the caller's hashed id), and whether the app got it. */
  uploadCompleted (request: FastifyRequest, event: CompletedUpload, delivered: boolean): Promise<void> | undefined
}

export function createAudit (logger: FastifyBaseLogger): Audit {
  const log = auditLogger(logger)
  const sink = sinkOf(logger)
  // The fields of an issuance line that only change with the issuance (vend.ts hands out
  // one frozen Issued per caller, credential and source) are serialised once, as a pino
  // child's bindings; each request adds its id. The same fields, in another order.
  const issuedLines = new WeakMap<Issued, { caller: Caller | null, line: FastifyBaseLogger }>()
  function issuedLine (request: FastifyRequest, issued: Issued): FastifyBaseLogger {
    const caller = request.caller
    const kept = Object.isFrozen(issued) ? issuedLines.get(issued) : undefined
    if (kept !== undefined && kept.caller === caller) return kept.line
    const line = keptChild(log, {
      event: 'credentials.issued',
      issuer: caller?.issuer,
      subject: caller?.subject,
      grant: issued.grant,
      prefix: issued.prefix,
      actions: issued.actions,
      roleSessionName: issued.roleSessionName,
      durationSeconds: issued.durationSeconds,
      expiration: stsTime(issued.expiration),
      fromCache: issued.fromCache,
      accessKeyIdPrefix: issued.accessKeyId.slice(0, ACCESS_KEY_ID_SHOWN)
    })
    if (Object.isFrozen(issued)) issuedLines.set(issued, { caller, line })
    return line
  }
  // A signing line's fields that only change with the caller, grant and kind, serialised
  // once as a pino child's bindings (a verified caller is one frozen object per token).
  const signedLines = new WeakMap<Caller, Map<string, FastifyBaseLogger>>()
  function signedLine (caller: Caller, signed: SignedFormResult | SignedUrlResult): FastifyBaseLogger {
    const method = 'fields' in signed ? 'POST' : signed.method
    const id = `${method}\n${signed.grant}`
    const kept = Object.isFrozen(caller) ? signedLines.get(caller) : undefined
    const known = kept?.get(id)
    if (known !== undefined) return known
    const line = keptChild(log, { event: 'upload.signed', issuer: caller.issuer, subject: caller.subject, grant: signed.grant, kind: method === 'POST' ? 'form' : 'url', method })
    if (Object.isFrozen(caller)) {
      if (kept === undefined) signedLines.set(caller, new Map([[id, line]]))
      else if (kept.size < SIGNED_LINES_PER_CALLER) kept.set(id, line)
    }
    return line
  }
  return {
    issued (request, issued) {
      issuedLine(request, issued).info({ requestId: request.id }, 'credentials issued')
      return sink?.written()
    },
    uploadSigned (request, caller, signed) {
      const line = signedLine(caller, signed)
      if ('fields' in signed) {
        line.info({
          requestId: request.id,
          keyPrefix: signed.keyPrefix,
          maxBytes: signed.maxBytes,
          contentType: signed.contentType,
          contentTypes: signed.contentTypes,
          expiration: stsTime(signed.expiration),
          fromCache: signed.fromCache
        }, 'upload signed')
      } else {
        line.info({ requestId: request.id, key: signed.key, contentType: signed.headers['Content-Type'], expiration: stsTime(signed.expiration), fromCache: signed.fromCache }, 'upload signed')
      }
      return sink?.written()
    },
    uploadCompleted (request, event, delivered) {
      log.info({
        event: 'upload.completed',
        requestId: request.id,
        grant: event.grant,
        caller: event.caller,
        key: event.key,
        size: event.size,
        contentType: event.contentType,
        etag: event.etag,
        delivered
      }, 'upload completed')
      return sink?.written()
    },
    uploadRefused (request, caller, statusCode, code) {
      log.info({ event: 'upload.refused', requestId: request.id, statusCode, code, issuer: caller?.issuer, subject: caller?.subject }, 'upload refused')
    },
    grantsRefused (request, statusCode, code) {
      log.info({ event: 'grants.refused', requestId: request.id, statusCode, code, issuer: request.caller?.issuer, subject: request.caller?.subject }, 'grants refused')
    },
    callerDenied (request) {
      log.warn({ event: 'caller.denied', requestId: request.id, issuer: request.caller?.issuer, subject: request.caller?.subject }, 'caller denied by the operator: refusing on every route')
    },
    refused (request, statusCode, code) {
      log.info({
        event: 'credentials.refused',
        requestId: request.id,
        statusCode,
        code,
        issuer: request.caller?.issuer,
        subject: request.caller?.subject
      }, 'credentials refused')
    }
  }
}
