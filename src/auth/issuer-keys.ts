// Where each issuer's keys come from, decided once at start (prepare.ts) from the
// config and the environment: a static PEM is parsed and checked here, a secret is read
// here (its length was checked by config/validate.ts), and a JWKS issuer gets the
// settings its key source will fetch with. Only the JWKS source is opened later, by
// the auth plugin, because it holds timers that the app must close.
import type { IssuerConfig } from '../config/schema.js'
import { ConfigError } from '../config/error.js'
import { JWKS_FETCH_DEADLINE_MS, jwksKeySource, secretKeySource, staticKeySource, type KeyLog, type KeySource } from './keys.js'

export type IssuerKeys =
  | { kind: 'jwks', uri: string, refreshMs: number, minRefetchMs: number, maxWaitMs: number }
  | { kind: 'static', source: KeySource }

/** An issuer with its keys settled: what the auth plugin is given. */
export interface PreparedIssuer { config: IssuerConfig, keys: IssuerKeys }

/**
 * The keys of issuers[i]. A key that cannot work is a ConfigError naming the key,
 * never its content. `requestTimeoutMs` bounds how long a request may wait on a JWKS.
 */
export function issuerKeys (issuer: IssuerConfig, at: string, env: Readonly<Record<string, string | undefined>>, requestTimeoutMs: number): IssuerKeys {
  if (issuer.jwksUri !== undefined) {
    return {
      kind: 'jwks',
      uri: issuer.jwksUri,
      refreshMs: issuer.jwksCacheTtlSeconds * 1000,
      minRefetchMs: issuer.jwksRefetchIntervalSeconds * 1000,
      // No request waits on keys longer than its own time allows.
      maxWaitMs: Math.min(JWKS_FETCH_DEADLINE_MS, requestTimeoutMs / 2)
    }
  }
  if (issuer.publicKey !== undefined) {
    try {
      return { kind: 'static', source: staticKeySource(issuer.publicKey, issuer.algorithms) }
    } catch (err) {
      throw new ConfigError(`config: ${at}.publicKey: ${(err as Error).message}`)
    }
  }
  const secret = env[issuer.secretEnv ?? '']
  // config/validate.ts checkEnvironment has named the variable when it is unset or short.
  if (secret === undefined) throw new ConfigError(`config: ${at}.secretEnv: the environment variable ${issuer.secretEnv ?? ''} is not set`)
  return { kind: 'static', source: secretKeySource(secret) }
}

/** The issuer's key source, opened (a JWKS source starts fetching on first use). */
export function openKeySource (issuer: PreparedIssuer, now: () => number, log: KeyLog): KeySource {
  const keys = issuer.keys
  if (keys.kind === 'static') return keys.source
  return jwksKeySource({ uri: keys.uri, name: issuer.config.name, refreshMs: keys.refreshMs, minRefetchMs: keys.minRefetchMs, maxWaitMs: keys.maxWaitMs, now, log })
}
