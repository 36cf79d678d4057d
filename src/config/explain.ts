// Schema errors in the operator's words: the path as written in the file, what was
// expected in plain words, and for an unknown key the nearest known one. TypeBox's own
// messages ("Expected union value") name the schema's machinery, not the config.
// A value the operator wrote is never echoed when it is text: a secret pasted into the
// wrong key must not end up in a log.
import { closest, distance } from 'fastest-levenshtein'
import type { TSchema } from '@sinclair/typebox'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/value'

type Node = TSchema & Record<string, unknown>

/** `/grants/0/bucket` -> `grants[0].bucket`. */
export function pathOf (pointer: string): string {
  if (pointer === '') return '(root)'
  return pointer.slice(1).split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p, i) => /^\d+$/.test(p) ? `[${p}]` : (i === 0 ? p : `.${p}`))
    .join('')
}

function parentPath (pointer: string): string {
  return pointer.slice(0, pointer.lastIndexOf('/'))
}

function lastKey (pointer: string): string {
  return pointer.slice(pointer.lastIndexOf('/') + 1).replace(/~1/g, '/').replace(/~0/g, '~')
}

function count (n: number, unit: string): string {
  return `${n} ${n === 1 ? unit : unit + 's'}`
}

function range (min: unknown, max: unknown, unit: string): string {
  const lo = typeof min === 'number' ? min : undefined
  const hi = typeof max === 'number' ? max : undefined
  if (lo !== undefined && hi !== undefined) return lo === hi ? ` of exactly ${count(lo, unit)}` : ` of ${lo}-${hi} ${unit}s`
  if (lo !== undefined) return ` of at least ${count(lo, unit)}`
  if (hi !== undefined) return ` of at most ${count(hi, unit)}`
  return ''
}

function literals (schema: Node): string[] | undefined {
  const members = schema.anyOf as Node[] | undefined
  if (!Array.isArray(members) || !members.every((m) => m.const !== undefined)) return undefined
  return members.map((m) => String(m.const))
}

/** What a value under `schema` must be, in plain words. */
export function expected (schema: Node): string {
  const words = literals(schema)
  if (words !== undefined) return `one of ${words.join(', ')}`
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Node[]).map(expected).join(', or ')
  if (schema.const !== undefined) return JSON.stringify(schema.const)
  switch (schema.type) {
    case 'string':
      if (schema.pattern !== undefined) {
        return typeof schema.description === 'string' ? schema.description : `text matching ${String(schema.pattern)}`
      }
      return `text${range(schema.minLength, schema.maxLength, 'character')}`
    case 'integer': {
      const lo = schema.minimum
      const hi = schema.maximum
      if (typeof lo === 'number' && typeof hi === 'number') return `a whole number from ${lo} to ${hi}`
      if (typeof lo === 'number') return `a whole number of at least ${lo}`
      if (typeof hi === 'number') return `a whole number of at most ${hi}`
      return 'a whole number'
    }
    case 'number': return 'a number'
    case 'boolean': return 'true or false'
    case 'array': {
      const items = schema.items as Node | undefined
      const of = items !== undefined ? `, each ${expected(items)}` : ''
      const unique = schema.uniqueItems === true ? ' without repeats' : ''
      const size = schema.minItems === 1 && schema.maxItems === undefined ? 'a non-empty list' : `a list${range(schema.minItems, schema.maxItems, 'entry')}`
      return `${size.replace(/entrys/g, 'entries')}${unique}${of}`
    }
    case 'object': return 'a mapping of keys'
    default: return 'a valid value'
  }
}

/** What the operator wrote, described without echoing text. */
function got (value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null (an empty value)'
  if (typeof value === 'string') return value === '' ? 'empty text' : 'text'
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (Array.isArray(value)) return `a list of ${value.length}`
  return 'a mapping'
}

/** The nearest of `known` to `word`, when it is near enough to be a typo. */
export function nearest (word: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined
  const lower = word.toLowerCase()
  const caseOnly = known.find((k) => k.toLowerCase() === lower)
  if (caseOnly !== undefined) return caseOnly
  const best = closest(word, [...known])
  return distance(word, best) <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

function unknownKey (error: ValueError, root: unknown): string {
  const path = pathOf(error.path)
  const parent = parentPath(error.path)
  const props = (error.schema as Node).properties as Record<string, unknown> | undefined
  if (props === undefined) {
    // A record whose keys follow a pattern (`when:` claim names): the key is malformed.
    const pattern = Object.keys(((error.schema as Node).patternProperties ?? {}) as Record<string, unknown>)[0]
    return `${path}: not a valid key here${pattern !== undefined ? ` (keys must match ${pattern})` : ''}`
  }
  // `root` is the config as written (before defaults), so a key the operator misspelt
  // is still missing there even when a default fills it in.
  const present = new Set(Object.keys(valueAt(root, parent) ?? {}))
  // Prefer a key that is not there yet (that is what a typo left out), but a near
  // twin of a key that is there is still worth naming.
  const word = lastKey(error.path)
  const suggestion = nearest(word, Object.keys(props).filter((k) => !present.has(k))) ?? nearest(word, Object.keys(props))
  if (suggestion === undefined) return `${path}: unknown key (known keys here: ${Object.keys(props).join(', ')})`
  const full = parent === '' ? suggestion : `${pathOf(parent)}.${suggestion}`
  return `${path}: unknown key; did you mean ${full}?`
}

function valueAt (root: unknown, pointer: string): Record<string, unknown> | undefined {
  let node: unknown = root
  for (const key of pointer === '' ? [] : pointer.slice(1).split('/')) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[key.replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  return node !== null && typeof node === 'object' ? node as Record<string, unknown> : undefined
}

function plain (error: ValueError): string {
  const path = pathOf(error.path)
  const schema = error.schema as Node
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return `${path}: missing; expected ${expected(schema)}`
    case ValueErrorType.ArrayUniqueItems:
      return `${path}: an entry is listed twice`
    case ValueErrorType.StringPattern:
      // What was written is not echoed (it may be a secret in the wrong place).
      return `${path}: expected ${expected(schema)}`
    case ValueErrorType.StringMinLength:
    case ValueErrorType.StringMaxLength:
      return `${path}: expected ${expected(schema)}, got ${count(String(error.value).length, 'character')}`
    case ValueErrorType.Union: {
      const words = literals(schema)
      const hint = words !== undefined && typeof error.value === 'string' ? nearest(error.value, words) : undefined
      return `${path}: expected ${expected(schema)}, got ${got(error.value)}${hint !== undefined ? `; did you mean ${hint}?` : ''}`
    }
    default:
      return `${path}: expected ${expected(schema)}, got ${got(error.value)}`
  }
}

/**
 * The one error to report, in plain words. Unknown keys come first: a typo in a
 * required key also makes that key "missing", and the typo is what to fix.
 */
export function explain (errors: readonly ValueError[], root: unknown): string | undefined {
  const unknown = errors.find((e) => e.type === ValueErrorType.ObjectAdditionalProperties)
  if (unknown !== undefined) return unknownKey(unknown, root)
  const first = errors[0]
  return first === undefined ? undefined : plain(first)
}
