// The schemas every caller route shares: the one error body (the default shape of every
// refusal, on every route) and the grant name a request may pick. openapi.yaml restates
// them (components Error and the `grant` properties); test/openapi.test.ts holds them equal.
import { Type } from '@sinclair/typebox'
import { ErrorCode } from '../errors.js'
import { RefusalReason } from '../auth/refusal.js'

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
  code: ErrorCode,
  error: Type.String(),
  message: Type.String(),
  /** Why a token was refused (401 only). */
  reason: Type.Optional(RefusalReason)
}, { additionalProperties: false })

/** A grant's name as a request names it (grants/ checks it exists and is the caller's). */
export const GrantName = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' })
