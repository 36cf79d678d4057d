// Prepare once at start: the parsed config plus the environment become everything the
// app needs — the compiled grants, each issuer's keys (secrets read, PEMs checked), the
// fleet's settings (Redis password, cache keys) — each checked here and only here.
// Any problem is one ConfigError line (the server prints it and exits 2) before a
// socket opens. server.ts, the tests and the dev stack all go through this step, and
// buildApp takes its result: nothing below reads process.env.
import type { Config } from './config/schema.js'
import { ConfigError } from './config/error.js'
import { checkEnvironment } from './config/validate.js'
import { compileGrants, isHttpsOrLoopback, type CompiledGrants } from './grants/compile.js'
import { issuerKeys, type PreparedIssuer } from './auth/issuer-keys.js'
import { sharedStateSettings, type SharedStateSettings } from './redis/settings.js'

export interface Prepared {
  readonly config: Config
  /** Every grant rule passed (grants/compile.ts). */
  readonly grants: CompiledGrants
  readonly issuers: readonly PreparedIssuer[]
  /** Redis and the fleet's keys and budget; undefined without `redis`. */
  readonly fleet: SharedStateSettings | undefined
  /** Each callback grant's forward secret (signing.callback.forwardSecretEnv): signs tickets and forwarded events. */
  readonly callbackSecrets: ReadonlyMap<string, Buffer>
}

/** A forwarded event's HMAC key must be at least this long (the HMAC's own block of safety). */
export const CALLBACK_SECRET_MIN_BYTES = 32

export type Environment = Readonly<Record<string, string | undefined>>

export function prepare (config: Config, env: Environment): Prepared {
  return settle(config, env)
}

/**
 * The same checks without the environment (`check-config --no-env`, for a CI job where
 * the secrets are absent): grant rules and static keys only; the secrets, the Redis
 * password and the cache keys are left unread.
 */
export function checkWithoutEnvironment (config: Config): void {
  settle(config, undefined)
}

function settle (config: Config, env: Environment | undefined): Prepared {
  if (env !== undefined) {
    const problem = checkEnvironment(config, env)
    if (problem !== undefined) throw new ConfigError(`config: ${problem}`)
  }
  const grants = compileGrants(config)
  const issuers = config.issuers.flatMap((issuer, i) => env === undefined && issuer.secretEnv !== undefined
    ? []
    : [{ config: issuer, keys: issuerKeys(issuer, `issuers[${i}]`, env ?? {}, config.server.requestTimeoutMs) }])
  for (const [i, prefix] of config.uploads.callbackKeyUrlPrefixes.entries()) {
    if (!isHttpsOrLoopback(prefix)) throw new ConfigError(`config: uploads.callbackKeyUrlPrefixes[${i}]: must be https (plain http only on a loopback address, for development)`)
  }
  return { config, grants, issuers, fleet: env === undefined ? undefined : sharedStateSettings(config, env), callbackSecrets: callbackSecrets(config, env) }
}

function callbackSecrets (config: Config, env: Environment | undefined): ReadonlyMap<string, Buffer> {
  const out = new Map<string, Buffer>()
  if (env === undefined) return out
  for (const [i, g] of config.grants.entries()) {
    const name = g.signing?.callback?.forwardSecretEnv
    if (name === undefined) continue
    const value = env[name]
    const secret = Buffer.from(value ?? '', 'utf8')
    if (secret.length < CALLBACK_SECRET_MIN_BYTES) {
      throw new ConfigError(`config: grants[${i}].signing.callback.forwardSecretEnv: the environment variable ${name} must hold at least ${CALLBACK_SECRET_MIN_BYTES} bytes${value === undefined ? ' (it is not set)' : ''}`)
    }
    out.set(g.name, secret)
  }
  return out
}
