// The contract check. Every answer the suite receives from a documented route is held
// against openapi.yaml itself, the file clients are generated from: the status must be
// documented for the route, the body must match the documented schema (and for
// POST /credentials, the schema of the format that was asked for), and every header
// the document marks required (Retry-After on 429/503/504, Cache-Control, X-Request-Id)
// must be there and match. The document is compiled once per process with Ajv 2020.
// test/openapi.test.ts separately proves the document's schemas equal the route schemas.
import { readFileSync } from 'node:fs'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { parse } from 'yaml'
import type { LightMyRequestResponse as InjectResponse } from 'fastify'
import { FORMATS, type Format } from '../../src/http/credentials/formats.js'

export const DOCUMENT_FILE = new URL('../../openapi.yaml', import.meta.url)
export const DOCUMENT_BYTES = readFileSync(DOCUMENT_FILE)
export const document: any = parse(DOCUMENT_BYTES.toString('utf8'))

const DOC_ID = 'https://sts-vending.invalid/openapi.yaml'
const ajv = new Ajv2020({ allErrors: true, strict: true })
// ajv-formats is CommonJS: its default export is the plugin itself at run time.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (a: Ajv2020) => void
addFormats(ajv)
// The document is added whole so that schema pointers resolve; its top-level OpenAPI
// fields are declared as keywords so that strict mode checks the schemas, not them.
ajv.addVocabulary(['openapi', 'info', 'servers', 'security', 'tags', 'paths', 'components'])
ajv.addSchema({ ...document, $id: DOC_ID })

const compiled = new Map<string, ValidateFunction>()
function validatorAt (pointer: string): ValidateFunction {
  let v = compiled.get(pointer)
  if (v === undefined) {
    v = ajv.compile({ $ref: `${DOC_ID}#${pointer}` })
    compiled.set(pointer, v)
  }
  return v
}

const escape = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1')

/** The value at a JSON pointer into the document. */
function at (pointer: string): any {
  return pointer.split('/').slice(1).reduce((o: any, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], document)
}

/** Follow local `$ref`s, returning the object and its JSON pointer. */
function deref (value: any, pointer: string): { value: any, pointer: string } {
  let v = value
  let p = pointer
  while (v !== null && typeof v === 'object' && typeof v.$ref === 'string') {
    p = (v.$ref as string).replace(/^#/, '')
    v = at(p)
  }
  return { value: v, pointer: p }
}

/** The component schema names a documented schema offers (itself or its oneOf branches). */
function offered (pointer: string): string[] {
  const { value, pointer: p } = deref(at(pointer), pointer)
  const own = p.startsWith('/components/schemas/') ? [p.slice('/components/schemas/'.length)] : []
  const branches = Array.isArray(value?.oneOf) ? (value.oneOf as unknown[]).flatMap((_b, i) => offered(`${p}/oneOf/${i}`)) : []
  return [...own, ...branches]
}

const SUCCESS: Record<Format, string> = {
  'ali-oss': 'Credentials',
  'oss-app-server': 'OssAppServerCredentials',
  'credentials-uri': 'CredentialsUriCredentials'
}
// Refused before the route reads the format (see the 503 response's description).
const BEFORE_FORMAT = new Set(['STS_VENDING_SHUTTING_DOWN', 'STS_VENDING_OVERLOADED'])

export interface Exchange {
  method: string
  /** The request path, with its query string if any. */
  path: string
  statusCode: number
  /** Response headers (lower-case names, as inject gives them). */
  headers: Record<string, unknown>
  /** The parsed JSON body, or the text of a non-JSON one. */
  body: unknown
  /** The response format the request asked for by Accept; `?format=` in `path` is read here. */
  format?: Format
}

function formatOf (x: Exchange): Format {
  if (x.format !== undefined) return x.format
  const q = new URL(x.path, 'http://x').searchParams.get('format')
  // An unknown value is refused in the default shape.
  return q !== null && (FORMATS as readonly string[]).includes(q) ? q as Format : 'ali-oss'
}

/** Everything about this exchange that the document does not allow; empty when it conforms. */
export function contractErrors (x: Exchange): string[] {
  const errors: string[] = []
  const pathname = new URL(x.path, 'http://x').pathname
  const method = x.method.toLowerCase()
  const opPointer = `/paths/${escape(pathname)}/${method}`
  const op = document.paths?.[pathname]?.[method]
  if (op === undefined) return [`${x.method} ${pathname} is not documented`]
  const status = String(x.statusCode)
  const key = [status, `${status[0]}XX`, 'default'].find((k) => op.responses?.[k] !== undefined)
  if (key === undefined) return [`status ${status} is not documented for ${x.method} ${pathname}`]
  const { value: response, pointer: resPointer } = deref(op.responses[key], `${opPointer}/responses/${key}`)

  for (const [name, raw] of Object.entries<any>(response.headers ?? {})) {
    const { value: header, pointer: hPointer } = deref(raw, `${resPointer}/headers/${escape(name)}`)
    const got = x.headers[name.toLowerCase()]
    if (got === undefined) {
      if (header.required === true) errors.push(`required header ${name} is missing`)
      continue
    }
    const v = validatorAt(`${hPointer}/schema`)
    if (!v(String(got))) errors.push(`header ${name}: ${ajv.errorsText(v.errors)}`)
  }

  const contentType = String(x.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  const content = response.content as Record<string, unknown> | undefined
  if (content === undefined) {
    if (x.body !== undefined && x.body !== '') errors.push('a body where the document has none')
    return errors
  }
  if (content[contentType] === undefined) return [...errors, `content type "${contentType}" is not documented (${Object.keys(content).join(', ')})`]
  const schemaPointer = `${resPointer}/content/${escape(contentType)}/schema`
  const v = validatorAt(schemaPointer)
  if (!v(x.body)) errors.push(`body: ${ajv.errorsText(v.errors)}`)

  if (pathname === '/credentials' && method === 'post') {
    // The body must be the shape of the format asked for, not merely one of the shapes.
    const format = formatOf(x)
    const code = (x.body as { code?: unknown } | undefined)?.code
    const expected = x.statusCode < 400
      ? SUCCESS[format]
      : format === 'oss-app-server' && !(typeof code === 'string' && BEFORE_FORMAT.has(code)) ? 'OssAppServerError' : 'Error'
    if (!offered(schemaPointer).includes(expected)) {
      errors.push(`the document does not offer ${expected} for status ${status}`)
    } else {
      const exact = validatorAt(`/components/schemas/${expected}`)
      if (!exact(x.body)) errors.push(`body is not ${expected} (format ${format}): ${ajv.errorsText(exact.errors)}`)
    }
  }
  return errors
}

export interface ContractTap { fail: (message: string) => unknown }

/** Fail the test (once, listing every problem) when the exchange breaks the contract. */
export function assertContract (t: ContractTap, x: Exchange): void {
  const errors = contractErrors(x)
  if (errors.length > 0) t.fail(`contract: ${x.method} ${x.path} ${x.statusCode}: ${errors.join('; ')}`)
}

/** An Exchange from an app.inject() response (its request's method and URL). */
export function exchange (res: InjectResponse, format?: Format): Exchange {
  const req = res.raw.req as { method?: string, url?: string }
  let body: unknown = res.body
  if (/json/.test(String(res.headers['content-type'] ?? ''))) {
    try { body = res.json() } catch { /* not JSON after all: the schema check reports it */ }
  }
  return {
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    statusCode: res.statusCode,
    headers: res.headers,
    body,
    ...(format !== undefined ? { format } : {})
  }
}
