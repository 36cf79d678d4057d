// The one configuration schema. The type the rest of the code uses is derived from it,
// so a key cannot exist in one and not the other. Rules across issuers that JSON Schema
// cannot say live in validate.ts; every rule about grants (issuers named, templates,
// policy size, margins, shared directories) lives in grants/compile.ts. A `description`
// is what a config error tells the operator was expected, so it is written in plain words.
import { Type, type Static } from '@sinclair/typebox'
import { ACTIONS, BUCKET_PATTERN, MAX_DURATION_SECONDS, MIN_DURATION_SECONDS, NAME_PATTERN, type Action as CoreAction } from '../core/index.js'

const Name = Type.String({ pattern: NAME_PATTERN, description: 'a lowercase name: 1-63 of a-z 0-9 _ -, starting with a letter or digit' })
const EnvName = (description: string): ReturnType<typeof Type.String> => Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', description })
/** A Redis node as host:port (a name, an IPv4 address or a bracketed IPv6 address). */
const HostPort = Type.String({ pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+):[0-9]{1,5}$', description: 'host:port, e.g. 10.0.0.1:26379' })
const Url = Type.String({ pattern: '^https?://[^\\s/]+(/\\S*)?$', description: 'an absolute http(s) URL' })

export { ACTIONS }
export const Action = Type.Union(ACTIONS.map((a) => Type.Literal(a)))
export type Action = CoreAction

export const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512'] as const

export const IssuerSchema = Type.Object({
  name: Name,
  issuer: Type.String({ minLength: 1, maxLength: 512, description: 'exact `iss` claim' }),
  audience: Type.String({ minLength: 1, maxLength: 512, description: 'exact `aud` the token must carry' }),
  jwksUri: Type.Optional(Url),
  publicKey: Type.Optional(Type.String({ pattern: '-----BEGIN PUBLIC KEY-----', description: 'a public key in SPKI PEM form (-----BEGIN PUBLIC KEY-----)' })),
  secretEnv: Type.Optional(Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', description: 'the name of an environment variable (A-Z 0-9 _) holding the HMAC secret' })),
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
  contentTypes: Type.Optional(Type.Array(Type.String({ pattern: MEDIA_TYPE }), { minItems: 1, maxItems: 32, uniqueItems: true })),
  /**
   * Who names a form's key. `unique`: the service, `<directory><random id>/<fileName>`,
   * pinned with eq and x-oss-forbid-overwrite (one form, one object, once; PUT URLs
   * cannot overwrite either). `caller`: the caller, anywhere in its directory.
   */
  keys: Type.Union([Type.Literal('unique'), Type.Literal('caller')], { default: 'unique', description: '"unique" (the service picks each form\'s key; nothing is overwritten) or "caller"' }),
  /**
   * OSS's upload callback: every form carries it (pinned), OSS posts to `url` once the
   * object has landed, and the service verifies it and forwards the event to
   * `forwardUrl`, signed with the secret in `forwardSecretEnv`.
   */
  callback: Type.Optional(Type.Object({
    url: Type.String({ pattern: '^https?://[^\\s/]+/\\S*$', description: 'where OSS posts (this service\'s POST /uploads/callback, as the public reaches it)' }),
    forwardUrl: Url,
    forwardSecretEnv: Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', description: 'the name of an environment variable holding the HMAC key of forwarded events (at least 32 bytes)' })
  }, { additionalProperties: false }))
}, { additionalProperties: false })

export const GrantSchema = Type.Object({
  name: Name,
  issuers: Type.Array(Name, { minItems: 1, uniqueItems: true }),
  /** Claims that must equal these values (or, for array claims such as `scope`, contain them). */
  when: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_:.-]{0,63}$' }), Type.String({ minLength: 1, maxLength: 256 }))),
  roleArn: Type.String({ pattern: '^acs:ram::[0-9]{1,32}:role/[A-Za-z0-9.-]{1,64}$', description: 'a role ARN: acs:ram::<account-id>:role/<role-name>' }),
  bucket: Type.String({ pattern: BUCKET_PATTERN, description: 'an OSS bucket name: 3-63 of a-z 0-9 -, not starting or ending with -' }),
  region: Type.String({ pattern: '^[a-z]{2}-[a-z0-9-]{2,40}$', description: 'an OSS region id such as cn-hangzhou' }),
  /** OSS endpoint handed to clients; default https://oss-<region>.aliyuncs.com. */
  endpoint: Type.Optional(Url),
  prefix: Type.String({ minLength: 1, maxLength: 512, pattern: '/$', description: 'directory template, ends with "/"; {claim} or {claim:sha256} placeholders' }),
  actions: Type.Array(Action, { minItems: 1, uniqueItems: true }),
  durationSeconds: Type.Integer({ minimum: MIN_DURATION_SECONDS, maximum: MAX_DURATION_SECONDS }),
  /** Passed to AssumeRole as ExternalId when the role's trust policy asks for one. */
  externalId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9=,.@:/-]{2,1224}$', description: '2-1224 of A-Z a-z 0-9 = , . @ : / -' })),
  /**
   * The operator's statement that this grant's directory is meant to overlap other
   * grants' callers (an admin reading every home, say); without it such overlaps are
   * refused at load.
   */
  shared: Type.Optional(Type.Boolean()),
  /**
   * Passed to AssumeRole as SourceIdentity: the end user in ActionTrail, kept through
   * role chaining. Placeholders as in `prefix`, inline; checked in grants/compile.ts.
   */
  sourceIdentity: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'a SourceIdentity template such as {sub} or app.{sub:sha256}: A-Z a-z 0-9 _ + = , . @ - and {claim}, {claim:sha256}, {issuer} placeholders' })),
  signing: Type.Optional(SigningSchema)
}, { additionalProperties: false })

