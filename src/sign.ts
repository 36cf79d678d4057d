// Signed uploads, without HTTP: decide, then obtain. From a verified caller and a
// request, resolve the grant and the caller's directory exactly as vending does, check
// the key (grants/object-keys.ts), size and type, obtain the grant's signing credential
// from the credential source, then sign a PostObject form or a presigned URL that OSS
// itself confines to that directory, size, type and lifetime.
//
// The signing credential is per grant, not per caller: one AssumeRole with the grant's
// signing policy (policy/signing.ts), cached and shared like any credential, taking the
// fleet's budget alone. It never leaves this module except as signatures. It must
// outlive every form or URL signed with it, so the source stores it with its Expiration
// moved `expiresSeconds` earlier (credential-source.ts): the one margin rule then means
// "refresh while expiresSeconds + margin are left", and the fleet makes one AssumeRole
// per grant per lifetime.
import { createHash } from 'node:crypto'
import { randomHex } from './core/index.js'
import type { GrantConfig } from './config/schema.js'
import {
  BadRequest, ContentTypeNotAllowed, explained, KeyNotAllowed, SigningNotEnabled, SizeNotAllowed
} from './errors.js'
import { resolveGrant } from './grants/resolve.js'
import type { CompiledGrants } from './grants/compile.js'
import { checkObjectKey, directoryTarget, uniqueKey, type KeyTarget } from './grants/object-keys.js'
import { signingPolicy, signingSessionName } from './policy/signing.js'
import type { Caller } from './auth/caller.js'
import { bucketUrl, presignUrl, signPostForm } from './alicloud/oss-signing.js'
import { callbackParameter } from './alicloud/oss-callback.js'
import { CALLBACK_GRACE_SECONDS, callerHash, issueTicket } from './grants/upload-ticket.js'
import type { CredentialOrder, CredentialSource } from './credential-source.js'
import type { CacheLookup } from './cache/credential-cache.js'
import { ossEndpoint } from './vend.js'

export interface FormRequest { grant?: string, key?: string, fileName?: string, contentType?: string, maxBytes?: number }
export interface UrlRequest { grant?: string, key: string, method: 'GET' | 'PUT', contentType?: string }

interface SignedCommon {
  /**
   * Holds no character JSON escapes: a form's is the grant's bucket URL (checked at
   * start), a presigned URL adds only URI-encoded parts, digits and hex to it
   * (alicloud/oss-signing.ts presignUrl); http/uploads/bodies.ts writes it as it is.
   */
  url: string
  expiration: Date
  grant: string
  /** Whether the signing credential came from the cache. */
  fromCache: boolean
}
export interface SignedFormResult extends SignedCommon {
  fields: Record<string, string>
  /** `fields` as JSON (oss-signing.ts writes it with the form). */
  fieldsJson: string
  keyPrefix: string
  maxBytes: number
  contentType?: string
  contentTypes?: string[]
}
/** A presigned URL. */
export interface SignedUrlResult extends SignedCommon {
  method: 'GET' | 'PUT'
  key: string
  headers: Record<string, string>
}

export interface Signer {
  form (caller: Caller, req: FormRequest): Promise<SignedFormResult>
  url (caller: Caller, req: UrlRequest): Promise<SignedUrlResult>
  /**
   * What form / url would answer when the grant's signing credential is in this
   * replica's cache, without a promise; undefined when it would have to be loaded.
   * Every refusal is made as form / url make it, before any credential is looked up.
   */
  formCached (caller: Caller, req: FormRequest): SignedFormResult | undefined
  urlCached (caller: Caller, req: UrlRequest): SignedUrlResult | undefined
}

/** Content-Type signed into a PUT URL when the caller names none (a browser would otherwise add the file's own). */
export const DEFAULT_PUT_CONTENT_TYPE = 'application/octet-stream'

export interface SignerDeps {
  /** Compiled once at load (app.ts hands the same instance to vending and signing). */
  grants: CompiledGrants
  source: CredentialSource
  now: () => number
  /** The random segment of a `keys: unique` form's key and a ticket's nonce (default: 128 random bits as hex). */
  randomId?: () => string
  /** Each callback grant's forward secret (prepare.ts), which signs the form's ticket. */
  callbackSecrets?: ReadonlyMap<string, Buffer>
}

/** The cache key of a grant's signing credential: everything that shapes it, the shift included. */
export function signingCacheKey (grant: GrantConfig, policy: string, roleSessionName: string, expiresSeconds: number, sourceIdentity?: string): string {
  const shape: unknown[] = [grant.roleArn, policy, grant.durationSeconds, roleSessionName, grant.externalId ?? null, expiresSeconds]
  if (sourceIdentity !== undefined) shape.push(sourceIdentity)
  return 'sign:' + createHash('sha256').update(JSON.stringify(shape)).digest('base64url')
}

