// Plain words for a request that failed its schema: the field by name, what it must
// be, and an unknown property by name. ajv's own text ("must be equal to constant",
// "must match a schema in anyOf") says neither, and was cut at a fixed length. The
// words are built from the schema (limits, allowed values, known patterns) and the
// request's own field names, never from a value the request sent; a property name
// that is not a plain identifier is not echoed at all.
import { MEDIA_TYPE } from '../config/schema.js'
import { NAME_PATTERN } from '../core/index.js'

interface AjvError {
  instancePath?: unknown
  keyword?: unknown
  params?: Record<string, unknown>
  message?: unknown
}

// At most this many fields are described: enough to fix a request, bounded for a hostile one.
const MAX_FIELDS = 3
const PLAIN_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/

/** Patterns of our schemas, in words. */
const PATTERNS: Record<string, string> = {
  [NAME_PATTERN]: 'a grant name: lowercase letters, digits, "-" and "_", starting with a letter or a digit, at most 63 characters',
  [MEDIA_TYPE]: 'a media type such as image/png, in lowercase'
}

const TYPES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a JSON object',
  null: 'null'
}

const CONTEXTS: Record<string, string> = { body: 'the body', querystring: 'the query string', params: 'the path', headers: 'the headers' }

function quoteName (name: unknown): string | undefined {
  return typeof name === 'string' && PLAIN_NAME.test(name) ? `"${name}"` : undefined
}

/** `/actions/0` -> `actions[0]`; the root is the body (or query string) itself. */
function fieldName (path: string, context: string): string {
  if (path === '') return CONTEXTS[context] ?? 'the request'
  let out = ''
  for (const raw of path.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (/^\d+$/.test(seg)) out += `[${seg}]`
    else out += PLAIN_NAME.test(seg) ? (out === '' ? seg : `.${seg}`) : (out === '' ? '(a field)' : '.(a field)')
  }
  return context === 'querystring' ? `query parameter ${out}` : out
}

function listed (values: unknown[]): string {
  const words = values.map((v) => typeof v === 'string' ? v : JSON.stringify(v))
  return words.length === 1 ? `be ${words[0] ?? ''}` : `be one of ${words.join(', ')}`
}

function plural (n: unknown, word: string): string {
  return `${String(n)} ${word}${n === 1 ? '' : 's'}`
}

/** What one keyword's failure asks for; the subject (the field) is added by the caller. */
function expectation (e: AjvError): string {
  const p = e.params ?? {}
  switch (e.keyword) {
    case 'type': return `must be ${TYPES[String(p.type)] ?? String(p.type)}`
    case 'minimum': return `must be at least ${String(p.limit)}`
    case 'maximum': return `must be at most ${String(p.limit)}`
    case 'exclusiveMinimum': return `must be more than ${String(p.limit)}`
    case 'exclusiveMaximum': return `must be less than ${String(p.limit)}`
    case 'minLength': return `must be at least ${plural(p.limit, 'character')} long`
    case 'maxLength': return `must be at most ${plural(p.limit, 'character')} long`
    case 'minItems': return `must have at least ${plural(p.limit, 'item')}`
    case 'maxItems': return `must have at most ${plural(p.limit, 'item')}`
    case 'uniqueItems': return 'must not name an item twice'
    case 'pattern': return `must be ${PATTERNS[String(p.pattern)] ?? 'in the documented form'}`
    case 'format': return `must be a valid ${String(p.format)}`
    case 'anyOf': case 'oneOf': return 'is not in any of the accepted forms'
    default: return typeof e.message === 'string' ? e.message : 'is not valid'
  }
}

function describeField (field: string, errors: AjvError[]): string {
  const unknown = errors.find((e) => e.keyword === 'additionalProperties')
  if (unknown !== undefined) {
    const name = quoteName(unknown.params?.additionalProperty)
    return `${field} has an unknown property${name !== undefined ? ` ${name}` : ''}`
  }
  const missing = errors.find((e) => e.keyword === 'required')
  if (missing !== undefined) {
    const name = quoteName(missing.params?.missingProperty) ?? 'a property'
    return field.startsWith('the ') ? `${name} is required` : `${name} is required in ${field}`
  }
  // A union of literals (the actions, a method) fails once per literal, then as anyOf.
  const allowed = errors.flatMap((e) => e.keyword === 'const' ? [e.params?.allowedValue] : e.keyword === 'enum' ? (e.params?.allowedValues as unknown[] ?? []) : [])
  if (allowed.length > 0) return `${field} must ${listed(allowed)}`
  const first = errors.find((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf') ?? errors[0]
  return `${field} ${first !== undefined ? expectation(first) : 'is not valid'}`
}

/** One sentence per failing field (at most MAX_FIELDS), in the order ajv reported them. */
export function describeValidation (validation: unknown, context: unknown): string {
  const errors = Array.isArray(validation) ? validation as AjvError[] : []
  const ctx = typeof context === 'string' ? context : 'body'
  const byField = new Map<string, AjvError[]>()
  for (const e of errors) {
    const path = typeof e.instancePath === 'string' ? e.instancePath : ''
    const list = byField.get(path)
    if (list !== undefined) list.push(e)
    else byField.set(path, [e])
  }
  const parts = [...byField].slice(0, MAX_FIELDS).map(([path, list]) => describeField(fieldName(path, ctx), list))
  return parts.length > 0 ? parts.join('; ') : `${CONTEXTS[ctx] ?? 'the request'} is not valid`
}
