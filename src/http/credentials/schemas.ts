// The request and response schemas of POST /credentials, one per format. They are the
// security boundary: each lists every field, so serialisation drops any other and
// nothing can slip into a response by accident. openapi.yaml restates them and
// test/openapi.test.ts holds the two equal.
import { Type, type Static } from '@sinclair/typebox'
import { Action } from '../../config/schema.js'
import { RefusalReason } from '../../auth/refusal.js'
import { ErrorCode } from '../../errors.js'

export const CredentialsRequest = Type.Object({
  grant: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' })),
  prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  actions: Type.Optional(Type.Array(Action, { minItems: 1, maxItems: 4, uniqueItems: true })),
  durationSeconds: Type.Optional(Type.Integer({ minimum: 900, maximum: 43_200 }))
}, { additionalProperties: false })
export type CredentialsRequest = Static<typeof CredentialsRequest>

/** The default (`ali-oss`) shape. */
export const CredentialsResponse = Type.Object({
  accessKeyId: Type.String(),
  accessKeySecret: Type.String(),
  securityToken: Type.String(),
  expiration: Type.String({ format: 'date-time' }),
  /**
   * Whole seconds from now until the client must fetch new credentials at the latest:
   * the time left before `expiration` less REFRESH_LEAD_SECONDS, never negative.
   * ali-oss's `refreshSTSTokenInterval` is this times 1000.
   */
  refreshAfterSeconds: Type.Integer({ minimum: 0 }),
  bucket: Type.String(),
  region: Type.String(),
  /** ali-oss's form of the region (`oss-cn-hangzhou`), for `new OSS({ region })`. */
  ossRegion: Type.String(),
  endpoint: Type.String(),
  prefix: Type.String(),
  actions: Type.Array(Action)
}, { additionalProperties: false })
export type CredentialsResponse = Static<typeof CredentialsResponse>

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
  code: ErrorCode,
  error: Type.String(),
  message: Type.String(),
  /** Why a token was refused (401 only). */
  reason: Type.Optional(RefusalReason)
}, { additionalProperties: false })

/** The OSS Android/iOS SDKs' "STS app server" shape. */
export const OssAppServerResponse = Type.Object({
  StatusCode: Type.Literal(200),
  AccessKeyId: Type.String(),
  AccessKeySecret: Type.String(),
  SecurityToken: Type.String(),
  Expiration: Type.String({ format: 'date-time' }),
  // What the grant decided, so that the app need not hard-code it (the SDKs ignore extra fields).
  Bucket: Type.String(),
  Region: Type.String(),
  Endpoint: Type.String(),
  Prefix: Type.String()
}, { additionalProperties: false })

export const OssAppServerError = Type.Object({
  StatusCode: Type.Integer({ minimum: 400, maximum: 599 }),
  ErrorCode,
  ErrorMessage: Type.String()
}, { additionalProperties: false })

/** What @alicloud/credentials' ALIBABA_CLOUD_CREDENTIALS_URI provider reads. */
export const CredentialsUriResponse = Type.Object({
  Code: Type.Literal('Success'),
  AccessKeyId: Type.String(),
  AccessKeySecret: Type.String(),
  SecurityToken: Type.String(),
  Expiration: Type.String({ format: 'date-time' })
}, { additionalProperties: false })
