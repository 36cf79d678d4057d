// What the shared state needs from the environment (the Redis password, the cache
// keys), read once at start from the env that server.ts hands in. A problem is a
// ConfigError: one line naming the variable, never its content, and exit 2.
import { ConfigError } from '../config/error.js'
import type { Config } from '../config/schema.js'
import { parseCacheKeys } from './entries.js'

export interface SharedStateSettings {
  url: string
  password: string | undefined
  keyPrefix: string
  commandTimeoutMs: number
  keys: Buffer[]
  fleetMaxCallsPerSecond: number
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
  let password: string | undefined
  if (r.passwordEnv !== undefined) {
    password = env[r.passwordEnv]
    if (password === undefined || password === '') throw new ConfigError(`config: redis.passwordEnv: ${r.passwordEnv} is not set`)
  }
  return { url: r.url, password, keyPrefix: r.keyPrefix, commandTimeoutMs: r.commandTimeoutMs, keys, fleetMaxCallsPerSecond: fleet }
}
