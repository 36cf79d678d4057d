// Vending, without HTTP: from a verified caller and a request, resolve the grant,
// build the session policy, derive the session name and return credentials from the
// cache or from STS. Every refusal happens before the upstream is touched.
// Lookup order: this replica's cache, then the shared one (with Redis), then, behind
// the caller's and the fleet's upstream budgets, one AssumeRole.
import type { Config } from './config/schema.js'
import { MIN_USABLE_SECONDS } from './core/index.js'
import { DurationNotAllowed, UpstreamBadResponse } from './errors.js'
import { resolveGrant, type VendRequest } from './grants/resolve.js'
import { compileGrants, type CompiledGrants } from './grants/compile.js'
import { cacheKey, type CredentialCache } from './cache/credential-cache.js'
import type { Upstream } from './alicloud/upstream.js'
import type { SharedCache } from './cache/shared-cache.js'
import type { UpstreamGate } from './redis/budget.js'
import { roleSessionName } from './policy/session-name.js'
import type { Caller } from './auth/verifier.js'
import type { StsCredentials } from './alicloud/sts-client.js'
import type { Action } from './config/schema.js'

export interface Issued {
  accessKeyId: string
  accessKeySecret: string
  securityToken: string
  expiration: Date
  bucket: string
  region: string
  endpoint: string
  prefix: string
  actions: Action[]
  grant: string
  roleSessionName: string
  durationSeconds: number
  fromCache: boolean
}

export interface Vender { vend (caller: Caller, req: VendRequest): Promise<Issued> }

export function ossEndpoint (region: string): string {
  return `https://oss-${region}.aliyuncs.com`
}

export interface VenderDeps {
  config: Config
  /** Compiled once at load (server.ts); compiled here only when a caller (a test, the dev stack) builds the app from a plain config. */
  grants?: CompiledGrants | undefined
  upstream: Upstream
  cache: CredentialCache
  now: () => number
  /** The second cache level, shared by the fleet (with Redis). */
  shared?: SharedCache | undefined
  /** Budgets taken right before an AssumeRole (per caller; per fleet with Redis). */
  gate?: UpstreamGate | undefined
}

export function createVender (deps: VenderDeps): Vender {
  const { config, upstream, cache, now, shared, gate } = deps
  const grants = deps.grants ?? compileGrants(config)
  const minDuration = config.cache.minRemainingSeconds + MIN_USABLE_SECONDS
  const marginMs = config.cache.minRemainingSeconds * 1000

  return {
    async vend (caller, req) {
      const resolved = resolveGrant(grants, caller.issuer, caller.claims, req)
      // Credentials shorter than the freshness margin could never be served safely.
      if (resolved.durationSeconds < minDuration) throw new DurationNotAllowed()
      const grant = resolved.grant
      const policy = resolved.policy // built, serialised and size-checked by resolveGrant
      const sessionName = roleSessionName(caller.subject, caller.issuer)
      const key = cacheKey({ roleArn: grant.roleArn, policy, durationSeconds: resolved.durationSeconds, roleSessionName: sessionName, externalId: grant.externalId })
      // With the shared level, the call gets what is left of the request's deadline after
      // any wait for another replica (and after the budgets' own Redis round trip).
      const assumeRole = async (remainingMs?: () => number): Promise<StsCredentials> => {
        await gate?.take(`${caller.issuer}\n${caller.subject}`)
        return await upstream.assumeRole({
          roleArn: grant.roleArn,
          roleSessionName: sessionName,
          durationSeconds: resolved.durationSeconds,
          policy,
          ...(grant.externalId !== undefined ? { externalId: grant.externalId } : {})
        }, { withinMs: remainingMs?.() })
      }
      const { credentials, fromCache } = await cache.getOrLoad(key, shared !== undefined
        ? async () => await shared.getOrLoad(key, assumeRole)
        : async () => ({ credentials: await assumeRole(), fromCache: false }))
      // Fail closed: never hand out credentials below the margin, whatever STS said.
      if (credentials.expiration.getTime() - now() < marginMs) throw new UpstreamBadResponse()
      return {
        accessKeyId: credentials.accessKeyId,
        accessKeySecret: credentials.accessKeySecret,
        securityToken: credentials.securityToken,
        expiration: credentials.expiration,
        bucket: grant.bucket,
        region: grant.region,
        endpoint: grant.endpoint ?? ossEndpoint(grant.region),
        prefix: resolved.prefix,
        actions: resolved.actions,
        grant: grant.name,
        roleSessionName: sessionName,
        durationSeconds: resolved.durationSeconds,
        fromCache
      }
    }
  }
}