/** Distinct (grant, action) pairs remembered per caller: a client signs with one or two. */
export const RESOLUTIONS_PER_CALLER = 8

/**
 * The key of a form request's kept answer, or undefined when a field is not of the type
 * the route's schema admits (such a request is signed afresh). Every field planForm reads
 * is in it; the caller is the memo's owner. '' for the grant's defaults ({}).
 */
function formRequestKey (req: FormRequest): string | undefined {
  const { grant, key, fileName, contentType, maxBytes } = req
  if (grant === undefined && key === undefined && fileName === undefined && contentType === undefined && maxBytes === undefined) return ''
  if (![grant, key, fileName, contentType].every((v) => v === undefined || typeof v === 'string')) return undefined
  if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || Object.is(maxBytes, -0))) return undefined
  // JSON of strings and integers is one-to-one; undefined becomes null, which no field may be.
  return JSON.stringify([grant, key, fileName, contentType, maxBytes])
}

/** The key of a URL request's kept answer, as formRequestKey; every field planUrl reads. */
function urlRequestKey (req: UrlRequest): string | undefined {
  const { grant, key, method, contentType } = req
  if (![grant, key, method, contentType].every((v) => v === undefined || typeof v === 'string')) return undefined
  return JSON.stringify([grant, key, method, contentType])
}

interface Resolution { grant: GrantConfig, directory: string, signing: NonNullable<GrantConfig['signing']>, bucketUrl: string }
interface FormPlan { caller: Caller, req: FormRequest, grant: GrantConfig, signing: NonNullable<GrantConfig['signing']>, url: string, unique: boolean, target: KeyTarget, maxBytes: number }
interface UrlPlan { req: UrlRequest, grant: GrantConfig, signing: NonNullable<GrantConfig['signing']>, url: string, key: string, contentType: string | undefined }

