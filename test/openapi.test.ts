// openapi.yaml is what users read and generate clients from; these tests keep it true.
//
// One source of truth, two texts: the TypeBox schemas in src/ validate and serialise
// (serialisation drops unlisted fields, so they are the security boundary and stay
// code), and the document restates them for readers, with descriptions and examples.
// Instead of generating one from the other, each component schema in the document is
// compared with its TypeBox twin after normalising away what does not change
// validation (descriptions, examples, TypeBox's symbols, `$ref` indirection, a union of
// literals written as `enum`). A field, a constraint or an error code added on one side
// only fails here; the routes, statuses and bodies are checked against the document by
// test/helpers/contract.ts on every response the route tests receive.
import t from 'tap'
import type { TSchema } from '@sinclair/typebox'
import { build } from './helpers/build.js'
import { assertContract, contractErrors, document, DOCUMENT_BYTES, exchange, type Exchange } from './helpers/contract.js'
import * as errorsModule from '../src/errors.js'
import { ERROR_CODES, ErrorCode, errors } from '../src/errors.js'
import { Action } from '../src/config/schema.js'
import { CredentialsRequest, CredentialsResponse, CredentialsUriResponse, OssAppServerError, OssAppServerResponse } from '../src/http/credentials/schemas.js'
import { ErrorResponse } from '../src/http/schemas.js'
import { FORMATS, MEDIA_TYPES } from '../src/http/credentials/formats.js'
import { Liveness, NotReady, Ready } from '../src/http/health.js'
import { AvailableGrant, GrantSigning, GrantsResponse, UnusableGrant } from '../src/http/grants/schemas.js'
import { UploadFormFields, UploadFormRequest, UploadFormResponse, UploadUrlRequest, UploadUrlResponse } from '../src/http/uploads/schemas.js'

const TWINS: Record<string, TSchema> = {
  Action,
  CredentialsRequest,
  Credentials: CredentialsResponse,
  OssAppServerCredentials: OssAppServerResponse,
  CredentialsUriCredentials: CredentialsUriResponse,
  Error: ErrorResponse,
  OssAppServerError,
  ErrorCode,
  Liveness,
  Ready,
  NotReady,
  UploadFormRequest,
  UploadFormFields,
  UploadForm: UploadFormResponse,
  UploadUrlRequest,
  UploadUrl: UploadUrlResponse,
  Grants: GrantsResponse,
  AvailableGrant,
  GrantSigning,
  UnusableGrant
}
/** Document-only schemas, each a plain composition of twins. */
const COMPOSED = new Set(['AnyError'])

const ANNOTATIONS = new Set(['description', 'examples', 'example', 'title', '$id', '$comment'])

function resolve (ref: string): unknown {
  return ref.replace(/^#\//, '').split('/').reduce((o: any, k) => o?.[k], document)
}

/** The validation-relevant JSON of a schema, from either side. */
function normalise (schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(normalise)
  if (schema === null || typeof schema !== 'object') return schema
  const s = schema as Record<string, unknown>
  if (typeof s.$ref === 'string') return normalise(resolve(s.$ref))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(s)) { // Object.entries skips TypeBox's symbol keys
    if (ANNOTATIONS.has(k) || k.startsWith('x-')) continue
    out[k] = k === 'properties'
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([name, p]) => [name, normalise(p)]))
      : normalise(v)
  }
  if (Array.isArray(out.required)) out.required = [...out.required as string[]].sort()
  // TypeBox writes an integer literal as type number; it validates the same.
  if (out.type === 'number' && Number.isInteger(out.const)) out.type = 'integer'
  // TypeBox's union of string literals is `enum` in the document.
  const anyOf = out.anyOf as Array<Record<string, unknown>> | undefined
  if (Array.isArray(anyOf) && Object.keys(out).length === 1 && anyOf.every((b) => b.type === 'string' && 'const' in b && Object.keys(b).length === 2)) {
    return { type: 'string', enum: anyOf.map((b) => b.const) }
  }
  return out
}

