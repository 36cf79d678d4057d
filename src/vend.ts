// Vending, without HTTP: from a verified caller and a request, resolve the grant,
// build the session policy, derive the session name and return credentials from the
// cache or from STS. Every refusal happens before the upstream is touched.
// Lookup order: this replica's cache, then the shared one (with Redis), then, behind
// the caller's and the fleet's upstream budgets, one AssumeRole.
//
// The derivation (grant, policy JSON, session name, cache key) is a pure function of
// the grants, the caller and the request, and the larger part of a cache hit's own
// work; it is memoised on the verified caller (for the default request) or its claims
// object. The verifier hands out the same frozen caller and claims for a token it
// remembers, so a memo entry belongs to one token of one caller and goes when the
// verifier drops that token (its TTL, its bound, or its key leaving the key set). Only successful derivations are kept, so every
// refusal is decided afresh; the cache lookup and the margin check run on every
// request, the upstream budgets on every miss.
import type { Config } from './config/schema.js'
import { MIN_USABLE_SECONDS } from './core/index.js'
import { DurationNotAllowed, UpstreamBadResponse } from './errors.js'
import { resolveGrant, type ResolvedGrant, type VendRequest } from './grants/resolve.js'
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

/** Distinct requests remembered per token: a client asks for one or two shapes; the bound keeps a token from growing its memo without end. */
export const DERIVATIONS_PER_TOKEN = 8

interface Derivation { resolved: ResolvedGrant, sessionName: string, key: string }

/**
 * The memo's key for one request, or undefined when a field is not of the type the
 * route's schema admits (such a request is derived afresh, and refused there). Every
 * field resolveGrant reads is in it, together with the caller's issuer and subject.
 */
export function derivationKey (caller: Caller, req: VendRequest): string | undefined {
  const { grant, prefix, actions, durationSeconds } = req
  if (grant !== undefined && typeof grant !== 'string') return undefined
  if (prefix !== undefined && typeof prefix !== 'string') return undefined
  if (durationSeconds !== undefined && (!Number.isSafeInteger(durationSeconds) || Object.is(durationSeconds, -0))) return undefined
  if (actions !== undefined && (!Array.isArray(actions) || !actions.every((a) => typeof a === 'string'))) return undefined
  // JSON of strings, arrays of strings and integers is one-to-one; undefined becomes null,
  // which no field may be (checked above).
  return JSON.stringify([caller.issuer, caller.subject, grant, prefix, actions, durationSeconds])
}

export function createVender (deps: VenderDeps): Vender {
  const { config, upstream, cache, now, shared, gate } = deps
  const grants = deps.grants ?? compileGrants(config)
  const minDuration = config.cache.minRemainingSeconds + MIN_USABLE_SECONDS
  const marginMs = config.cache.minRemainingSeconds * 1000
  const memo = new WeakMap<object, Map<string, Derivation>>()
  // The request nearly every client sends ({}: the grant's defaults), memoised on the
  // caller itself: no key to build. A recalled token hands out the same frozen caller.
  const defaults = new WeakMap<Caller, Derivation>()

  function derive (caller: Caller, req: VendRequest): Derivation {
    const resolved = resolveGrant(grants, caller.issuer, caller.claims, req)
    // Credentials shorter than the freshness margin could never be served safely.
    if (resolved.durationSeconds < minDuration) throw new DurationNotAllowed()
    const grant = resolved.grant
    const sessionName = roleSessionName(caller.subject, caller.issuer)
    // The policy was built, serialised and size-checked by resolveGrant.
    const key = cacheKey({ roleArn: grant.roleArn, policy: resolved.policy, durationSeconds: resolved.durationSeconds, roleSessionName: sessionName, externalId: grant.externalId })
    Object.freeze(resolved.actions)
    return Object.freeze({ resolved: Object.freeze(resolved), sessionName, key })
  }

  function derivation (caller: Caller, req: VendRequest): Derivation {
    if (req.grant === undefined && req.prefix === undefined && req.actions === undefined && req.durationSeconds === undefined &&
      Object.isFrozen(caller) && Object.isFrozen(caller.claims)) {
      let known = defaults.get(caller)
      if (known === undefined) defaults.set(caller, known = derive(caller, req))
      return known
    }
    const claims: unknown = caller.claims
    // Only a frozen claims object can be trusted to read the same next time.
    const memoKey = claims !== null && typeof claims === 'object' && Object.isFrozen(claims) ? derivationKey(caller, req) : undefined
    if (memoKey === undefined) return derive(caller, req)
    let perToken = memo.get(claims as object)
    const known = perToken?.get(memoKey)
    if (known !== undefined) return known
    const derived = derive(caller, req)
    if (perToken === undefined) memo.set(claims as object, perToken = new Map())
    if (perToken.size >= DERIVATIONS_PER_TOKEN) perToken.delete(perToken.keys().next().value as string)
    perToken.set(memoKey, derived)
    return derived
  }

  return {
    async vend (caller, req) {
      const { resolved, sessionName, key } = derivation(caller, req)
      const grant = resolved.grant
      const policy = resolved.policy
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
