// Rules about issuers that the schema cannot express (every rule about grants lives in
// grants/compile.ts). Each returns the first problem as "<path>: <what is wrong>", or
// undefined when the issuers are sound.
import { HMAC_SECRET_MIN_BYTES } from '../core/index.js'
import type { Config } from './schema.js'

export function checkIssuers (config: Pick<Config, 'issuers'>): string | undefined {
  const names = new Map<string, number>()
  const issValues = new Map<string, number>()
  for (const [i, iss] of config.issuers.entries()) {
    const at = `issuers[${i}]`
    const sameName = names.get(iss.name)
    if (sameName !== undefined) return `${at}.name: the name "${iss.name}" is used twice (also issuers[${sameName}])`
    names.set(iss.name, i)
    // Tokens are matched to an issuer by their exact `iss`; a second entry would
    // silently replace the first and turn all of its callers away.
    const sameIss = issValues.get(iss.issuer)
    if (sameIss !== undefined) {
      return `${at}.issuer: issuers[${sameIss}] ("${config.issuers[sameIss]?.name ?? ''}") already has this iss; each iss may appear once (merge their settings or list both names in the grants)`
    }
    issValues.set(iss.issuer, i)

    const sources = [iss.jwksUri, iss.publicKey, iss.secretEnv].filter((s) => s !== undefined)
    if (sources.length !== 1) return `${at}: exactly one of jwksUri, publicKey or secretEnv is required`
    const hmac = iss.algorithms.filter((a) => a.startsWith('HS'))
    if (iss.secretEnv !== undefined && hmac.length !== iss.algorithms.length) {
      return `${at}.algorithms: an issuer with secretEnv may only use HS256/HS384/HS512`
    }
    if (iss.secretEnv === undefined && hmac.length > 0) {
      // A public key used as an HMAC secret is the classic algorithm-confusion attack.
      return `${at}.algorithms: HS* algorithms need secretEnv; they are refused with public keys`
    }
  }
  return undefined
}

/**
 * The environment a config names: every `secretEnv` variable must be set and long
 * enough. Checked at load so that a missing secret is a config error (exit 2), not a
 * failure half-way through start-up. The message names the variable, never its value.
 */
export function checkEnvironment (config: Pick<Config, 'issuers'>, env: Readonly<Record<string, string | undefined>>): string | undefined {
  for (const [i, iss] of config.issuers.entries()) {
    if (iss.secretEnv === undefined) continue
    const value = env[iss.secretEnv]
    if (value === undefined || value === '') {
      return `issuers[${i}].secretEnv: the environment variable ${iss.secretEnv} is not set`
    }
    if (Buffer.byteLength(value, 'utf8') < HMAC_SECRET_MIN_BYTES) {
      return `issuers[${i}].secretEnv: the environment variable ${iss.secretEnv} must hold a secret of at least ${HMAC_SECRET_MIN_BYTES} bytes`
    }
  }
  return undefined
}

/** Shared state: a fleet on Redis needs encrypted entries and a fleet budget, and no password in a URL. */
export function redisProblem (config: Config): string | undefined {
  if (config.redis === undefined) return undefined
  let url: URL
  try {
    url = new URL(config.redis.url)
  } catch {
    return 'redis.url: not a valid URL'
  }
  // Secrets belong in passwordEnv: a URL ends up in config maps, logs and process lists.
  if (url.password !== '') return 'redis.url: a password inside the URL is refused; use redis.passwordEnv'
  if (config.cache.encryptionKeysEnv === undefined) return 'cache.encryptionKeysEnv: required when redis is set (entries in Redis are encrypted)'
  if (config.sts.fleetMaxCallsPerSecond === undefined) return 'sts.fleetMaxCallsPerSecond: required when redis is set (the AssumeRole budget of all replicas together)'
  if (config.redis.commandTimeoutMs >= config.sts.deadlineMs) return 'redis.commandTimeoutMs: must be below sts.deadlineMs'
  return undefined
}
