// The `auth` plugin: turns an Authorization header into a verified Caller. The issuer
// is chosen by the exact `iss` of the (not yet trusted) payload, so keys are only ever
// fetched for configured issuers; everything else is a 401 before any I/O.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config, IssuerConfig } from '../config/schema.js'
import { ConfigError } from '../config/load.js'
import { InvalidToken } from '../errors.js'
import { JWKS_FETCH_DEADLINE_MS, jwksKeySource, secretKeySource, staticKeySource, type KeyLog, type KeySource } from './keys.js'
import { bearerToken, decodeToken } from './token.js'
import { createIssuerVerifier, recallCaller, TokenRejected, type Caller, type IssuerVerifier, type VerifyFailureReason } from './verifier.js'
import { createVerifiedTokens } from './verified-tokens.js'

export type { Caller } from './verifier.js'

export interface AuthOptions {
  config: Config
  env: Record<string, string | undefined>
  now: () => number
  /** Called on every refused token, with a bounded reason (for metrics). */
  onFailure?: (reason: VerifyFailureReason | 'malformed' | 'unknown_issuer' | 'missing') => void
}

export interface Authenticator {
  authenticate (request: FastifyRequest): Promise<Caller>
}

declare module 'fastify' {
  interface FastifyInstance { auth: Authenticator }
}

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
  const byIss = new Map<string, IssuerVerifier>()
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
    byIss.set(issuer.issuer, createIssuerVerifier(issuer, keys, now, tokens))
    app.lifecycle.addReadinessCheck(`keys:${issuer.name}`, () => keys.ready())
  }
  const fail = opts.onFailure ?? (() => {})

  app.decorate('auth', {
    async authenticate (request: FastifyRequest): Promise<Caller> {
      let verifier: IssuerVerifier | undefined
      let decoded
      let token: string
      try {
        token = bearerToken(request.headers.authorization, config.server.maxTokenBytes)
      } catch (err) {
        fail((err as { statusCode?: number }).statusCode === 401 && request.headers.authorization === undefined ? 'missing' : 'malformed')
        throw err
      }
      // A token verified before: no parsing, no hash, no signature (verified-tokens.ts).
      try {
        const recalled = recallCaller(tokens, token, now)
        if (recalled !== undefined) return recalled
      } catch (err) {
        fail((err as TokenRejected).reason)
        throw err
      }
      try {
        decoded = decodeToken(token)
        const iss = decoded.payload.iss
        verifier = typeof iss === 'string' ? byIss.get(iss) : undefined
      } catch (err) {
        fail('malformed')
        throw err
      }
      if (verifier === undefined) {
        fail('unknown_issuer')
        throw new InvalidToken()
      }
      try {
        return await verifier(decoded)
      } catch (err) {
        fail(err instanceof TokenRejected ? err.reason : 'keys_unavailable')
        throw err
      }
    }
  })
}

export default fp(auth, { name: 'auth', fastify: '5.x', dependencies: ['lifecycle'] })
