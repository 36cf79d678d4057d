// The one configuration schema. The type the rest of the code uses is derived from it,
// so a key cannot exist in one and not the other. Cross-field rules that JSON Schema
// cannot say (grants naming issuers, policy size, margins) live in validate.ts.
import { Type, type Static } from '@sinclair/typebox'

const Name = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$', description: 'lowercase identifier' })
const Url = Type.String({ pattern: '^https?://[^\\s/]+(/\\S*)?$', description: 'an absolute http(s) URL' })

export const ACTIONS = ['list', 'read', 'write', 'delete'] as const
export const Action = Type.Union(ACTIONS.map((a) => Type.Literal(a)))
export type Action = Static<typeof Action>

export const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512'] as const

export const IssuerSchema = Type.Object({
  name: Name,
  issuer: Type.String({ minLength: 1, maxLength: 512, description: 'exact `iss` claim' }),
  audience: Type.String({ minLength: 1, maxLength: 512, description: 'exact `aud` the token must carry' }),
  jwksUri: Type.Optional(Url),
  publicKey: Type.Optional(Type.String({ pattern: '-----BEGIN PUBLIC KEY-----', description: 'SPKI PEM' })),
  secretEnv: Type.Optional(Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', description: 'env var holding an HS256 secret' })),
  algorithms: Type.Array(Type.Union(ALGORITHMS.map((a) => Type.Literal(a))), { minItems: 1, uniqueItems: true }),
  clockToleranceSeconds: Type.Integer({ minimum: 0, maximum: 300, default: 30 }),
  /** Reject tokens whose `iat` is older than this (0 = no limit beyond `exp`). */
  maxTokenAgeSeconds: Type.Integer({ minimum: 0, maximum: 31_536_000, default: 0 }),
  /** Expected `typ` header, e.g. "at+jwt" for RFC 9068 access tokens; unset = not checked. */
  typ: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  /** How often unknown kids may make the verifier refetch the JWKS. */
  jwksRefetchIntervalSeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
  jwksCacheTtlSeconds: Type.Integer({ minimum: 60, maximum: 86_400, default: 600 })
}, { additionalProperties: false })

/** PostObject's own limit: one form upload is at most 5 GiB. */
export const SIGNING_MAX_BYTES = 5 * 1024 * 1024 * 1024
/** A media type `type/subtype` (RFC 6838 restricted names, no parameters), compared as written. */
export const MEDIA_TYPE = '^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$'

/** Signed uploads (POST /uploads/form, /uploads/url) for a grant; absent = refused with 403. */
export const SigningSchema = Type.Object({
  /** Upper bound of a form's content-length-range. */
  maxBytes: Type.Integer({ minimum: 1, maximum: SIGNING_MAX_BYTES, default: 104_857_600 }),
  /** Lifetime of a signed form or URL. */
  expiresSeconds: Type.Integer({ minimum: 60, maximum: 3600, default: 600 }),
  /** Allow-list of Content-Types; absent = any. */
  contentTypes: Type.Optional(Type.Array(Type.String({ pattern: MEDIA_TYPE }), { minItems: 1, maxItems: 32, uniqueItems: true }))
}, { additionalProperties: false })

export const GrantSchema = Type.Object({
  name: Name,
  issuers: Type.Array(Name, { minItems: 1, uniqueItems: true }),
  /** Claims that must equal these values (or, for array claims such as `scope`, contain them). */
  when: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_:.-]{0,63}$' }), Type.String({ minLength: 1, maxLength: 256 }))),
  roleArn: Type.String({ pattern: '^acs:ram::[0-9]{1,32}:role/[A-Za-z0-9.-]{1,64}$', description: 'acs:ram::<account-id>:role/<role-name>' }),
  bucket: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$', description: 'OSS bucket name: 3-63 of a-z 0-9 -, not starting or ending with -' }),
  region: Type.String({ pattern: '^[a-z]{2}-[a-z0-9-]{2,40}$', description: 'OSS region id such as cn-hangzhou' }),
  /** OSS endpoint handed to clients; default https://oss-<region>.aliyuncs.com. */
  endpoint: Type.Optional(Url),
  prefix: Type.String({ minLength: 1, maxLength: 512, pattern: '/$', description: 'directory template, ends with "/"; {claim} or {claim:sha256} placeholders' }),
  actions: Type.Array(Action, { minItems: 1, uniqueItems: true }),
  durationSeconds: Type.Integer({ minimum: 900, maximum: 43_200 }),
  /** Passed to AssumeRole as ExternalId when the role's trust policy asks for one. */
  externalId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9=,.@:/-]{2,1224}$' })),
  signing: Type.Optional(SigningSchema)
}, { additionalProperties: false })

