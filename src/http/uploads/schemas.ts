// The request and response schemas of POST /uploads/form and /uploads/url. Responses
// list every field, so serialisation drops anything else: the signing credential's
// secret can never reach a caller by accident (only its signatures and token do, as OSS
// requires in a form or URL).
import { Type, type Static } from '@sinclair/typebox'
import { MEDIA_TYPE, SIGNING_MAX_BYTES } from '../../config/schema.js'
import { GrantName } from '../schemas.js'

const ObjectKey = Type.String({ minLength: 1, maxLength: 1023 })
const ContentType = Type.String({ pattern: MEDIA_TYPE })

export const UploadFormRequest = Type.Object({
  grant: Type.Optional(GrantName),
  key: Type.Optional(ObjectKey),
  /** With signing.keys unique: the last segment of the key the service picks (sanitised; default "upload"). */
  fileName: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  contentType: Type.Optional(ContentType),
  maxBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: SIGNING_MAX_BYTES }))
}, { additionalProperties: false })
export type UploadFormRequest = Static<typeof UploadFormRequest>

export const UploadFormFields = Type.Object({
  key: Type.String(),
  policy: Type.String(),
  'x-oss-signature-version': Type.Literal('OSS4-HMAC-SHA256'),
  'x-oss-credential': Type.String(),
  'x-oss-date': Type.String(),
  'x-oss-security-token': Type.String(),
  success_action_status: Type.Literal('201'),
  'Content-Type': Type.Optional(Type.String()),
  'x-oss-content-type': Type.Optional(Type.String()),
  'x-oss-forbid-overwrite': Type.Optional(Type.Literal('true')),
  callback: Type.Optional(Type.String()),
  'x-oss-signature': Type.String()
}, { additionalProperties: false })

export const UploadFormResponse = Type.Object({
  url: Type.String(),
  fields: UploadFormFields,
  keyPrefix: Type.String(),
  expiration: Type.String({ format: 'date-time' })
}, { additionalProperties: false })

export const UploadUrlRequest = Type.Object({
  grant: Type.Optional(GrantName),
  key: ObjectKey,
  method: Type.Union([Type.Literal('PUT'), Type.Literal('GET')]),
  contentType: Type.Optional(ContentType)
}, { additionalProperties: false })
export type UploadUrlRequest = Static<typeof UploadUrlRequest>

export const UploadUrlResponse = Type.Object({
  url: Type.String(),
  method: Type.Union([Type.Literal('PUT'), Type.Literal('GET')]),
  headers: Type.Object({ 'Content-Type': Type.Optional(Type.String()), 'x-oss-forbid-overwrite': Type.Optional(Type.Literal('true')) }, { additionalProperties: false }),
  expiration: Type.String({ format: 'date-time' })
}, { additionalProperties: false })
