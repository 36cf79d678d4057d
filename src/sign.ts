// Signed uploads, without HTTP: from a verified caller and a request, resolve the grant
// and the caller's directory exactly as vending does, then sign a PostObject form or a
// presigned URL that OSS itself confines to that directory, size, type and lifetime.
//
// The signing credential is per grant, not per caller: one AssumeRole whose session
// policy covers the grant's directory for every caller (`users/*` for `users/{sub}/`)
// with only oss:PutObject / oss:GetObject, cached and shared like any credential. It
// never leaves this module except as signatures. It must outlive every form or URL
// signed with it, so the cache is handed the credential with its Expiration moved
// `expiresSeconds` earlier: the cache's one margin rule (never serve below
// minRemainingSeconds) then means "refresh while expiresSeconds + margin are left".
// With Redis it goes through the shared level as vending does (every replica shifts
// alike, so the shared entry holds the shifted Expiration), and the fleet's budget is
// taken before the call: the fleet makes one AssumeRole per grant per lifetime.
import { createHash } from 'node:crypto'
import type { GrantConfig } from './config/schema.js'
import {
  BadRequest, ContentTypeNotAllowed, KeyNotAllowed, SigningNotEnabled, SizeNotAllowed, UpstreamBadResponse
} from './errors.js'
import { resolveGrant } from './grants/resolve.js'
import { compileGrants } from './grants/compile.js'
import type { StsCredentials } from './alicloud/sts-client.js'
import type { Caller } from './auth/verifier.js'
import { bucketArn } from './policy/build.js'
import {
  bucketUrl, checkObjectKey, directoryTarget, literalHead, presignUrl, signPostForm, type KeyTarget
} from './alicloud/oss-signing.js'
import { ossEndpoint, type VenderDeps } from './vend.js'

export interface FormRequest { grant?: string, key?: string, contentType?: string, maxBytes?: number }
export interface UrlRequest { grant?: string, key: string, method: 'GET' | 'PUT', contentType?: string }

interface SignedCommon {
  url: string
  expiration: Date
  grant: string
  /** Whether the signing credential came from the cache. */
  fromCache: boolean
}
export interface SignedFormResult extends SignedCommon {
  fields: Record<string, string>
  keyPrefix: string
  maxBytes: number
  contentType?: string
  contentTypes?: string[]
}
export interface SignedUrlResult extends SignedCommon {
  method: 'GET' | 'PUT'
  key: string
  headers: Record<string, string>
}

export interface Signer {
  form (caller: Caller, req: FormRequest): Promise<SignedFormResult>
  url (caller: Caller, req: UrlRequest): Promise<SignedUrlResult>
}

/** Content-Type signed into a PUT URL when the caller names none (a browser would otherwise add the file's own). */
export const DEFAULT_PUT_CONTENT_TYPE = 'application/octet-stream'

/** The grant-level session policy: only what signing needs, over the grant's whole directory tree. */
export function signingPolicy (grant: GrantConfig): string {
  const actions = [
    ...(grant.actions.includes('write') ? ['oss:PutObject'] : []),
    ...(grant.actions.includes('read') ? ['oss:GetObject'] : [])
  ]
  if (actions.length === 0) throw new Error(`grant ${grant.name}: signing needs the read or write action`)
  return JSON.stringify({
    Version: '1',
    Statement: [{ Effect: 'Allow', Action: actions, Resource: [`${bucketArn(grant.bucket)}/${literalHead(grant.prefix)}*`] }]
  })
}

/** The role session name of a grant's signing credential (2-64 of [A-Za-z0-9.@_-]). */
export function signingSessionName (grant: GrantConfig): string {
  return `sign@${grant.name}`.slice(0, 64)
}

/**
 * What signing needs is what vending needs (vend.ts); its gate is asked for the
 * fleet's AssumeRole budget only, never a caller's own: the credential is the grant's.
 */
export type SignerDeps = VenderDeps

