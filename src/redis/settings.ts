// What the shared state needs from the config and the environment (where Redis is,
// its user and passwords, the cache keys), read once at start from the env that
// server.ts hands in. A problem is a ConfigError: one line naming the variable, never
// its content, and exit 2.
import { X509Certificate } from 'node:crypto'
import { ConfigError } from '../config/error.js'
import type { Config } from '../config/schema.js'
import { parseCacheKeys } from './entries.js'

export interface RedisNode { host: string, port: number }

/** How to reach Redis: one of the three shapes operators run. */
export type RedisTarget =
  | { mode: 'standalone', url: string }
  | { mode: 'sentinel', sentinels: RedisNode[], name: string, sentinelUsername: string | undefined, sentinelPassword: string | undefined }
  | { mode: 'cluster', nodes: RedisNode[] }

export interface SharedStateSettings {
  target: RedisTarget
  username: string | undefined
  password: string | undefined
  /** TLS to every node (a URL's rediss:// sets it too). */
  tls: boolean
  /** With TLS: the CA certificates (PEM) to trust instead of the public roots. */
  tlsCa?: string | undefined
  keyPrefix: string
  commandTimeoutMs: number
  keys: Buffer[]
  fleetMaxCallsPerSecond: number
}

/** host:port (as the schema allows it: a name, IPv4 or [IPv6]) as a node. */
export function parseNode (text: string): RedisNode {
  const at = text.lastIndexOf(':')
  const host = text.slice(0, at).replace(/^\[(.*)\]$/, '$1')
  return { host, port: Number(text.slice(at + 1)) }
}

export function sharedStateSettings (config: Config, env: Record<string, string | undefined>): SharedStateSettings | undefined {
  const r = config.redis
  if (r === undefined) return undefined
  const keysEnv = config.cache.encryptionKeysEnv
  const fleet = config.sts.fleetMaxCallsPerSecond
  // parseConfig has refused these already; repeated for configs built by hand.
  if (keysEnv === undefined) throw new ConfigError('config: cache.encryptionKeysEnv: required when redis is set')
  if (fleet === undefined) throw new ConfigError('config: sts.fleetMaxCallsPerSecond: required when redis is set')
  let keys: Buffer[]
  try {
    keys = parseCacheKeys(env[keysEnv], keysEnv)
  } catch (err) {
    throw new ConfigError(`config: cache.encryptionKeysEnv: ${(err as Error).message}`)
  }
  const secret = (key: 'usernameEnv' | 'passwordEnv' | 'sentinelPasswordEnv'): string | undefined => {
    const name = r[key]
    if (name === undefined) return undefined
    const value = env[name]
    if (value === undefined || value === '') throw new ConfigError(`config: redis.${key}: ${name} is not set`)
    return value
  }
  const username = secret('usernameEnv')
  const password = secret('passwordEnv')
  // Sentinels share the master's user and password unless sentinelPasswordEnv is set:
  // then it is a Sentinel's own `requirepass` (its default user), and an ACL user
  // that only the data nodes know would make every Sentinel refuse the AUTH.
  const ownSentinelPassword = secret('sentinelPasswordEnv')
  const sentinelUsername = ownSentinelPassword === undefined ? username : undefined
  const sentinelPassword = ownSentinelPassword ?? password
  let target: RedisTarget
  if (r.sentinels !== undefined && r.sentinelName !== undefined) target = { mode: 'sentinel', sentinels: r.sentinels.map(parseNode), name: r.sentinelName, sentinelUsername, sentinelPassword }
  else if (r.clusterNodes !== undefined) target = { mode: 'cluster', nodes: r.clusterNodes.map(parseNode) }
  else if (r.url !== undefined) target = { mode: 'standalone', url: r.url }
  else throw new ConfigError('config: redis: exactly one of url, sentinels (with sentinelName) or clusterNodes is required')
  const tls = r.tls || (r.url?.startsWith('rediss:') ?? false)
  const tlsCa = caCertificates(r.tlsCaEnv, env)
  return { target, username, password, tls, tlsCa, keyPrefix: r.keyPrefix, commandTimeoutMs: r.commandTimeoutMs, keys, fleetMaxCallsPerSecond: fleet }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g

/**
 * The CA bundle that tlsCaEnv names: one or more PEM certificates, each parsed here so
 * that a truncated or wrong value stops the pod at start instead of failing every
 * handshake later as an unexplained "TLS failed".
 */
function caCertificates (name: string | undefined, env: Record<string, string | undefined>): string | undefined {
  if (name === undefined) return undefined
  const value = env[name]
  if (value === undefined || value.trim() === '') throw new ConfigError(`config: redis.tlsCaEnv: ${name} is not set`)
  const blocks = value.match(PEM_CERTIFICATE) ?? []
  const parses = (pem: string): boolean => { try { return new X509Certificate(pem) !== undefined } catch { return false } }
  if (blocks.length === 0 || !blocks.every(parses)) throw new ConfigError(`config: redis.tlsCaEnv: ${name} holds no valid PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)`)
  return blocks.join('\n')
}
