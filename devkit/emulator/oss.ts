// A strict local stand-in for one OSS bucket, for tests, `verify` and the dev demo: the
// calls an upload client makes (Put/Get/Head/Delete, ListObjects v1/v2, multipart),
// answered with OSS's XML and error codes so the real `ali-oss` client behaves as it
// does in production. It authenticates V1 signatures made with STS credentials (the
// emulated STS says which exist, their secret, token, expiry, role and session policy)
// and authorises every call as OSS does: the role's policies AND the session policy
// must allow it, an explicit Deny anywhere wins. That intersection is the promise of
// the service, so the checks come in OSS's order and fail closed.
// Addressing: the bucket is the first label of Host (virtual-hosted style); on an IP
// or `localhost` (ali-oss against 127.0.0.1, or a browser, which cannot set Host) the
// configured bucket is implied. Listens on 127.0.0.1 only. Storage is in memory.
import { listenLoopback, readBody } from './http.js'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { createHash, createSign, generateKeyPairSync, randomBytes } from 'node:crypto'
import { Response, type FormData } from 'undici'
import { compilePolicy, type AccessRequest, type Decision } from '../policy/evaluate.js'
import {
  canonicalResource, parseAuthorization, parseQuery, parseV4Credential, parseV4Date, sign, signatureMatches, stringToSign,
  V4_ALGORITHM, v4Signature, v4StringToSign
} from './oss-signature.js'
import type { EmulatorLogger } from './sts.js'

/** What the emulated STS knows about a credential it issued (StsEmulator.issued fits). */
export interface StsCredentialRecord {
  accessKeySecret: string
  securityToken: string
  expiration: Date
  roleArn: string
  /** The session policy, or undefined when AssumeRole had none. */
  policy: unknown
}

export interface OssEmulatorOptions {
  bucket: string
  /** Look up an AccessKey id, e.g. `(id) => sts.issued(id)`. */
  credentials: (accessKeyId: string) => StsCredentialRecord | undefined
  /** RoleArn → the policies attached to the role (one document or several, combined as RAM does). */
  rolePolicies: Record<string, unknown>
  /** Used in resource ARNs: acs:oss:<region>:<accountId>:<bucket>/<key>. */
  region?: string
  accountId?: string
  /** Clock in ms, for credential expiry and the request-date check. Default Date.now. */
  now?: () => number
  /** Origins the bucket's CORS rule allows (a browser upload page). */
  corsOrigins?: string[]
  /** Largest request body accepted; default 32 MiB. */
  maxBodyBytes?: number
  logger?: EmulatorLogger
  port?: number
}

export interface StoredObject {
  body: Buffer
  etag: string
  contentType: string
  lastModified: Date
  type: 'Normal' | 'Multipart'
}

export interface OssRequestRecord {
  method: string
  /** e.g. PutObject, ListObjects, or '-' when the call was refused before it was understood. */
  operation: string
  key: string
  accessKeyId: string | undefined
  status: number
  /** 'ok' or the OSS error code. */
  outcome: string
}

export interface OssEmulator {
  /** http://127.0.0.1:<port>: what ali-oss takes as `endpoint`. */
  url: string
  /** Where the emulator serves the public key of its upload callbacks (`x-oss-pub-key-url`). */
  callbackKeyUrl: string
  /** The prefix a service's uploads.callbackKeyUrlPrefixes must allow for it. */
  callbackKeyUrlPrefix: string
  endpoint: string
  bucket: string
  requests: OssRequestRecord[]
  keys: () => string[]
  object: (key: string) => StoredObject | undefined
  allowOrigin: (origin: string) => void
  reset: () => void
  close: () => Promise<void>
}

/** OSS accepts a request date within 15 minutes of its own clock. */
const MAX_SKEW_MS = 15 * 60 * 1000
/** A V4 signature (URL or form) is valid for at most 7 days from its x-oss-date. */
const MAX_V4_LIFETIME_MS = 7 * 24 * 3600 * 1000
/** PostObject's limit on one object. */
const MAX_POST_BYTES = 5 * 1024 * 1024 * 1024
/** The query parameters of a V4 presigned URL (removed before the operation is decided). */
const V4_QUERY = ['x-oss-signature-version', 'x-oss-credential', 'x-oss-date', 'x-oss-expires', 'x-oss-signature', 'x-oss-security-token', 'x-oss-additional-headers']
/** What OSS replaces in a posted key with the uploaded file's name. */
const FILENAME = '$' + '{filename}'
const MIN_PART_BYTES = 100 * 1024
const MAX_PARTS = 10_000
const CORS_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD']
const CORS_HEADERS = ['authorization', 'content-type', 'content-md5', 'content-disposition', 'content-encoding', 'cache-control', 'expires', 'range', 'x-oss-*']
const CORS_EXPOSE = 'ETag, x-oss-request-id, x-oss-version-id'
/** Where the callback public key is served: a path no bucket-relative key request uses here. */
const CALLBACK_KEY_PATH = '/-/oss-emulator/callback_pub_key_v1.pem'
/** OSS waits this long for the app server's answer to a callback. */
const CALLBACK_TIMEOUT_MS = 5000
const LOOPBACK_HOST = /^(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|\[[0-9a-f:.]+\])$/i

class OssError {
  constructor (readonly status: number, readonly code: string, readonly message: string, readonly extra: Record<string, string> = {}) {}
}

