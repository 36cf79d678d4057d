// The one start-up line: what an operator needs to know that this process is the one
// they meant to run (version, address, issuers and grants by name, cache mode, which
// kind of upstream credential it will sign with). Names and kinds only, never a value
// from the credential chain.
import type { Config } from '../config/schema.js'

/**
 * The kind of credential the SDK's default chain will pick, read from the variables
 * it reads first (@alicloud/credentials providers/default.js): AccessKey or STS token
 * from the environment, then RRSA (OIDC). Past those, the chain tries profile files,
 * the ECS instance role and a credentials URI at the first AssumeRole.
 */
export function upstreamCredentialType (env: Record<string, string | undefined>): string {
  const set = (name: string): boolean => (env[name] ?? '') !== ''
  if (set('ALIBABA_CLOUD_ACCESS_KEY_ID') && set('ALIBABA_CLOUD_ACCESS_KEY_SECRET')) {
    return set('ALIBABA_CLOUD_SECURITY_TOKEN') ? 'sts' : 'access_key'
  }
  if (set('ALIBABA_CLOUD_ROLE_ARN') && set('ALIBABA_CLOUD_OIDC_PROVIDER_ARN') && set('ALIBABA_CLOUD_OIDC_TOKEN_FILE')) return 'oidc_role_arn'
  return env.ALIBABA_CLOUD_ECS_METADATA_DISABLED === 'true' ? 'profile_or_credentials_uri' : 'profile_or_ecs_ram_role'
}

export interface StartupInfo {
  version: string
  /** The listening URL. */
  address: string
  config: Config
  /** See upstreamCredentialType; `injected` when the process was handed an STS client. */
  upstreamCredential: string
  /** With Redis: whether the first connection came up, and why not. */
  redis?: { up: boolean, cause?: string | undefined } | undefined
}

export function startupFields (info: StartupInfo): Record<string, unknown> {
  return {
    event: 'started',
    version: info.version,
    listening: info.address,
    issuers: info.config.issuers.map((i) => i.name),
    grants: info.config.grants.map((g) => g.name),
    // Redis is named by hosts only: no user, password, path or query. A Redis that did
    // not come up is said here, with its cause, instead of a mode that is not running.
    cache: info.config.redis === undefined
      ? { mode: 'memory', maxEntries: info.config.cache.maxEntries }
      : info.redis !== undefined && !info.redis.up
        ? { mode: 'memory', maxEntries: info.config.cache.maxEntries, redis: `down (${info.redis.cause ?? 'not connected'})`, redisAt: redisWhere(info.config.redis) }
        : { mode: 'memory+redis', maxEntries: info.config.cache.maxEntries, redis: redisWhere(info.config.redis) },
    upstreamCredential: info.upstreamCredential
  }
}

function redisWhere (r: NonNullable<Config['redis']>): string {
  if (r.sentinels !== undefined) return `sentinel ${r.sentinelName ?? ''} via ${r.sentinels.join(',')}`
  if (r.clusterNodes !== undefined) return `cluster via ${r.clusterNodes.join(',')}`
  try {
    return new URL(r.url ?? '').host
  } catch {
    return 'unparseable'
  }
}