export function createSigner (deps: SignerDeps): Signer {
  const { config, upstream, cache, now, shared, gate } = deps
  // compileGrants also refuses signing settings that cannot work (grants/compile.ts).
  const grants = deps.grants ?? compileGrants(config)
  const marginMs = config.cache.minRemainingSeconds * 1000
  const policies = new Map<string, string>()
  for (const g of config.grants) {
    if (g.signing !== undefined) policies.set(g.name, signingPolicy(g))
  }

  async function credential (grant: GrantConfig, expiresSeconds: number): Promise<{ credentials: StsCredentials, fromCache: boolean }> {
    const policy = policies.get(grant.name) as string
    const roleSessionName = signingSessionName(grant)
    const shiftMs = expiresSeconds * 1000
    const key = 'sign:' + createHash('sha256')
      .update(JSON.stringify([grant.roleArn, policy, grant.durationSeconds, roleSessionName, grant.externalId ?? null, expiresSeconds]))
      .digest('base64url')
    const assumeRole = async (remainingMs?: () => number): Promise<StsCredentials> => {
      await gate?.takeFleet()
      const c = await upstream.assumeRole({
        roleArn: grant.roleArn,
        roleSessionName,
        durationSeconds: grant.durationSeconds,
        policy,
        ...(grant.externalId !== undefined ? { externalId: grant.externalId } : {})
      }, { withinMs: remainingMs?.() })
      return { ...c, expiration: new Date(c.expiration.getTime() - shiftMs) }
    }
    const { credentials, fromCache } = await cache.getOrLoad(key, shared !== undefined
      ? async () => await shared.getOrLoad(key, assumeRole)
      : async () => ({ credentials: await assumeRole(), fromCache: false }))
    // Fail closed, whatever STS or a shared cache said: never sign past the credential.
    if (credentials.expiration.getTime() - now() < marginMs) throw new UpstreamBadResponse()
    return { credentials, fromCache }
  }

  function resolve (caller: Caller, grant: string | undefined, action: 'read' | 'write') {
    const resolved = resolveGrant(grants, caller.issuer, caller.claims, { ...(grant !== undefined ? { grant } : {}), actions: [action] })
    const signing = resolved.grant.signing
    if (signing === undefined) throw new SigningNotEnabled()
    return { grant: resolved.grant, directory: resolved.grantPrefix, signing }
  }

  return {
    async form (caller, req) {
      const { grant, directory, signing } = resolve(caller, req.grant, 'write')
      let target: KeyTarget | undefined = directoryTarget(directory)
      if (req.key !== undefined) target = checkObjectKey(directory, req.key, true)
      if (target === undefined) throw new KeyNotAllowed()
      const maxBytes = req.maxBytes ?? signing.maxBytes
      if (maxBytes > signing.maxBytes) throw new SizeNotAllowed()
      if (req.contentType !== undefined && signing.contentTypes !== undefined && !signing.contentTypes.includes(req.contentType)) {
        throw new ContentTypeNotAllowed()
      }
      const { credentials, fromCache } = await credential(grant, signing.expiresSeconds)
      const signed = signPostForm({
        credentials,
        bucket: grant.bucket,
        region: grant.region,
        target,
        maxBytes,
        contentType: req.contentType,
        contentTypes: signing.contentTypes,
        now: now(),
        expiresSeconds: signing.expiresSeconds
      })
      return {
        url: bucketUrl(grant.endpoint ?? ossEndpoint(grant.region), grant.bucket),
        fields: signed.fields,
        keyPrefix: target.kind === 'exact' ? target.key : target.prefix,
        expiration: signed.expiration,
        grant: grant.name,
        maxBytes,
        ...(req.contentType !== undefined ? { contentType: req.contentType } : {}),
        ...(req.contentType === undefined && signing.contentTypes !== undefined ? { contentTypes: [...signing.contentTypes] } : {}),
        fromCache
      }
    },

    async url (caller, req) {
      const { grant, directory, signing } = resolve(caller, req.grant, req.method === 'PUT' ? 'write' : 'read')
      const target = checkObjectKey(directory, req.key, false)
      if (target === undefined) throw new KeyNotAllowed()
      let contentType: string | undefined
      if (req.method === 'GET') {
        if (req.contentType !== undefined) throw new BadRequest('contentType applies to PUT only')
      } else if (signing.contentTypes !== undefined) {
        if (req.contentType === undefined || !signing.contentTypes.includes(req.contentType)) throw new ContentTypeNotAllowed()
        contentType = req.contentType
      } else {
        contentType = req.contentType ?? DEFAULT_PUT_CONTENT_TYPE
      }
      const { credentials, fromCache } = await credential(grant, signing.expiresSeconds)
      const signed = presignUrl({
        credentials,
        bucket: grant.bucket,
        region: grant.region,
        endpoint: grant.endpoint ?? ossEndpoint(grant.region),
        key: target.key,
        method: req.method,
        contentType,
        now: now(),
        expiresSeconds: signing.expiresSeconds
      })
      return { url: signed.url, method: req.method, key: target.key, headers: signed.headers, expiration: signed.expiration, grant: grant.name, fromCache }
    }
  }
}
