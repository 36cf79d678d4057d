// The `auth` plugin: turns an Authorization header into a verified Caller. The issuer
// is chosen by the exact `iss` of the (not yet trusted) payload, so keys are only ever
// fetched for configured issuers; everything else is a 401 before any I/O.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config, IssuerConfig } from '../config/schema.js'
import { ConfigError } from '../config/load.js'
import { InvalidToken, KeysUnavailable, MissingToken, TokenInQuery } from '../errors.js'
import { JWKS_FETCH_DEADLINE_MS, jwksKeySource, secretKeySource, staticKeySource, type KeyLog, type KeySource } from './keys.js'
import { bearerToken, decodeToken } from './token.js'
import { describeRefusal, TokenRejected, type TokenRefusal, type TokenRefusalReason } from './refusal.js'
import { checkTimeClaims, createIssuerVerifier, type Caller, type IssuerVerifier } from './verifier.js'
import { createVerifiedTokens } from './verified-tokens.js'

export type { Caller } from './verifier.js'

export interface AuthOptions {
  config: Config
  env: Record<string, string | undefined>
  now: () => number
  /**
   * Called once for every refused token (a malformed Authorization header included),
   * with a reason from the fixed list (for metrics).
   */
  onFailure?: (reason: TokenRefusalReason) => void
}

export interface Authenticator {
  authenticate (request: FastifyRequest): Promise<Caller>
}

declare module 'fastify' {
  interface FastifyInstance { auth: Authenticator }
}

const QUERY_TOKEN_NAMES = ['token', 'access_token', 'jwt', 'id_token', 'authorization']

// A key source that cannot work is a configuration error (exit 2 at start, one line).
function keySourceFor (issuer: IssuerConfig, at: string, config: Config, env: Record<string, string | undefined>, now: () => number, log: KeyLog): KeySource {
  if (issuer.jwksUri !== undefined) {
    return jwksKeySource({
      uri: issuer.jwksUri,
      name: issuer.name,
      refreshMs: issuer.jwksCacheTtlSeconds * 1000,
      minRefetchMs: issuer.jwksRefetchIntervalSeconds * 1000,
      // No request waits on keys longer than its own time allows.
      maxWaitMs: Math.min(JWKS_FETCH_DEADLINE_MS, config.server.requestTimeoutMs / 2),
      now,
      log
    })
  }
  if (issuer.publicKey !== undefined) {
    try {
      return staticKeySource(issuer.publicKey, issuer.algorithms)
    } catch (err) {
      throw new ConfigError(`config: ${at}.publicKey: ${(err as Error).message}`)
    }
  }
  const secret = env[issuer.secretEnv ?? '']
  if (secret === undefined || Buffer.byteLength(secret) < 32) {
    throw new ConfigError(`config: ${at}.secretEnv: the environment variable ${issuer.secretEnv ?? ''} must hold a secret of at least 32 bytes`)
  }
  return secretKeySource(secret)
}

async function auth (app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const { config, env, now } = opts
  const byIss = new Map<string, { issuer: IssuerConfig, verify: IssuerVerifier }>()
  const sources: KeySource[] = []
  // One store for all issuers: a token is recalled before anything says whose it is.
  const tokens = createVerifiedTokens(now)
  app.addHook('onClose', async () => { for (const s of sources) s.close() })
  for (const [i, issuer] of config.issuers.entries()) {
    let keys: KeySource
    try {
      keys = keySourceFor(issuer, `issuers[${i}]`, config, env, now, app.log)
    } catch (err) {
      for (const s of sources) s.close() // the app never becomes ready, so onClose may not run
      throw err
    }
    sources.push(keys)
    byIss.set(issuer.issuer, { issuer, verify: createIssuerVerifier(issuer, keys, now, tokens) })
    app.lifecycle.addReadinessCheck(`keys:${issuer.name}`, () => keys.ready())
  }
  const fail = opts.onFailure ?? (() => {})

  app.decorate('auth', {
    async authenticate (request: FastifyRequest): Promise<Caller> {
      const query = request.query as Record<string, unknown> | undefined
      if (query !== undefined && QUERY_TOKEN_NAMES.some((n) => Object.hasOwn(query, n))) throw new TokenInQuery()
      // The issuer, once the token has named a configured one: its name goes in the
      // refusal's log line and its audience in the refusal's words.
      let issuer: IssuerConfig | undefined
      try {
        const token = bearerToken(request.headers.authorization, config.server.maxTokenBytes)
        // A token verified before: no parsing, no hash, no signature (verified-tokens.ts).
        const known = tokens.recall(token)
        if (known !== undefined) {
          issuer = known.issuer
          checkTimeClaims(known.caller.claims, known.issuer, now())
          return known.caller
        }
        const decoded = decodeToken(token)
        const iss = decoded.payload.iss
        const entry = typeof iss === 'string' ? byIss.get(iss) : undefined
        if (entry === undefined) throw new TokenRejected('issuer')
        issuer = entry.issuer
        return await entry.verify(decoded)
      } catch (err) {
        throw refused(err, issuer)
      }
    }
  })

  /** Count the refusal once, and give a 401 its reason and words for the error handler. */
  function refused (err: unknown, issuer: IssuerConfig | undefined): unknown {
    const reason: TokenRefusalReason = err instanceof TokenRejected
      ? err.reason
      : err instanceof KeysUnavailable ? 'keys_unavailable' : 'malformed'
    fail(reason)
    if (err instanceof MissingToken) {
      (err as { refusal?: TokenRefusal }).refusal = { reason }
    } else if (err instanceof InvalidToken) {
      const description = describeRefusal(reason, issuer)
      const refusal: TokenRefusal = { reason, ...(issuer !== undefined ? { issuer: issuer.name } : {}), description }
      Object.assign(err, { refusal, message: `${err.message}: ${description}` })
    }
    return err
  }
}

export default fp(auth, { name: 'auth', fastify: '5.x', dependencies: ['lifecycle'] })
