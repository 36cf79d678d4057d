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

/**
 * Shared state: one way to reach Redis (a URL, Sentinels, or cluster seed nodes),
 * credentials only from the environment, encrypted entries and a fleet budget.
 */
export function redisProblem (config: Config): string | undefined {
  const r = config.redis
  if (r === undefined) return undefined
  const modes = [r.url !== undefined ? 'url' : undefined, r.sentinels !== undefined ? 'sentinels' : undefined, r.clusterNodes !== undefined ? 'clusterNodes' : undefined].filter((m) => m !== undefined)
  if (modes.length !== 1) {
    return `redis: exactly one of url, sentinels (with sentinelName) or clusterNodes is required${modes.length > 1 ? `; found ${modes.join(' and ')}` : ''}`
  }
  if (r.url !== undefined) {
    const problem = urlProblem(r.url)
    if (problem !== undefined) return `redis.url: ${problem}`
    // rediss:// already says TLS; a second switch could only contradict it.
    if (r.tls) return 'redis.tls: only for sentinels or clusterNodes; with url, write rediss:// for TLS'
  }
  if (r.sentinels !== undefined && r.sentinelName === undefined) return 'redis.sentinelName: required with redis.sentinels (the master name the Sentinels monitor)'
  if (r.sentinels === undefined && r.sentinelName !== undefined) return 'redis.sentinelName: only with redis.sentinels'
  if (r.sentinels === undefined && r.sentinelPasswordEnv !== undefined) return 'redis.sentinelPasswordEnv: only with redis.sentinels'
  if (r.tlsCaEnv !== undefined && !r.tls && r.url?.startsWith('rediss:') !== true) return 'redis.tlsCaEnv: only with TLS (url rediss://, or tls: true with sentinels or clusterNodes)'
  for (const [key, nodes] of [['sentinels', r.sentinels], ['clusterNodes', r.clusterNodes]] as const) {
    for (const [i, node] of (nodes ?? []).entries()) {
      const port = Number(node.slice(node.lastIndexOf(':') + 1))
      if (!(port >= 1 && port <= 65_535)) return `redis.${key}[${i}]: the port must be 1-65535`
    }
  }
  if (config.cache.encryptionKeysEnv === undefined) return 'cache.encryptionKeysEnv: required when redis is set (entries in Redis are encrypted)'
  if (config.sts.fleetMaxCallsPerSecond === undefined) return 'sts.fleetMaxCallsPerSecond: required when redis is set (the AssumeRole budget of all replicas together)'
  if (r.commandTimeoutMs >= config.sts.deadlineMs) return 'redis.commandTimeoutMs: must be below sts.deadlineMs'
  return undefined
}

const CREDENTIALS_HINT = 'use redis.usernameEnv and redis.passwordEnv'

/**
 * A URL is an address, not an options channel: redis[s]://host[:port][/db] only. A
 * password in it ends up in config maps, logs and process lists; a query string would
 * override the client's own settings (?password=, ?keyPrefix=) past every check here.
 */
function urlProblem (text: string): string | undefined {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return 'not a valid URL; write redis[s]://host[:port][/db]'
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return 'write redis[s]://host[:port][/db]'
  if (url.password !== '') return `a password inside the URL is refused; ${CREDENTIALS_HINT}`
  if (url.username !== '') return `a user name inside the URL is refused; ${CREDENTIALS_HINT}`
  if (url.search !== '' || text.includes('?')) return `a query string is refused: the URL is redis[s]://host[:port][/db] only (${CREDENTIALS_HINT} for credentials)`
  if (url.hash !== '' || text.includes('#')) return 'a fragment is refused: the URL is redis[s]://host[:port][/db] only'
  if (url.hostname === '') return 'no host; write redis[s]://host[:port][/db]'
  if (!/^(\/[0-9]{0,5})?$/.test(url.pathname)) return 'the path may only be a database number: redis[s]://host[:port][/db]'
  return undefined
}