export const ConfigSchema = Type.Object({
  sts: Type.Object({
    endpoint: Type.String({ pattern: '^https?://[^\\s/]+/?$', default: 'https://sts.aliyuncs.com', description: 'an STS endpoint URL: scheme and host[:port], no path' }),
    timeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 3000, description: 'timeout of one AssumeRole call' }),
    /** Overall deadline for one request's upstream work, retries included. */
    deadlineMs: Type.Integer({ minimum: 200, maximum: 120_000, default: 5000 }),
    maxAttempts: Type.Integer({ minimum: 1, maximum: 5, default: 3 }),
    backoffBaseMs: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
    backoffMaxMs: Type.Integer({ minimum: 1, maximum: 60_000, default: 2000 }),
    /** Ceiling on AssumeRole calls per second from this instance (the account allows ~100/s in all). */
    maxCallsPerSecond: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    /** With `redis`: AssumeRole calls per second for all replicas together (keep it below the account's limit). */
    fleetMaxCallsPerSecond: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    /** Counts requests (retries included), not attempts; see src/alicloud/upstream/breaker.ts. */
    breaker: Type.Object({
      failureRatio: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.5, description: 'share of failed requests in the window that opens the circuit' }),
      minimumRequests: Type.Integer({ minimum: 2, maximum: 100_000, default: 10, description: 'requests the window must hold before the ratio counts' }),
      windowMs: Type.Integer({ minimum: 1000, maximum: 600_000, default: 30_000, description: 'rolling window of request outcomes' }),
      openMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 2000, description: 'first open period, then one probe' }),
      maxOpenMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000, description: 'the open period doubles while probes fail, up to this (never below openMs)' })
    }, { additionalProperties: false, default: {} })
  }, { additionalProperties: false, default: {} }),
  issuers: Type.Array(IssuerSchema, { minItems: 1 }),
  grants: Type.Array(GrantSchema, { minItems: 1 }),
  cache: Type.Object({
    maxEntries: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 100_000, description: '0 disables caching' }),
    minRemainingSeconds: Type.Integer({ minimum: 0, maximum: 43_000, default: 1200 }),
    /** With `redis`: env var holding comma-separated base64 32-byte keys; the first encrypts, all decrypt. */
    encryptionKeysEnv: Type.Optional(Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', description: 'env var with the shared cache keys' }))
  }, { additionalProperties: false, default: {} }),
  /**
   * Shared state for a fleet of replicas; absent = each replica on its own. Exactly one
   * of `url` (standalone, or a Tair/ApsaraDB proxy endpoint), `sentinels` with
   * `sentinelName`, or `clusterNodes` (validate.ts). Credentials come only from the
   * environment: a URL is never an options channel.
   */
  redis: Type.Optional(Type.Object({
    url: Type.Optional(Type.String({ pattern: '^rediss?://[^\\s]+$', description: 'redis[s]://host[:port][/db]: no user, password or query (use usernameEnv and passwordEnv)' })),
    sentinels: Type.Optional(Type.Array(HostPort, { minItems: 1, maxItems: 16, uniqueItems: true })),
    sentinelName: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'the master name the Sentinels monitor (e.g. mymaster)' })),
    clusterNodes: Type.Optional(Type.Array(HostPort, { minItems: 1, maxItems: 64, uniqueItems: true })),
    usernameEnv: Type.Optional(EnvName('env var holding the Redis ACL user name')),
    passwordEnv: Type.Optional(EnvName('env var holding the Redis password')),
    sentinelPasswordEnv: Type.Optional(EnvName('env var holding the Sentinels\' password (default: passwordEnv)')),
    /** TLS to Sentinels and the master, or to every cluster node; a URL says rediss:// instead. */
    tls: Type.Boolean({ default: false }),
    /** With TLS: the CA (PEM) that Redis's certificate must chain to, instead of the public roots (ApsaraDB's, or a private CA's). */
    tlsCaEnv: Type.Optional(EnvName('env var holding the PEM CA certificate(s) Redis\'s TLS certificate must chain to')),
    keyPrefix: Type.String({ minLength: 1, maxLength: 64, default: 'stsv:' }),
    /** Every Redis command ends within this; a slow Redis counts as an unreachable one. */
    commandTimeoutMs: Type.Integer({ minimum: 10, maximum: 10_000, default: 500 })
  }, { additionalProperties: false })),
  rateLimit: Type.Object({
    max: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 60, description: 'requests per caller per window' }),
    timeWindowMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000 }),
    /** Each caller's budget of upstream (AssumeRole) calls, counted on cache misses only; max 0 = no limit. */
    upstreamPerCaller: Type.Object({
      max: Type.Integer({ minimum: 0, maximum: 100_000, default: 10 }),
      timeWindowMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000 })
    }, { additionalProperties: false, default: {} })
  }, { additionalProperties: false, default: {} }),
  /** Upload callbacks (grants[].signing.callback). */
  uploads: Type.Object({
    /** Where OSS's callback public keys may be fetched from; a key URL outside them is refused unfetched. */
    callbackKeyUrlPrefixes: Type.Array(Type.String({ pattern: '^https?://[^\\s/]+/\\S*$', description: 'a URL prefix ending with a path, such as https://gosspublic.alicdn.com/' }), { default: ['https://gosspublic.alicdn.com/'], minItems: 1, uniqueItems: true })
  }, { additionalProperties: false, default: {} }),
  cors: Type.Object({
    origins: Type.Array(Type.String({ pattern: '^https?://[^\\s/*]+$', description: 'an origin such as https://app.example.com (scheme and host, no path, no wildcard)' }), { default: [], uniqueItems: true })
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
    port: Type.Integer({ minimum: 0, maximum: 65_535, default: 0 }),
    /** The address of that listener; default: the address the server listens on (`HOST`). */
    host: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\s/]+$' }))
  }, { additionalProperties: false, default: {} })
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>
export type IssuerConfig = Static<typeof IssuerSchema>
export type GrantConfig = Static<typeof GrantSchema>

/** Keys that were replaced: the loader names the replacement instead of "unknown key". */
export const REPLACED_KEYS: Readonly<Record<string, string>> = {
  'sts.breaker.failureThreshold': 'sts.breaker.failureRatio and sts.breaker.minimumRequests (the breaker counts failed requests in a window, not consecutive attempts)',
  'sts.breaker.resetTimeoutMs': 'sts.breaker.openMs and sts.breaker.maxOpenMs (the open period starts short and grows while probes fail)'
}