const accessDenied = (message: string): OssError => new OssError(403, 'AccessDenied', message)

export function xmlEscape (s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] as string)
}

function xml (root: string, fields: Array<[string, string | number | boolean] | string>): string {
  const body = fields.map((f) => typeof f === 'string' ? f : `<${f[0]}>${xmlEscape(String(f[1]))}</${f[0]}>`).join('')
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}>${body}</${root}>`
}

function md5 (data: Buffer): Buffer {
  return createHash('md5').update(data).digest()
}

interface Upload { key: string, contentType: string, parts: Map<number, { etag: string, body: Buffer }> }

interface Operation {
  name: string
  action: string
  /** Bucket-level (ListObjects) or object-level. */
  onBucket: boolean
}

function operationFor (method: string, key: string, q: Map<string, string>): Operation | undefined {
  const op = (name: string, action: string): Operation => ({ name, action, onBucket: key === '' })
  if (key === '') {
    if (method === 'GET' && [...q.keys()].every((k) => ['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type', 'list-type', 'continuation-token', 'start-after', 'fetch-owner'].includes(k))) {
      return op(q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects', 'oss:ListObjects')
    }
    return undefined
  }
  const has = (k: string): boolean => q.has(k)
  const only = (...allowed: string[]): boolean => [...q.keys()].every((k) => allowed.includes(k) || k.startsWith('response-'))
  switch (method) {
    case 'PUT':
      if (has('partNumber') && has('uploadId') && only('partNumber', 'uploadId')) return op('UploadPart', 'oss:PutObject')
      return only() ? op('PutObject', 'oss:PutObject') : undefined
    case 'POST':
      if (has('uploads') && only('uploads')) return op('InitiateMultipartUpload', 'oss:PutObject')
      if (has('uploadId') && only('uploadId')) return op('CompleteMultipartUpload', 'oss:PutObject')
      return undefined
    case 'GET':
      if (has('uploadId')) return only('uploadId', 'max-parts', 'part-number-marker') ? op('ListParts', 'oss:ListParts') : undefined
      return only() ? op('GetObject', 'oss:GetObject') : undefined
    case 'HEAD':
      return only() ? op('HeadObject', 'oss:GetObject') : undefined
    case 'DELETE':
      if (has('uploadId')) return only('uploadId') ? op('AbortMultipartUpload', 'oss:AbortMultipartUpload') : undefined
      return only() ? op('DeleteObject', 'oss:DeleteObject') : undefined
  }
  return undefined
}

/** RAM combines a principal's attached policies: a Deny in any wins, else an Allow in any. */
function combine (decisions: Decision[]): Decision {
  if (decisions.includes('deny')) return 'deny'
  return decisions.includes('allow') ? 'allow' : 'implicit-deny'
}

function wildcardHeader (pattern: string, name: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern
}

export async function startOssEmulator (opts: OssEmulatorOptions): Promise<OssEmulator> {
  const now = opts.now ?? Date.now
  const bucket = opts.bucket
  const region = opts.region ?? 'cn-hangzhou'
  const accountId = opts.accountId ?? '1000000000000000'
  const maxBody = opts.maxBodyBytes ?? 32 * 1024 * 1024
  const hostId = `${bucket}.oss-${region}.aliyuncs.com`
  const origins = new Set(opts.corsOrigins ?? [])
  const roles = new Map<string, Array<ReturnType<typeof compilePolicy>>>()
  for (const [arn, docs] of Object.entries(opts.rolePolicies)) {
    roles.set(arn, (Array.isArray(docs) ? docs : [docs]).map((d) => compilePolicy(d)))
  }
  const objects = new Map<string, StoredObject>()
  const uploads = new Map<string, Upload>()
  const requests: OssRequestRecord[] = []
  const sockets = new Set<Socket>()
  // Like OSS, callbacks are signed with the emulator's own RSA key; its public key is
  // served at callbackKeyUrl.
  const callbackKeys = generateKeyPairSync('rsa', { modulusLength: 1024 })
  const callbackPublicPem = callbackKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  let callbackKeyUrl = ''

  const arn = (key: string | undefined): string => `acs:oss:${region}:${accountId}:${bucket}${key === undefined ? '' : '/' + key}`

  function corsHeaders (req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin
    if (origin === undefined || !origins.has(origin)) return {}
    return { 'access-control-allow-origin': origin, 'access-control-expose-headers': CORS_EXPOSE, vary: 'Origin' }
  }

  function send (req: IncomingMessage, res: ServerResponse, requestId: string, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
    if (res.destroyed) return
    const payload = typeof body === 'string' ? Buffer.from(body) : body
    res.writeHead(status, {
      server: 'AliyunOSS',
      'x-oss-request-id': requestId,
      ...corsHeaders(req),
      ...(payload.length > 0 && headers['content-type'] === undefined ? { 'content-type': 'application/xml' } : {}),
      ...headers,
      'content-length': String(payload.length)
    })
    res.end(req.method === 'HEAD' ? undefined : payload)
  }

  function sendError (req: IncomingMessage, res: ServerResponse, requestId: string, err: OssError): void {
    const fields: Array<[string, string]> = [['Code', err.code], ['Message', err.message], ['RequestId', requestId], ['HostId', hostId], ...Object.entries(err.extra)]
    const body = xml('Error', fields)
    // A HEAD answer has no body; OSS puts the error document, base64, in x-oss-err.
    const extra: Record<string, string> = req.method === 'HEAD' ? { 'x-oss-err': Buffer.from(body).toString('base64') } : {}
    send(req, res, requestId, err.status, req.method === 'HEAD' ? '' : body, { 'content-type': 'application/xml', ...extra })
  }

  function preflight (req: IncomingMessage, res: ServerResponse, requestId: string): void {
    const origin = req.headers.origin
    const method = req.headers['access-control-request-method']
    const wanted = (req.headers['access-control-request-headers'] ?? '').split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '')
    const ok = origin !== undefined && origins.has(origin) && method !== undefined && CORS_METHODS.includes(method) &&
      wanted.every((h) => CORS_HEADERS.some((p) => wildcardHeader(p, h)))
    if (!ok) {
      sendError(req, res, requestId, new OssError(403, 'AccessForbidden', 'CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Requet-Headers are not whitelisted by the resource\'s CORS spec.'))
      return
    }
    res.writeHead(200, {
      server: 'AliyunOSS',
      'x-oss-request-id': requestId,
      'access-control-allow-origin': origin,
      'access-control-allow-methods': CORS_METHODS.join(', '),
      'access-control-allow-headers': wanted.join(', '),
      'access-control-expose-headers': CORS_EXPOSE,
      'access-control-max-age': '600',
      vary: 'Origin',
      'content-length': '0'
    })
    res.end()
  }

  /** The STS credential behind an AccessKey id and the token presented with it, or OSS's refusal. */
  function stsCredential (accessKeyId: string, token: unknown): StsCredentialRecord {
    const cred = opts.credentials(accessKeyId)
    if (cred === undefined) throw new OssError(403, 'InvalidAccessKeyId', 'The OSS Access Key Id you provided does not exist in our records.', { OSSAccessKeyId: accessKeyId })
    if (typeof token !== 'string' || !signatureMatches(cred.securityToken, token)) {
      throw new OssError(403, 'InvalidSecurityToken', 'The security token you provided is invalid.')
    }
    if (now() >= cred.expiration.getTime()) throw new OssError(403, 'SecurityTokenExpired', 'The security token you provided has expired.')
    return cred
  }

  /** A V4 query-signed request (presigned URL): algorithm, credential scope, token, expiry, signature. */
  function authenticateV4Query (req: IncomingMessage, key: string, q: Map<string, string>): { accessKeyId: string, roleArn: string, policy: unknown } {
    if (q.get('x-oss-signature-version') !== V4_ALGORITHM) throw new OssError(400, 'InvalidArgument', 'x-oss-signature-version must be OSS4-HMAC-SHA256.')
    const credential = parseV4Credential(q.get('x-oss-credential'))
    const dateText = q.get('x-oss-date')
    const date = parseV4Date(dateText)
    const expiresText = q.get('x-oss-expires') ?? ''
    const expires = /^\d{1,6}$/.test(expiresText) ? Number(expiresText) : NaN
    const signature = q.get('x-oss-signature')
    if (credential === undefined || credential.region !== region) throw new OssError(400, 'InvalidArgument', 'x-oss-credential is invalid.')
    if (Number.isNaN(date) || credential.day !== dateText?.slice(0, 8)) throw new OssError(400, 'InvalidArgument', 'x-oss-date is invalid.')
    if (!(expires >= 1 && expires * 1000 <= MAX_V4_LIFETIME_MS)) throw new OssError(400, 'InvalidArgument', 'x-oss-expires must be between 1 and 604800 seconds.')
    if (signature === undefined) throw new OssError(400, 'InvalidArgument', 'x-oss-signature is missing.')
    const cred = stsCredential(credential.accessKeyId, q.get('x-oss-security-token'))
    const toSign = v4StringToSign(req.method ?? '', bucket, key, q, req.headers, dateText as string, region)
    if (!signatureMatches(v4Signature(cred.accessKeySecret, credential.day, region, toSign), signature)) {
      throw new OssError(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        { StringToSign: toSign, OSSAccessKeyId: credential.accessKeyId })
    }
    if (date - now() > MAX_SKEW_MS) {
      throw new OssError(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', { RequestTime: dateText as string, ServerTime: new Date(now()).toISOString() })
    }
    if (now() > date + expires * 1000) throw accessDenied('Request has expired.')
    return { accessKeyId: credential.accessKeyId, roleArn: cred.roleArn, policy: cred.policy }
  }

  /** Who is calling, checked in OSS's order: AccessKey, token, expiry, signature, date. */
  function authenticate (req: IncomingMessage, key: string, q: Map<string, string>): { accessKeyId: string, roleArn: string, policy: unknown } {
    if (q.has('x-oss-signature-version')) return authenticateV4Query(req, key, q)
    const rawAuth = req.headers.authorization
    if (rawAuth === undefined) throw accessDenied('You have no right to access this object because of bucket acl.')
    const auth = parseAuthorization(rawAuth)
    if (auth === undefined) throw new OssError(400, 'InvalidArgument', 'Authorization header is invalid (this emulator checks OSS V1 signatures only).')
    const cred = opts.credentials(auth.accessKeyId)
    if (cred === undefined) throw new OssError(403, 'InvalidAccessKeyId', 'The OSS Access Key Id you provided does not exist in our records.', { OSSAccessKeyId: auth.accessKeyId })
    const token = req.headers['x-oss-security-token']
    if (typeof token !== 'string' || !signatureMatches(cred.securityToken, token)) {
      throw new OssError(403, 'InvalidSecurityToken', 'The security token you provided is invalid.')
    }
    if (now() >= cred.expiration.getTime()) throw new OssError(403, 'SecurityTokenExpired', 'The security token you provided has expired.')
    const canonical = stringToSign(req.method ?? '', req.headers, canonicalResource(bucket, key, q))
    if (!signatureMatches(sign(cred.accessKeySecret, canonical), auth.signature)) {
      throw new OssError(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        { StringToSign: canonical, OSSAccessKeyId: auth.accessKeyId })
    }
    const dateText = req.headers['x-oss-date'] ?? req.headers.date
    const date = typeof dateText === 'string' ? Date.parse(dateText) : NaN
    if (Number.isNaN(date)) throw accessDenied('OSS authentication requires a valid Date.')
    if (Math.abs(now() - date) > MAX_SKEW_MS) {
      throw new OssError(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.',
        { RequestTime: dateText as string, ServerTime: new Date(now()).toISOString() })
    }
    return { accessKeyId: auth.accessKeyId, roleArn: cred.roleArn, policy: cred.policy }
  }

  function authorise (who: { roleArn: string, policy: unknown }, op: Operation, key: string, q: Map<string, string>): void {
    const request: AccessRequest = op.onBucket
      ? { action: op.action, resource: arn(undefined), context: { 'oss:Prefix': q.get('prefix') ?? '', 'oss:Delimiter': q.get('delimiter') ?? '' } }
      : { action: op.action, resource: arn(key), context: {} }
    const rolePolicies = roles.get(who.roleArn) ?? []
    const role = combine(rolePolicies.map((p) => p(request)))
    const session = who.policy === undefined ? 'allow' : compilePolicy(who.policy)(request)
    if (role !== 'allow' || session !== 'allow') {
      throw accessDenied(`You are forbidden to ${op.action} on ${request.resource ?? ''} (${role !== 'allow' ? 'role policy' : 'session policy'}).`)
    }
  }

  function list (req: IncomingMessage, res: ServerResponse, requestId: string, q: Map<string, string>, v2: boolean): void {
    const prefix = q.get('prefix') ?? ''
    const delimiter = q.get('delimiter') ?? ''
    const maxKeysText = q.get('max-keys') ?? '100'
    const maxKeys = /^\d{1,4}$/.test(maxKeysText) ? Number(maxKeysText) : NaN
    if (!(maxKeys >= 1 && maxKeys <= 1000)) throw new OssError(400, 'InvalidArgument', 'Argument max-keys must be an integer between 1 and 1000.')
    const urlEncode = q.get('encoding-type') === 'url'
    const enc = (s: string): string => urlEncode ? encodeURIComponent(s).replace(/%2F/g, '/') : s
    let after = q.get('marker') ?? ''
    if (v2) {
      const token = q.get('continuation-token')
      after = token !== undefined ? Buffer.from(token, 'base64url').toString('utf8') : q.get('start-after') ?? ''
    }
    const contents: string[] = []
    const prefixes: string[] = []
    let truncated = false
    let last = ''
    for (const k of [...objects.keys()].sort()) {
      if (!k.startsWith(prefix) || k <= after) continue
      const rest = k.slice(prefix.length)
      const cut = delimiter === '' ? -1 : rest.indexOf(delimiter)
      const common = cut === -1 ? undefined : prefix + rest.slice(0, cut + delimiter.length)
      // A common prefix already returned (on this page, or before the marker) is not repeated.
      if (common !== undefined && (prefixes.at(-1) === common || common <= after)) continue
      if (contents.length + prefixes.length >= maxKeys) { truncated = true; break }
      if (common !== undefined) {
        prefixes.push(common)
        last = common
      } else {
        contents.push(k)
        last = k
      }
    }
    const owner = `<Owner><ID>${accountId}</ID><DisplayName>${accountId}</DisplayName></Owner>`
    const contentXml = contents.map((k) => {
      const o = objects.get(k) as StoredObject
      return `<Contents><Key>${xmlEscape(enc(k))}</Key><LastModified>${o.lastModified.toISOString()}</LastModified><ETag>${xmlEscape(o.etag)}</ETag><Type>${o.type}</Type><Size>${o.body.length}</Size><StorageClass>Standard</StorageClass>${!v2 || q.get('fetch-owner') === 'true' ? owner : ''}</Contents>`
    })
    const prefixXml = prefixes.map((p) => `<CommonPrefixes><Prefix>${xmlEscape(enc(p))}</Prefix></CommonPrefixes>`)
    const head: Array<[string, string | number | boolean]> = [['Name', bucket], ['Prefix', enc(prefix)]]
    if (v2) {
      head.push(['MaxKeys', maxKeys], ['Delimiter', enc(delimiter)], ['IsTruncated', truncated], ['KeyCount', contents.length + prefixes.length])
      if (q.has('start-after')) head.push(['StartAfter', enc(q.get('start-after') as string)])
      if (q.has('continuation-token')) head.push(['ContinuationToken', q.get('continuation-token') as string])
      if (truncated) head.push(['NextContinuationToken', Buffer.from(last).toString('base64url')])
    } else {
      head.push(['Marker', enc(q.get('marker') ?? '')], ['MaxKeys', maxKeys], ['Delimiter', enc(delimiter)], ['IsTruncated', truncated])
      if (truncated) head.push(['NextMarker', enc(last)])
    }
    if (urlEncode) head.push(['EncodingType', 'url'])
    send(req, res, requestId, 200, xml('ListBucketResult', [...head, ...contentXml, ...prefixXml]))
  }

  function objectHeaders (o: StoredObject): Record<string, string> {
    return {
      'content-type': o.contentType,
      etag: o.etag,
      'last-modified': o.lastModified.toUTCString(),
      'x-oss-object-type': o.type,
      'x-oss-storage-class': 'Standard'
    }
  }

  /** What a write's ACL and tagging headers need beyond oss:PutObject (OSS checks each). */
  function authoriseWriteHeaders (who: { roleArn: string, policy: unknown }, key: string, get: (name: string) => string | undefined): void {
    if (get('x-oss-object-acl') !== undefined) authorise(who, { name: 'PutObjectAcl', action: 'oss:PutObjectAcl', onBucket: false }, key, new Map())
    if (get('x-oss-tagging') !== undefined) authorise(who, { name: 'PutObjectTagging', action: 'oss:PutObjectTagging', onBucket: false }, key, new Map())
  }

  /** `x-oss-forbid-overwrite: true` on a key that exists: OSS's 409. */
  function refuseOverwrite (key: string, forbid: string | undefined): void {
    if (forbid?.toLowerCase() === 'true' && objects.has(key)) {
      throw new OssError(409, 'FileAlreadyExists', 'The object you specified already exists and can not be overwritten.')
    }
  }

  function upload (q: Map<string, string>, key: string): Upload {
    const u = uploads.get(q.get('uploadId') ?? '')
    if (u === undefined || u.key !== key) throw new OssError(404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.')
    return u
  }

  function perform (req: IncomingMessage, res: ServerResponse, requestId: string, op: Operation, key: string, q: Map<string, string>, body: Buffer): void {
    const contentType = req.headers['content-type'] ?? 'application/octet-stream'
    switch (op.name) {
      case 'ListObjects':
      case 'ListObjectsV2':
        return list(req, res, requestId, q, op.name === 'ListObjectsV2')
      case 'PutObject': {
        const forbid = req.headers['x-oss-forbid-overwrite']
        refuseOverwrite(key, typeof forbid === 'string' ? forbid : undefined)
        const etag = `"${md5(body).toString('hex').toUpperCase()}"`
        objects.set(key, { body, etag, contentType, lastModified: new Date(now()), type: 'Normal' })
        return send(req, res, requestId, 200, '', { etag })
      }
      case 'GetObject':
      case 'HeadObject': {
        const o = objects.get(key)
        if (o === undefined) throw new OssError(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key })
        const headers = objectHeaders(o)
        for (const [k, v] of q) if (k.startsWith('response-')) headers[k.slice('response-'.length)] = v
        return send(req, res, requestId, 200, o.body, headers)
      }
      case 'DeleteObject':
        objects.delete(key)
        return send(req, res, requestId, 204, '')
      case 'InitiateMultipartUpload': {
        const uploadId = randomBytes(16).toString('hex').toUpperCase()
        uploads.set(uploadId, { key, contentType, parts: new Map() })
        return send(req, res, requestId, 200, xml('InitiateMultipartUploadResult', [['Bucket', bucket], ['Key', key], ['UploadId', uploadId]]))
      }
      case 'UploadPart': {
        const u = upload(q, key)
        const text = q.get('partNumber') ?? ''
        const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN
        if (!(n >= 1 && n <= MAX_PARTS)) throw new OssError(400, 'InvalidArgument', `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive.`)
        const etag = `"${md5(body).toString('hex').toUpperCase()}"`
        u.parts.set(n, { etag, body })
        return send(req, res, requestId, 200, '', { etag })
      }
      case 'CompleteMultipartUpload': {
        const u = upload(q, key)
        const listed = [...body.toString('utf8').matchAll(/<Part>\s*<PartNumber>\s*(\d+)\s*<\/PartNumber>\s*<ETag>\s*([^<]*?)\s*<\/ETag>\s*<\/Part>/g)]
          .map((m) => ({ n: Number(m[1]), etag: (m[2] as string).replace(/&quot;/g, '"') }))
        if (listed.length === 0) throw new OssError(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.')
        const chosen: Buffer[] = []
        const digests: Buffer[] = []
        if (listed.some((p, i) => i > 0 && p.n <= (listed[i - 1] as { n: number }).n)) {
          throw new OssError(400, 'InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered by part number.')
        }
        listed.forEach((p, i) => {
          const part = u.parts.get(p.n)
          if (part === undefined || part.etag.toUpperCase() !== p.etag.toUpperCase()) throw new OssError(400, 'InvalidPart', 'One or more of the specified parts could not be found or the specified entity tag might not have matched the part\'s entity tag.')
          if (i < listed.length - 1 && part.body.length < MIN_PART_BYTES) throw new OssError(400, 'EntityTooSmall', 'Your proposed upload smaller than the minimum allowed size.')
          chosen.push(part.body)
          digests.push(md5(part.body))
        })
        const etag = `"${md5(Buffer.concat(digests)).toString('hex').toUpperCase()}-${listed.length}"`
        objects.set(key, { body: Buffer.concat(chosen), etag, contentType: u.contentType, lastModified: new Date(now()), type: 'Multipart' })
        uploads.delete(q.get('uploadId') as string)
        return send(req, res, requestId, 200, xml('CompleteMultipartUploadResult', [['Location', `http://${hostId}/${key}`], ['Bucket', bucket], ['Key', key], ['ETag', etag]]), { etag })
      }
      case 'AbortMultipartUpload':
        upload(q, key)
        uploads.delete(q.get('uploadId') as string)
        return send(req, res, requestId, 204, '')
      case 'ListParts': {
        const u = upload(q, key)
        const parts = [...u.parts.entries()].sort((a, b) => a[0] - b[0]).map(([n, p]) =>
          `<Part><PartNumber>${n}</PartNumber><LastModified>${new Date(now()).toISOString()}</LastModified><ETag>${xmlEscape(p.etag)}</ETag><Size>${p.body.length}</Size></Part>`)
        return send(req, res, requestId, 200, xml('ListPartsResult', [['Bucket', bucket], ['Key', key], ['UploadId', q.get('uploadId') as string], ['IsTruncated', false], ...parts]))
      }
    }
    throw new OssError(501, 'NotImplemented', 'A header you provided implies functionality that is not implemented.')
  }

  /**
   * PostObject with a V4 form: the signature over the base64 policy, then every policy
   * condition. Fields the policy does not name are accepted, as OSS documents (an
   * emulator stricter than OSS would hide what such a field can do): they act as the
   * headers of a PutObject, so `x-oss-object-acl` and `x-oss-tagging` need their own
   * rights, `x-oss-forbid-overwrite` refuses an existing key, and the stored type comes
   * from `x-oss-content-type`, then `Content-Type`, then the file part's own type.
   * Refusals are OSS's: AccessDenied "Invalid according to Policy", EntityTooLarge /
   * EntityTooSmall for content-length-range, SignatureDoesNotMatch, FileAlreadyExists.
   */
  async function postObject (req: IncomingMessage, res: ServerResponse, requestId: string, body: Buffer, record: OssRequestRecord): Promise<void> {
    record.operation = 'PostObject'
    let form: FormData
    try {
      form = await new Response(new Uint8Array(body), { headers: { 'content-type': String(req.headers['content-type']) } }).formData()
    } catch {
      throw new OssError(400, 'MalformedPOSTRequest', 'The body of your POST request is not well-formed multipart/form-data.')
    }
    const fields = new Map<string, string>()
    let file: { name: string, size: number, type: string, arrayBuffer: () => Promise<ArrayBuffer> } | undefined
    for (const [name, value] of form) {
      const lower = name.toLowerCase()
      if (lower === 'file') {
        if (typeof value === 'string') throw new OssError(400, 'InvalidArgument', 'The file field must be a file.')
        file = value
        break // OSS ignores every field after the file
      }
      if (typeof value !== 'string') throw new OssError(400, 'InvalidArgument', `The field ${name} must not be a file.`)
      if (fields.has(lower)) throw new OssError(400, 'InvalidArgument', `The field ${name} appears more than once.`)
      fields.set(lower, value)
    }
    if (file === undefined) throw new OssError(400, 'InvalidArgument', 'The file field is missing (it must come last).')
    if (fields.has('ossaccesskeyid') || fields.has('signature')) throw new OssError(400, 'InvalidArgument', 'This emulator checks V4 forms (x-oss-signature-version) only.')
    const policyText = fields.get('policy')
    const signature = fields.get('x-oss-signature')
    if (policyText === undefined || signature === undefined) throw accessDenied('The policy and x-oss-signature fields are required.')
    if (fields.get('x-oss-signature-version') !== V4_ALGORITHM) throw new OssError(400, 'InvalidArgument', 'x-oss-signature-version must be OSS4-HMAC-SHA256.')
    const credential = parseV4Credential(fields.get('x-oss-credential'))
    const dateText = fields.get('x-oss-date')
    const date = parseV4Date(dateText)
    if (credential === undefined || credential.region !== region) throw new OssError(400, 'InvalidArgument', 'x-oss-credential is invalid.')
    if (Number.isNaN(date) || credential.day !== dateText?.slice(0, 8)) throw new OssError(400, 'InvalidArgument', 'x-oss-date is invalid.')
    record.accessKeyId = credential.accessKeyId
    const cred = stsCredential(credential.accessKeyId, fields.get('x-oss-security-token'))
    if (!signatureMatches(v4Signature(cred.accessKeySecret, credential.day, region, policyText), signature)) {
      throw new OssError(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', { OSSAccessKeyId: credential.accessKeyId })
    }
    let policy: { expiration?: unknown, conditions?: unknown }
    try {
      policy = JSON.parse(Buffer.from(policyText, 'base64').toString('utf8'))
    } catch {
      throw new OssError(400, 'InvalidPolicyDocument', 'Invalid Policy: Invalid JSON.')
    }
    const expiration = typeof policy?.expiration === 'string' ? Date.parse(policy.expiration) : NaN
    if (Number.isNaN(expiration) || !Array.isArray(policy.conditions)) throw new OssError(400, 'InvalidPolicyDocument', 'Invalid Policy: expiration and conditions are required.')
    if (date - now() > MAX_SKEW_MS) throw new OssError(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.')
    if (now() > expiration || now() > date + MAX_V4_LIFETIME_MS) throw accessDenied('Invalid according to Policy: Policy expired.')

    const failed = (c: unknown): OssError => accessDenied(`Invalid according to Policy: Policy Condition failed: ${JSON.stringify(c)}`)
    const named = new Set<string>()
    let range: [number, number] | undefined
    const valueOf = (name: string): string | undefined => name === 'bucket' ? bucket : fields.get(name)
    for (const c of policy.conditions as unknown[]) {
      if (c !== null && typeof c === 'object' && !Array.isArray(c)) {
        const entries = Object.entries(c as Record<string, unknown>)
        if (entries.length !== 1) throw new OssError(400, 'InvalidPolicyDocument', 'Invalid Policy: a condition object names one field.')
        const [name, want] = entries[0] as [string, unknown]
        named.add(name.toLowerCase())
        if (valueOf(name.toLowerCase()) !== want) throw failed(c)
        continue
      }
      if (!Array.isArray(c) || typeof c[0] !== 'string') throw new OssError(400, 'InvalidPolicyDocument', 'Invalid Policy: unknown condition.')
      const op = c[0].toLowerCase()
      if (op === 'content-length-range') {
        if (c.length !== 3 || !Number.isInteger(c[1]) || !Number.isInteger(c[2])) throw new OssError(400, 'InvalidPolicyDocument', 'Invalid Policy: content-length-range takes two integers.')
        range = [c[1] as number, c[2] as number]
        continue
      }
      if (c.length !== 3 || typeof c[1] !== 'string' || !c[1].startsWith('$')) throw new OssError(400, 'InvalidPolicyDocument', `Invalid Policy: bad ${op} condition.`)
      const name = c[1].slice(1).toLowerCase()
      named.add(name)
      const got = valueOf(name)
      const want = c[2]
      const ok = op === 'eq'
        ? got === want
        : op === 'starts-with'
          ? typeof want === 'string' && got !== undefined && got.startsWith(want)
          : op === 'in'
            ? Array.isArray(want) && got !== undefined && want.includes(got)
            : op === 'not-in'
              ? Array.isArray(want) && (got === undefined || !want.includes(got))
              : undefined
      if (ok === undefined) throw new OssError(400, 'InvalidPolicyDocument', `Invalid Policy: unknown operator ${op}.`)
      if (!ok) throw failed(c)
    }
    if (file.size > MAX_POST_BYTES || (range !== undefined && file.size > range[1])) throw new OssError(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size.')
    if (range !== undefined && file.size < range[0]) throw new OssError(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size.')

    const rawKey = fields.get('key')
    if (rawKey === undefined || rawKey === '') throw new OssError(400, 'InvalidArgument', 'The key field is required.')
    const key = rawKey.replaceAll(FILENAME, file.name)
    if (key.includes('\u0000') || Buffer.byteLength(key) > 1023) throw new OssError(400, 'InvalidObjectName', 'The object name is not valid.')
    record.key = key
    const who = { roleArn: cred.roleArn, policy: cred.policy }
    authorise(who, { name: 'PostObject', action: 'oss:PutObject', onBucket: false }, key, new Map())
    authoriseWriteHeaders(who, key, (name) => fields.get(name))
    refuseOverwrite(key, fields.get('x-oss-forbid-overwrite'))
    const data = Buffer.from(await file.arrayBuffer())
    const etag = `"${md5(data).toString('hex').toUpperCase()}"`
    const contentType = fields.get('x-oss-content-type') ?? fields.get('content-type') ?? (file.type !== '' ? file.type : 'application/octet-stream')
    objects.set(key, { body: data, etag, contentType, lastModified: new Date(now()), type: 'Normal' })
    const callback = fields.get('callback')
    if (callback !== undefined) return await performCallback(req, res, requestId, callback, { key, size: data.length, etag, contentType })
    const status = fields.get('success_action_status')
    if (status === '201') {
      return send(req, res, requestId, 201, xml('PostResponse', [['Bucket', bucket], ['Location', `http://${hostId}/${key}`], ['Key', key], ['ETag', etag]]), { etag })
    }
    send(req, res, requestId, status === '200' ? 200 : 204, '', { etag })
  }

  /**
   * OSS's upload callback, after the object is stored: the `callback` parameter's body
   * with its variables filled, posted to callbackUrl, signed (RSA-MD5 over
   * urldecode(path) + query + "\n" + body, base64 in Authorization, the key's URL base64
   * in x-oss-pub-key-url). The app server's 200 answer is relayed to the client with
   * 200; anything else is 203 CallbackFailed (the object stays, as on OSS).
   */
  async function performCallback (req: IncomingMessage, res: ServerResponse, requestId: string, param: string, o: { key: string, size: number, etag: string, contentType: string }): Promise<void> {
    let p: { callbackUrl?: unknown, callbackBody?: unknown, callbackBodyType?: unknown }
    try {
      p = JSON.parse(Buffer.from(param, 'base64').toString('utf8'))
    } catch {
      throw new OssError(400, 'InvalidArgument', 'The callback parameter is not valid base64 JSON.')
    }
    if (typeof p.callbackUrl !== 'string' || typeof p.callbackBody !== 'string') throw new OssError(400, 'InvalidArgument', 'callbackUrl and callbackBody are required.')
    const json = p.callbackBodyType === 'application/json'
    const values: Record<string, string | number> = { bucket, object: o.key, size: o.size, mimeType: o.contentType, etag: o.etag }
    const body = p.callbackBody.replace(/\$\{(\w+)\}/g, (m, name: string) => {
      const v = values[name]
      if (v === undefined) return m
      return json ? (typeof v === 'number' ? String(v) : JSON.stringify(v)) : encodeURIComponent(String(v))
    })
    const target = new URL(p.callbackUrl)
    const toSign = `${decodeURIComponent(target.pathname)}${target.search}\n${body}`
    const authorization = createSign('RSA-MD5').update(toSign, 'utf8').sign(callbackKeys.privateKey).toString('base64')
    try {
      const answer = await fetch(target, {
        method: 'POST',
        body,
        headers: { 'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded', authorization, 'x-oss-pub-key-url': Buffer.from(callbackKeyUrl).toString('base64') },
        signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
        redirect: 'error'
      })
      const text = await answer.text()
      if (answer.status === 200) return send(req, res, requestId, 200, text, { etag: o.etag, 'content-type': answer.headers.get('content-type') ?? 'application/json' })
    } catch {}
    const err = new OssError(203, 'CallbackFailed', 'Response body is not valid json format.')
    sendError(req, res, requestId, err)
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomBytes(12).toString('hex').toUpperCase()
    const method = req.method ?? ''
    const rawUrl = req.url ?? '/'
    const qAt = rawUrl.indexOf('?')
    const path = qAt === -1 ? rawUrl : rawUrl.slice(0, qAt)
    const record: OssRequestRecord = { method, operation: '-', key: '', accessKeyId: undefined, status: 0, outcome: 'pending' }
    requests.push(record)
    const finish = (status: number, outcome: string): void => {
      record.status = status
      record.outcome = outcome
      opts.logger?.debug({ requestId, method, operation: record.operation, outcome }, 'oss emulator')
    }
    if (method === 'GET' && path === CALLBACK_KEY_PATH) {
      record.operation = 'CallbackPublicKey'
      send(req, res, requestId, 200, callbackPublicPem, { 'content-type': 'application/x-pem-file' })
      return finish(200, 'ok')
    }
    if (method === 'OPTIONS') {
      record.operation = 'Preflight'
      preflight(req, res, requestId)
      return finish(res.statusCode, res.statusCode === 200 ? 'ok' : 'AccessForbidden')
    }
    try {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '')
      if (!LOOPBACK_HOST.test(host) && host.split('.')[0] !== bucket) {
        throw new OssError(404, 'NoSuchBucket', 'The specified bucket does not exist.', { BucketName: host.split('.')[0] ?? '' })
      }
      const q = parseQuery(qAt === -1 ? '' : rawUrl.slice(qAt + 1))
      let key: string
      try {
        key = decodeURIComponent(path.slice(1))
      } catch {
        key = '\u0000'
      }
      if (q === undefined || key.includes('\u0000') || Buffer.byteLength(key) > 1023) throw new OssError(400, 'InvalidArgument', 'The request URI is not valid.')
      const body = await readBody(req, maxBody)
      if (body === undefined) throw new OssError(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed object size.')
      // PostObject: POST to the bucket itself (`/`, or path-style `/<bucket>`) with a form.
      if (method === 'POST' && (key === '' || key === bucket || key === `${bucket}/`) && q.size === 0 &&
        /^multipart\/form-data/i.test(req.headers['content-type'] ?? '')) {
        await postObject(req, res, requestId, body, record)
        return finish(res.statusCode, 'ok')
      }
      // V4 presigned URLs are path-style (`/<bucket>/<key>`) off aliyuncs.com.
      const v4 = q.has('x-oss-signature-version')
      if (v4 && key.startsWith(`${bucket}/`)) key = key.slice(bucket.length + 1)
      record.key = key
      const who = authenticate(req, key, q)
      if (v4) for (const k of V4_QUERY) q.delete(k)
      record.accessKeyId = who.accessKeyId
      const op = operationFor(method, key, q)
      if (op === undefined) throw new OssError(501, 'NotImplemented', 'This operation is not implemented by the OSS emulator.')
      record.operation = op.name
      const digest = req.headers['content-md5']
      if (typeof digest === 'string' && md5(body).toString('base64') !== digest) {
        throw new OssError(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.')
      }
      authorise(who, op, key, q)
      if (op.name === 'PutObject') authoriseWriteHeaders(who, key, (name) => { const v = req.headers[name]; return typeof v === 'string' ? v : undefined })
      perform(req, res, requestId, op, key, q, body)
      finish(res.statusCode, 'ok')
    } catch (err) {
      if (!(err instanceof OssError)) throw err
      sendError(req, res, requestId, err)
      finish(err.status, err.code)
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'oss emulator failed')
      if (!res.headersSent && !res.destroyed) sendError(req, res, 'emulator', new OssError(500, 'InternalError', 'Emulator failure.'))
    })
  })
  const url = await listenLoopback(server, opts.port ?? 0, sockets)
  callbackKeyUrl = `${url}${CALLBACK_KEY_PATH}`
  let closed = false

  return {
    url,
    callbackKeyUrl,
    callbackKeyUrlPrefix: `${url}${CALLBACK_KEY_PATH.slice(0, CALLBACK_KEY_PATH.lastIndexOf('/') + 1)}`,
    endpoint: url,
    bucket,
    requests,
    keys: () => [...objects.keys()].sort(),
    object: (key) => objects.get(key),
    allowOrigin: (origin) => { origins.add(origin) },
    reset () {
      objects.clear()
      uploads.clear()
      requests.length = 0
    },
    async close () {
      if (closed) return
      closed = true
      const done = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const s of sockets) s.destroy()
      await done
    }
  }
}
