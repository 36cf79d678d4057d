// Vending, without HTTP: decide, then obtain. From a verified caller and a request,
// resolve the grant, build the session policy and derive the session name; then obtain
// the credentials from the credential source (credential-source.ts: this replica's
// cache, the shared level, the caller's and the fleet's budgets, one AssumeRole, the
// margin check). Every refusal happens before the upstream is touched.
//
// The derivation (grant, policy JSON, session name, the source's order with its cache
// key) is a pure function of the grants, the caller and the request, and the larger part
// of a cache hit's own work; it is memoised on the verified caller (for the default
// request) or its claims object. The verifier hands out the same frozen caller and
// claims for a token it remembers, so a memo entry belongs to one token of one caller
// and goes when the verifier drops that token (its TTL, its bound, or its key leaving
// the key set). Only successful derivations are kept, so every refusal is decided
// afresh; the cache lookup runs on every request, the upstream budgets and the margin
// check on every miss (a local hit is above the margin by the cache's own rule).
import type { Action } from './config/schema.js'
import { resolveGrant, type ResolvedGrant, type VendRequest } from './grants/resolve.js'
import type { CompiledGrants } from './grants/compile.js'
import { cacheKey, type CacheLookup } from './cache/credential-cache.js'
import type { CredentialOrder, CredentialSource } from './credential-source.js'
import { roleSessionName } from './policy/session-name.js'
import type { Caller } from './auth/caller.js'

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

export interface Vender {
  vend (caller: Caller, req: VendRequest): Promise<Issued>
  /**
   * What vend would answer from this replica's cache, without a promise (a hit's whole
   * path is synchronous); undefined when vend would have to load. Refuses as vend does.
   */
  cached (caller: Caller, req: VendRequest): Issued | undefined
}

export function ossEndpoint (region: string): string {
  return `https://oss-${region}.aliyuncs.com`
}

export interface VenderDeps {
  /** Compiled once at load (app.ts hands the same instance to vending and signing). */
  grants: CompiledGrants
  source: CredentialSource
}

/** Distinct requests remembered per token: a client asks for one or two shapes; the bound keeps a token from growing its memo without end. */
export const DERIVATIONS_PER_TOKEN = 8

interface Derivation { resolved: ResolvedGrant, sessionName: string, order: CredentialOrder }

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
  const { grants, source } = deps
  const memo = new WeakMap<object, Map<string, Derivation>>()
  // The request nearly every client sends ({}: the grant's defaults), memoised on the
  // caller itself: no key to build. A recalled token hands out the same frozen caller.
  const defaults = new WeakMap<Caller, Derivation>()

  function derive (caller: Caller, req: VendRequest): Derivation {
    const resolved = resolveGrant(grants, caller.issuer, caller.claims, req)
    const grant = resolved.grant
    const sessionName = roleSessionName(caller.subject, caller.issuer)
    // The policy was built, serialised and size-checked by resolveGrant.
    const assume = { roleArn: grant.roleArn, policy: resolved.policy, durationSeconds: resolved.durationSeconds, roleSessionName: sessionName, externalId: grant.externalId, sourceIdentity: resolved.sourceIdentity }
    const order = source.order({ key: cacheKey(assume), assume, budget: { callerId: `${caller.issuer}\n${caller.subject}` } })
    Object.freeze(resolved.actions)
    return Object.freeze({ resolved: Object.freeze(resolved), sessionName, order })
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

  // One frozen Issued per (derivation, credential object, fromCache): a hit hands out the
  // same object every time, so what the route and the audit trail make of it (the
  // response's bytes, the audit line's fixed fields) is made once per credential, not
  // per request (issue 25). A new credential (a refresh, a shared entry) makes a new one.
  const issuedMemo = new WeakMap<Derivation, { credentials: object, hit?: Issued, miss?: Issued }>()

  function issued (known: Derivation, { credentials, fromCache }: CacheLookup): Issued {
    let memo = issuedMemo.get(known)
    if (memo === undefined || memo.credentials !== credentials) issuedMemo.set(known, memo = { credentials })
    const kept = fromCache ? memo.hit : memo.miss
    if (kept !== undefined) return kept
    const made = issue(known, credentials, fromCache)
    if (fromCache) memo.hit = made
    else memo.miss = made
    return made
  }

  return {
    async vend (caller, req) {
      const known = derivation(caller, req)
      return issued(known, await source.obtain(known.order))
    },
    cached (caller, req) {
      const known = derivation(caller, req)
      const hit = source.cached(known.order)
      return hit === undefined ? undefined : issued(known, hit)
    }
  }

  function issue ({ resolved, sessionName }: Derivation, credentials: CacheLookup['credentials'], fromCache: boolean): Issued {
    const grant = resolved.grant
    return Object.freeze({
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
    })
  }
}
