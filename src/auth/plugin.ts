// The `auth` plugin: turns an Authorization header into a verified Caller. The issuer
// is chosen by the exact `iss` of the (not yet trusted) payload, so keys are only ever
// fetched for configured issuers; everything else is a 401 before any I/O.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { IssuerConfig } from '../config/schema.js'
import { InvalidToken, KeysUnavailable, MissingToken } from '../errors.js'
import type { KeySource } from './keys.js'
import { openKeySource, type PreparedIssuer } from './issuer-keys.js'
import { bearerToken, decodeToken } from './token.js'
import { describeRefusal, TokenRejected, type TokenRefusal, type TokenRefusalReason } from './refusal.js'
import { checkTimeClaims, createIssuerVerifier, type IssuerVerifier } from './verifier.js'
import { type Caller } from './caller.js'
import { createVerifiedTokens } from './verified-tokens.js'

export interface AuthOptions {
  /** The issuers with their keys settled at start (prepare.ts). */
  issuers: readonly PreparedIssuer[]
  /** `server.maxTokenBytes`: a longer Authorization header is refused before parsing. */
  maxTokenBytes: number
  now: () => number
  /**
   * Called once for every refused token (a malformed Authorization header included),
   * with a reason from the fixed list (for metrics).
   */
  onFailure?: (reason: TokenRefusalReason) => void
}

export interface Authenticator {
  /**
   * The caller of a request whose Authorization header was verified before, checked
   * now (its key still in the set, its time claims against the clock), without a
   * promise; undefined when the header is not remembered. Refuses as authenticate does.
   */
  recall (request: FastifyRequest): Caller | undefined
  authenticate (request: FastifyRequest): Promise<Caller>
}

declare module 'fastify' {
  interface FastifyInstance { auth: Authenticator }
}

async function auth (app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const { now } = opts
  const byIss = new Map<string, { issuer: IssuerConfig, verify: IssuerVerifier }>()
  const sources: KeySource[] = []
  // One store for all issuers: a token is recalled before anything says whose it is.
  const tokens = createVerifiedTokens(now)
  app.addHook('onClose', async () => { for (const s of sources) s.close() })
  for (const prepared of opts.issuers) {
    const issuer = prepared.config
    const keys = openKeySource(prepared, now, app.log)
    sources.push(keys)
    byIss.set(issuer.issuer, { issuer, verify: createIssuerVerifier(issuer, keys, now, tokens) })
    app.lifecycle.addReadinessCheck(`keys:${issuer.name}`, () => keys.ready())
  }
  const fail = opts.onFailure ?? (() => {})

  // Verified tokens are remembered by the whole Authorization header value: the header
  // decides the token (bearerToken is a pure function of it), so a header seen before
  // needs no parsing, no hash and no signature (verified-tokens.ts).
  function recall (request: FastifyRequest): Caller | undefined {
    const header = request.headers.authorization
    if (typeof header !== 'string') return undefined
    const known = tokens.recall(header)
    if (known === undefined) return undefined
    try {
      checkTimeClaims(known.caller.claims, known.issuer, now())
    } catch (err) {
      throw refused(err, known.issuer)
    }
    return known.caller
  }

  app.decorate('auth', {
    recall,
    async authenticate (request: FastifyRequest): Promise<Caller> {
      const known = recall(request)
      if (known !== undefined) return known
      // The issuer, once the token has named a configured one: its name goes in the
      // refusal's log line and its audience in the refusal's words.
      let issuer: IssuerConfig | undefined
      try {
        const header = request.headers.authorization
        const token = bearerToken(header, opts.maxTokenBytes)
        const decoded = decodeToken(token)
        const iss = decoded.payload.iss
        const entry = typeof iss === 'string' ? byIss.get(iss) : undefined
        if (entry === undefined) throw new TokenRejected('issuer')
        issuer = entry.issuer
        return await entry.verify(decoded, header as string)
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
