// The response schema of GET /grants. It lists every field, so serialisation drops any
// other: no role ARN, external id, `when` condition or directory template can reach a
// caller. openapi.yaml restates it and test/openapi.test.ts holds the two equal.
import { Type, type Static } from '@sinclair/typebox'
import { Action } from '../../config/schema.js'
import { GrantName } from '../schemas.js'

export const GrantSigning = Type.Object({
  /** The largest upload a signed form admits, in bytes. */
  maxBytes: Type.Integer({ minimum: 1 }),
  /** How long a signed form or URL stays valid, in seconds. */
  expiresSeconds: Type.Integer({ minimum: 1 }),
  /** The Content-Types an upload may have; absent = any. */
  contentTypes: Type.Optional(Type.Array(Type.String()))
}, { additionalProperties: false })

export const AvailableGrant = Type.Object({
  name: GrantName,
  bucket: Type.String(),
  region: Type.String(),
  endpoint: Type.String(),
  /** This caller's directory under the grant; ends with `/`. */
  prefix: Type.String(),
  actions: Type.Array(Action),
  /** The durationSeconds a request may ask for; max is the default. */
  durationSeconds: Type.Object({
    min: Type.Integer({ minimum: 1 }),
    max: Type.Integer({ minimum: 1 })
  }, { additionalProperties: false }),
  /** Present when the grant signs uploads (POST /uploads/form, /uploads/url). */
  signing: Type.Optional(GrantSigning)
}, { additionalProperties: false })

export const UnusableGrant = Type.Object({
  name: GrantName,
  /** Why this caller's directory cannot be made: the claim's name, never its value. */
  reason: Type.String()
}, { additionalProperties: false })

export const GrantsResponse = Type.Object({
  grants: Type.Array(AvailableGrant),
  unusable: Type.Array(UnusableGrant)
}, { additionalProperties: false })
export type GrantsResponse = Static<typeof GrantsResponse>