export function createSigner (deps: SignerDeps): Signer {
  const { grants, source, now } = deps
  const randomId = deps.randomId ?? (() => randomHex(16))
  // One order per signing grant, built at start: its policy, session name and cache key
  // are the grant's, whoever asks. compileGrants has refused signing settings that
  // cannot work (grants/compile.ts).
  const orders = new Map<string, CredentialOrder>()
  for (const { config: g } of grants) {
    if (g.signing === undefined) continue
    const policy = signingPolicy(g)
    const roleSessionName = signingSessionName(g)
    const expiresSeconds = g.signing.expiresSeconds
    // The signing credential is the grant's, not a caller's: with grants[].sourceIdentity
    // it carries the grant's signing name as its SourceIdentity, so a trust policy that
    // requires one (acs:SourceIdentity) admits it; the caller is named by upload.signed.
    const sourceIdentity = g.sourceIdentity !== undefined ? roleSessionName : undefined
    orders.set(g.name, source.order({
      key: signingCacheKey(g, policy, roleSessionName, expiresSeconds, sourceIdentity),
      assume: { roleArn: g.roleArn, policy, durationSeconds: g.durationSeconds, roleSessionName, externalId: g.externalId, sourceIdentity },
      budget: 'fleet',
      shiftSeconds: expiresSeconds
    }))
  }

  // Each grant's bucket address, parsed once. A URL serialisation never holds a character
  // JSON escapes, and a presigned URL adds only encoded parts to it, so the uploads route
  // writes URLs into its bodies as they are (http/uploads/bodies.ts); checked here once.
  const bucketUrls = new Map<string, string>()
  for (const { config: g } of grants) {
    const u = bucketUrl(g.endpoint ?? ossEndpoint(g.region), g.bucket)
    if (JSON.stringify(u) !== `"${u}"`) throw new Error(`grant ${g.name}: bucket URL ${JSON.stringify(u)} needs JSON escaping`)
    bucketUrls.set(g.name, u)
  }

  // The grant and directory are a pure function of the grants, the caller and the
  // (grant, action) asked for, so a resolution is memoised on the verified caller, as
  // vend.ts memoises its derivation: the verifier hands out the same frozen caller and
  // claims for a token it remembers, and the entry goes with them. Only successful
  // resolutions are kept; every refusal is decided afresh.
  const resolutions = new WeakMap<Caller, Map<string, Resolution>>()

  function resolveAfresh (caller: Caller, grant: string | undefined, action: 'read' | 'write'): Resolution {
    const resolved = resolveGrant(grants, caller.issuer, caller.claims, { ...(grant !== undefined ? { grant } : {}), actions: [action] })
    const signing = resolved.grant.signing
    if (signing === undefined) throw new SigningNotEnabled()
    return Object.freeze({ grant: resolved.grant, directory: resolved.grantPrefix, signing, bucketUrl: bucketUrls.get(resolved.grant.name) as string })
  }

  function resolve (caller: Caller, grant: unknown, action: 'read' | 'write'): Resolution {
    // The route's schema admits a string only; anything else is resolved (and refused) afresh.
    if (typeof grant !== 'string' && grant !== undefined) return resolveAfresh(caller, grant as string, action)
    if (!Object.isFrozen(caller) || !Object.isFrozen(caller.claims)) return resolveAfresh(caller, grant, action)
    const id = grant === undefined ? action : `${action}:${grant}`
    let perCaller = resolutions.get(caller)
    const known = perCaller?.get(id)
    if (known !== undefined) return known
    const resolved = resolveAfresh(caller, grant, action)
    if (perCaller === undefined) resolutions.set(caller, perCaller = new Map())
    if (perCaller.size >= RESOLUTIONS_PER_CALLER) perCaller.delete(perCaller.keys().next().value as string)
    perCaller.set(id, resolved)
    return resolved
  }

  /** The grant's signing credential when this replica's cache holds it: no promise on a hit. */
  const cached = (grant: string): CacheLookup | undefined => source.cached(orders.get(grant) as CredentialOrder)
  const load = async (grant: string): Promise<CacheLookup> => await source.obtain(orders.get(grant) as CredentialOrder)

  /** A form's refusals and decisions, made before any credential is looked up. */
  function planForm (caller: Caller, req: FormRequest): FormPlan {
    const { grant, directory, signing, bucketUrl: url } = resolve(caller, req.grant, 'write')
    const unique = signing.keys === 'unique'
    let target: KeyTarget | undefined
    if (unique) {
      // The service names the key, so a form is one object, written once.
      if (req.key !== undefined) throw explained(new KeyNotAllowed(), 'this grant names each upload\'s key itself; send fileName instead')
      target = uniqueKey(directory, randomId(), req.fileName)
    } else {
      if (req.fileName !== undefined) throw new BadRequest('fileName applies to grants whose signing.keys is unique; name the key instead')
      target = req.key !== undefined ? checkObjectKey(directory, req.key, true) : directoryTarget(directory)
    }
    if (target === undefined) throw explained(new KeyNotAllowed(), `your directory is ${directory}`)
    const maxBytes = req.maxBytes ?? signing.maxBytes
    if (maxBytes > signing.maxBytes) throw new SizeNotAllowed()
    if (req.contentType !== undefined && signing.contentTypes !== undefined && !signing.contentTypes.includes(req.contentType)) {
      throw new ContentTypeNotAllowed()
    }
    return { caller, req, grant, signing, url, unique, target, maxBytes }
  }

  function signForm ({ caller, req, grant, signing, url, unique, target, maxBytes }: FormPlan, { credentials, fromCache }: CacheLookup, nowMs: number): SignedFormResult {
    const issuedAt = Math.floor(nowMs / 1000)
    let callback: string | undefined
    if (signing.callback !== undefined) {
      const secret = deps.callbackSecrets?.get(grant.name)
      // Fail closed: prepare.ts guarantees the secret; without it no form is signed.
      if (secret === undefined) throw new Error(`grant ${grant.name}: no callback secret`)
      const ticket = issueTicket(secret, {
        g: grant.name,
        c: callerHash(caller.issuer, caller.subject),
        k: target.kind === 'exact' ? target.key : target.prefix,
        x: target.kind,
        e: issuedAt + signing.expiresSeconds + CALLBACK_GRACE_SECONDS,
        n: randomId()
      })
      callback = callbackParameter(signing.callback.url, ticket)
    }
    const signed = signPostForm({
      credentials,
      bucket: grant.bucket,
      region: grant.region,
      target,
      maxBytes,
      contentType: req.contentType,
      contentTypes: signing.contentTypes,
      forbidOverwrite: unique,
      callback,
      now: issuedAt * 1000,
      expiresSeconds: signing.expiresSeconds
    })
    const result: SignedFormResult = {
      url,
      fields: signed.fields,
      fieldsJson: signed.fieldsJson,
      keyPrefix: target.kind === 'exact' ? target.key : target.prefix,
      expiration: signed.expiration,
      grant: grant.name,
      maxBytes,
      fromCache
    }
    if (req.contentType !== undefined) result.contentType = req.contentType
    else if (signing.contentTypes !== undefined) result.contentTypes = [...signing.contentTypes]
    return result
  }

  /** A presigned URL's refusals and decisions, made before any credential is looked up. */
  function planUrl (caller: Caller, req: UrlRequest): UrlPlan {
    const { grant, directory, signing, bucketUrl: url } = resolve(caller, req.grant, req.method === 'PUT' ? 'write' : 'read')
    const target = checkObjectKey(directory, req.key, false)
    if (target === undefined) throw explained(new KeyNotAllowed(), `your directory is ${directory}`)
    let contentType: string | undefined
    if (req.method === 'GET') {
      if (req.contentType !== undefined) throw new BadRequest('contentType applies to PUT only')
    } else if (signing.contentTypes !== undefined) {
      if (req.contentType === undefined || !signing.contentTypes.includes(req.contentType)) throw new ContentTypeNotAllowed()
      contentType = req.contentType
    } else {
      contentType = req.contentType ?? DEFAULT_PUT_CONTENT_TYPE
    }
    return { req, grant, signing, url, key: target.key, contentType }
  }

  function signUrl ({ req, grant, signing, url, key, contentType }: UrlPlan, { credentials, fromCache }: CacheLookup, nowMs: number): SignedUrlResult {
    const signed = presignUrl({
      credentials,
      bucket: grant.bucket,
      region: grant.region,
      endpoint: grant.endpoint ?? ossEndpoint(grant.region),
      bucketUrl: url,
      key,
      method: req.method,
      contentType,
      forbidOverwrite: req.method === 'PUT' && signing.keys === 'unique',
      now: nowMs,
      expiresSeconds: signing.expiresSeconds
    })
    return { url: signed.url, method: req.method, key, headers: signed.headers, expiration: signed.expiration, grant: grant.name, fromCache }
  }

  // A signed answer is a pure function of the plan, the credential and the second it is
  // signed in (signPostForm and presignUrl sign at whole seconds), except where it draws
  // a random value (a unique key, a callback's ticket). So a caller asking again within
  // the same second, with the same credential in the cache, gets the answer already
  // signed: the same bytes it would be signed afresh to. Kept answers are frozen, so a
  // route may keep what it makes of them; each refusal is still decided per request.
  // One per caller and kind, the latest: an answer is only worth keeping for its second,
  // and a caller repeating itself repeats its last request.
  interface Kept<T> { id: string, credentials: object, second: number, result: T }
  const keptForms = new WeakMap<Caller, Kept<SignedFormResult>>()
  const keptUrls = new WeakMap<Caller, Kept<SignedUrlResult>>()

  function keep<T extends SignedFormResult | SignedUrlResult> (memo: WeakMap<Caller, Kept<T>>, caller: Caller, id: string | undefined, hit: CacheLookup, sign: (nowMs: number) => T): T {
    const nowMs = now()
    // As the resolution memo: only a frozen caller with frozen claims reads the same next time.
    if (id === undefined || !Object.isFrozen(caller) || !Object.isFrozen(caller.claims)) return sign(nowMs)
    const second = Math.floor(nowMs / 1000)
    const kept = memo.get(caller)
    if (kept !== undefined && kept.id === id && kept.credentials === hit.credentials && kept.second === second && kept.result.fromCache === hit.fromCache) return kept.result
    const result = sign(nowMs)
    Object.freeze(result)
    if ('fields' in result) Object.freeze(result.fields)
    else Object.freeze(result.headers)
    memo.set(caller, { id, credentials: hit.credentials, second, result })
    return result
  }

  return {
    async form (caller, req) {
      const plan = planForm(caller, req)
      return signForm(plan, cached(plan.grant.name) ?? await load(plan.grant.name), now())
    },
    async url (caller, req) {
      const plan = planUrl(caller, req)
      return signUrl(plan, cached(plan.grant.name) ?? await load(plan.grant.name), now())
    },
    formCached (caller, req) {
      const plan = planForm(caller, req)
      const hit = cached(plan.grant.name)
      if (hit === undefined) return undefined
      // Random parts (a unique key, a callback's ticket) are drawn afresh for every form.
      const id = plan.unique || plan.signing.callback !== undefined ? undefined : formRequestKey(req)
      return keep(keptForms, caller, id, hit, (nowMs) => signForm(plan, hit, nowMs))
    },
    urlCached (caller, req) {
      const plan = planUrl(caller, req)
      const hit = cached(plan.grant.name)
      if (hit === undefined) return undefined
      return keep(keptUrls, caller, urlRequestKey(req), hit, (nowMs) => signUrl(plan, hit, nowMs))
    }
  }
}