t.test('every component schema equals its TypeBox twin', async (t) => {
  const names = Object.keys(document.components.schemas)
  for (const name of names) {
    if (COMPOSED.has(name)) continue
    const twin = TWINS[name]
    if (twin === undefined) {
      t.fail(`components.schemas.${name} has no TypeBox twin in test/openapi.test.ts`)
      continue
    }
    t.strictSame(normalise(document.components.schemas[name]), normalise(twin), `${name} matches the route schema`)
  }
  t.strictSame(Object.keys(TWINS).filter((n) => !names.includes(n)), [], 'every twin is documented')
  t.strictSame(normalise(document.components.schemas.AnyError), { oneOf: [normalise(ErrorResponse), normalise(OssAppServerError)] }, 'AnyError is the two error shapes')
})

t.test('the normaliser notices a difference', async (t) => {
  const widened = structuredClone(document.components.schemas.CredentialsRequest)
  widened.properties.durationSeconds.maximum = 86_400
  t.notSame(normalise(widened), normalise(CredentialsRequest), 'a changed constraint')
  const extra = structuredClone(document.components.schemas.Credentials)
  extra.properties.roleArn = { type: 'string' }
  t.notSame(normalise(extra), normalise(CredentialsResponse), 'an extra field')
})

t.test('the error codes are exactly ERROR_CODES, with their statuses', async (t) => {
  const schema = document.components.schemas.ErrorCode
  t.strictSame(schema.enum, ERROR_CODES.map((e) => e.code), 'the enum on code')
  const table = [...(schema.description as string).matchAll(/^\| (\d{3}) \| `(STS_VENDING_[A-Z_]+)` \|$/gm)]
    .map((m) => ({ code: m[2], statusCode: Number(m[1]) }))
  t.strictSame(table, ERROR_CODES, 'the status table in the description')
})

t.test('the registry is the one list: every documented code is in it, every error it exports is listed', async (t) => {
  const documented = new Set<string>(document.components.schemas.ErrorCode.enum)
  const registered = new Set<string>(Object.values(errors).map((E) => new E().code))
  t.strictSame([...documented].filter((c) => !registered.has(c)), [], 'no documented code is missing from the registry')
  t.strictSame([...registered].filter((c) => !documented.has(c)), [], 'no registered code is missing from openapi.yaml')
  // An error defined beside the registry (an `export const X = createError(...)`) would
  // be thrown but never documented.
  const exported = Object.entries(errorsModule)
    .filter(([, v]) => typeof v === 'function' && v.prototype instanceof Error)
    .map(([name, E]) => ({ name, code: new (E as new () => { code: string })().code }))
  t.ok(exported.length >= ERROR_CODES.length, `${exported.length} error factories exported`)
  for (const { name, code } of exported) {
    t.equal((errors as Record<string, unknown>)[name], (errorsModule as Record<string, unknown>)[name], `${name} is the registry's own`)
    t.ok(registered.has(code), `${code} is in the registry`)
  }
})

t.test('formats and media types', async (t) => {
  t.strictSame(document.components.parameters.Format.schema.enum, [...FORMATS])
  t.strictSame(Object.entries(MEDIA_TYPES), FORMATS.map((f) => [`application/vnd.sts-vending.${f}+json`, f]), 'application/vnd.sts-vending.<format>+json, as documented')
})

t.test('documented routes are the registered routes', async (t) => {
  // With a callback grant, so that POST /uploads/callback (registered only then) is there.
  const h = await build(t, {
    env: { UPLOAD_WEBHOOK_SECRET: 'x'.repeat(32) },
    config: (base) => ({ ...base, grants: (base.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, signing: { callback: { url: 'https://sts.example.com/uploads/callback', forwardUrl: 'https://app.example.com/landed', forwardSecretEnv: 'UPLOAD_WEBHOOK_SECRET' } } })) })
  })
  const documented = Object.entries<Record<string, unknown>>(document.paths)
    .flatMap(([path, item]) => Object.keys(item).filter((k) => k !== 'parameters').map((m) => `${m.toUpperCase()} ${path}`))
    .sort()
  // The CORS plugin answers OPTIONS on `*`; the document describes it on /credentials.
  const registered: string[] = [...h.app.printRoutes({ commonPrefix: false }).matchAll(/(\/\S*|\*) \(([A-Z, ]+)\)/g)]
    .flatMap(([, path, methods]) => methods!.split(', ').filter((m) => m !== 'HEAD').map((m) => `${m} ${path === '*' ? '/credentials' : path}`))
  // The uploads plugin's CORS route is OPTIONS /uploads* (its prefix + `*`), which printRoutes folds into `*`.
  if (h.app.hasRoute({ method: 'OPTIONS', url: '/uploads*' })) registered.push('OPTIONS /uploads/form', 'OPTIONS /uploads/url')
  if (h.app.hasRoute({ method: 'OPTIONS', url: '/grants*' })) registered.push('OPTIONS /grants')
  // Each prefixed family's CORS route prints as one more `*`.
  t.strictSame([...new Set(registered)].sort(), documented)
})