export const ConfigSchema = Type.Object({
  sts: Type.Object({
    endpoint: Type.String({ pattern: '^https?://[^\\s/]+/?$', default: 'https://sts.aliyuncs.com', description: 'STS endpoint URL (scheme and host[:port])' }),
    timeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 3000, description: 'timeout of one AssumeRole call' }),
    /** Overall deadline for one request's upstream work, retries included. */
    deadlineMs: Type.Integer({ minimum: 200, maximum: 120_000, default: 5000 }),
    maxAttempts: Type.Integer({ minimum: 1, maximum: 5, default: 3 }),
    backoffBaseMs: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
    backoffMaxMs: Type.Integer({ minimum: 1, maximum: 60_000, default: 2000 }),
    /** Ceiling on AssumeRole calls per second from this instance (the account allows ~100/s in all). */
    maxCallsPerSecond: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    breaker: Type.Object({
      failureThreshold: Type.Integer({ minimum: 1, maximum: 1000, default: 5 }),
      resetTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 })
    }, { additionalProperties: false, default: {} })
  }, { additionalProperties: false, default: {} }),
  issuers: Type.Array(IssuerSchema, { minItems: 1 }),
  grants: Type.Array(GrantSchema, { minItems: 1 }),
  cache: Type.Object({
    maxEntries: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 100_000, description: '0 disables caching' }),
    minRemainingSeconds: Type.Integer({ minimum: 0, maximum: 43_000, default: 1200 })
  }, { additionalProperties: false, default: {} }),
  rateLimit: Type.Object({
    max: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 60, description: 'requests per caller per window' }),
    timeWindowMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000 })
  }, { additionalProperties: false, default: {} }),
  cors: Type.Object({
    origins: Type.Array(Type.String({ pattern: '^https?://[^\\s/*]+$' }), { default: [], uniqueItems: true })
  }, { additionalProperties: false, default: {} }),
  server: Type.Object({
    bodyLimitBytes: Type.Integer({ minimum: 256, maximum: 1_048_576, default: 4096 }),
    maxHeaderBytes: Type.Integer({ minimum: 1024, maximum: 65_536, default: 16_384 }),
    maxTokenBytes: Type.Integer({ minimum: 256, maximum: 65_536, default: 8192 }),
    requestTimeoutMs: Type.Integer({ minimum: 1000, maximum: 300_000, default: 15_000 }),
    headersTimeoutMs: Type.Integer({ minimum: 1000, maximum: 300_000, default: 10_000 }),
    keepAliveTimeoutMs: Type.Integer({ minimum: 1000, maximum: 300_000, default: 65_000 }),
    shutdownGraceMs: Type.Integer({ minimum: 0, maximum: 600_000, default: 25_000 }),
    trustProxy: Type.Union([Type.Boolean(), Type.Integer({ minimum: 1, maximum: 10 }), Type.String()], { default: false }),
    maxEventLoopDelayMs: Type.Integer({ minimum: 0, maximum: 10_000, default: 1000, description: '0 disables load shedding' })
  }, { additionalProperties: false, default: {} }),
  metrics: Type.Object({
    enabled: Type.Boolean({ default: true }),
    /** Serve /metrics on this port instead of the main one (0 = main port). */
    port: Type.Integer({ minimum: 0, maximum: 65_535, default: 0 })
  }, { additionalProperties: false, default: {} })
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>
export type IssuerConfig = Static<typeof IssuerSchema>
export type GrantConfig = Static<typeof GrantSchema>
export type SigningConfig = Static<typeof SigningSchema>

/** What tests and callers may hand in: defaults filled by `parseConfig`. */
export type ConfigInput = unknown
