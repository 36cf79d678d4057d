// The `auth` plugin: turns an Authorization header into a verified Caller. The issuer
// is chosen by the exact `iss` of the (not yet trusted) payload, so keys are only ever
// fetched for configured issuers; everything else is a 401 before any I/O.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { InvalidToken } from '../errors.js'
import type { KeySource } from './keys.js'
import { openKeySource, type PreparedIssuer } from './issuer-keys.js'
import { bearerToken, decodeToken } from './token.js'
import { createIssuerVerifier, recallCaller, TokenRejected, type Caller, type IssuerVerifier, type VerifyFailureReason } from './verifier.js'
import { createVerifiedTokens } from './verified-tokens.js'

export type { Caller } from './verifier.js'

export interface AuthOptions {
  /** The issuers with their keys settled at start (prepare.ts). */
  issuers: readonly PreparedIssuer[]
  /** `server.maxTokenBytes`: a longer Authorization header is refused before parsing. */
  maxTokenBytes: number
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

async function auth (app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const { now } = opts
  const byIss = new Map<string, IssuerVerifier>()
  const sources: KeySource[] = []
  // One store for all issuers: a token is recalled before anything says whose it is.
  const tokens = createVerifiedTokens(now)
  app.addHook('onClose', async () => { for (const s of sources) s.close() })
  for (const issuer of opts.issuers) {
    const keys = openKeySource(issuer, now, app.log)
    sources.push(keys)
    byIss.set(issuer.config.issuer, createIssuerVerifier(issuer.config, keys, now, tokens))
    app.lifecycle.addReadinessCheck(`keys:${issuer.config.name}`, () => keys.ready())
  }
  const fail = opts.onFailure ?? (() => {})

  app.decorate('auth', {
    async authenticate (request: FastifyRequest): Promise<Caller> {
      let verifier: IssuerVerifier | undefined
      let decoded
      let token: string
      try {
        token = bearerToken(request.headers.authorization, opts.maxTokenBytes)
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