t.test('the service serves the document', async (t) => {
  const h = await build(t)
  const yaml = await h.app.inject('/openapi.yaml')
  assertContract(t, exchange(yaml))
  t.equal(yaml.statusCode, 200)
  t.match(yaml.headers['content-type'], /^application\/yaml/)
  t.ok(yaml.rawPayload.equals(DOCUMENT_BYTES), 'the same bytes as openapi.yaml')
  const json = await h.app.inject('/openapi.json')
  assertContract(t, exchange(json))
  t.strictSame(json.json(), document, 'the same document as JSON')
})

t.test('probes and metrics conform', async (t) => {
  const h = await build(t)
  for (const url of ['/healthz', '/readyz', '/metrics']) {
    const res = await h.app.inject(url)
    t.equal(res.statusCode, 200, url)
    assertContract(t, exchange(res))
  }
  h.app.lifecycle.addReadinessCheck('keys', () => false)
  const ready = await h.app.inject('/readyz')
  t.equal(ready.statusCode, 503)
  t.strictSame(ready.json(), { status: 'not ready', failing: ['keys'] })
  assertContract(t, exchange(ready))
})

t.test('the contract check fails on what the document does not say', async (t) => {
  const h = await build(t)
  const res = await h.vend(h.token({ sub: 'alice' }))
  t.equal(res.statusCode, 200)
  const good: Exchange = { method: 'POST', path: '/credentials', statusCode: 200, headers: res.headers, body: res.json }
  t.strictSame(contractErrors(good), [], 'the real answer conforms')

  const cases: Array<{ desc: string, x: Exchange, match: RegExp }> = [
    { desc: 'an undocumented response field', x: { ...good, body: { ...res.json, roleArn: 'acs:ram::1:role/x' } }, match: /must NOT have additional properties/ },
    { desc: 'a missing field', x: { ...good, body: { ...res.json, securityToken: undefined } }, match: /securityToken/ },
    { desc: 'the wrong format\'s shape', x: { ...good, format: 'oss-app-server' }, match: /not OssAppServerCredentials/ },
    { desc: 'an undocumented status', x: { ...good, statusCode: 418 }, match: /status 418 is not documented/ },
    { desc: 'an undocumented route', x: { ...good, path: '/credentials/admin' }, match: /not documented/ },
    { desc: 'an undocumented error code', x: { ...good, statusCode: 403, body: { statusCode: 403, code: 'STS_VENDING_NOPE', error: 'Forbidden', message: 'x' } }, match: /allowed values/ },
    { desc: 'no Retry-After on a 503', x: { ...good, statusCode: 503, body: { statusCode: 503, code: 'STS_VENDING_CIRCUIT_OPEN', error: 'Service Unavailable', message: 'x' } }, match: /required header Retry-After is missing/ },
    { desc: 'no Cache-Control', x: { ...good, headers: { ...res.headers, 'cache-control': undefined } }, match: /required header Cache-Control/ }
  ]
  for (const c of cases) {
    t.match(contractErrors(c.x).join('\n'), c.match, c.desc)
  }

  // assertContract reports through the test it is given.
  const failures: string[] = []
  assertContract({ fail: (message) => failures.push(message) }, cases[0]!.x)
  t.equal(failures.length, 1, 'assertContract fails the test')
  t.match(failures[0], /^contract: POST \/credentials 200: .*additional properties/)
  assertContract({ fail: (message) => failures.push(message) }, good)
  t.equal(failures.length, 1, 'and passes a conforming answer')
})
