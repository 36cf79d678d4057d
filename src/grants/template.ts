// Prefix templates: the directory a grant gives each caller, such as
// `tenants/{tenant}/{sub:sha256}/`. The one invariant: a filled prefix is built only
// from whole segments of the safe alphabet (core/names.ts), so it can never hold a wildcard
// (`*`, `?`), a path trick (`/`, `\`, `.`, `..`), a JSON or policy metacharacter, or a
// lookalike of another user's name. Unsafe claim values are refused, never escaped or
// normalised: escaping is where two people end up in one directory.
import { createHash } from 'node:crypto'
import { isSafePrefix, isSafeSegment, NAME_MAX_LENGTH, PREFIX_MAX_LENGTH } from '../core/index.js'

/** Longest claim value `{claim:sha256}` accepts. */
export const HASHED_CLAIM_MAX_LENGTH = 1024
/** Hex characters kept of the SHA-256 of a hashed claim (128 bits). */
export const HASH_HEX_LENGTH = 32
/** Worst-case length of an issuer's name. */
export const ISSUER_MAX_LENGTH = NAME_MAX_LENGTH
const PLAIN_CLAIM_MAX_LENGTH = 128

const CLAIM_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/
const PLACEHOLDER = /^\{([^{}:]*)(?::([^{}]*))?\}$/
const LONE_SURROGATE = /\p{Cs}/u

export type TemplatePart =
  | { kind: 'literal', text: string }
  | { kind: 'claim', claim: string, hash: boolean }
  | { kind: 'issuer' }

export interface PrefixTemplate { source: string, parts: TemplatePart[] }

/**
 * The part a placeholder stands for, `{claim}`, `{claim:sha256}` or `{issuer}` (read by
 * PLACEHOLDER-shaped patterns: `name` and `modifier` are its two groups). One reading for
 * prefixes and SourceIdentity templates alike; throws Error naming `piece`.
 */
export function placeholderPart (piece: string, name: string, modifier: string | undefined): Exclude<TemplatePart, { kind: 'literal' }> {
  if (!CLAIM_NAME.test(name)) throw new Error(`"${piece}": "${name}" is not a claim name`)
  if (name === 'issuer') {
    if (modifier !== undefined) throw new Error(`"${piece}": {issuer} takes no modifier`)
    return { kind: 'issuer' }
  }
  if (modifier === undefined || modifier === 'sha256') return { kind: 'claim', claim: name, hash: modifier === 'sha256' }
  throw new Error(`"${piece}": unknown modifier "${modifier}" (only :sha256)`)
}

function appendLiteral (parts: TemplatePart[], text: string): void {
  const last = parts.at(-1)
  if (last?.kind === 'literal') last.text += text
  else parts.push({ kind: 'literal', text })
}

/** Parse and check a template; throws Error with the reason when it is not acceptable. */
export function parsePrefixTemplate (template: string): PrefixTemplate {
  if (typeof template !== 'string' || template.length === 0) throw new Error('the prefix template is empty')
  if (template.length > PREFIX_MAX_LENGTH) throw new Error(`the prefix template is longer than ${PREFIX_MAX_LENGTH} characters`)
  if (template.startsWith('/')) throw new Error('the prefix template must not start with "/"')
  if (!template.endsWith('/')) throw new Error('the prefix template must end with "/"')
  const parts: TemplatePart[] = []
  for (const segment of template.slice(0, -1).split('/')) {
    if (segment === '') throw new Error('the prefix template has an empty segment ("//")')
    if (segment.includes('{') || segment.includes('}')) {
      const m = PLACEHOLDER.exec(segment)
      if (m === null) {
        throw new Error(`"${segment}": a placeholder must be a whole segment such as {sub} or {sub:sha256}`)
      }
      parts.push(placeholderPart(segment, m[1] ?? '', m[2]))
      appendLiteral(parts, '/')
      continue
    }
    if (!isSafeSegment(segment)) {
      throw new Error(`"${segment}": literal segments may only use A-Z a-z 0-9 _ . @ - (1-128 characters) and may not be "." or ".."`)
    }
    appendLiteral(parts, segment + '/')
  }
  const t = { source: template, parts }
  const longest = maxFilledLength(t)
  if (longest > PREFIX_MAX_LENGTH) {
    throw new Error(`the filled prefix can reach ${longest} characters, over ${PREFIX_MAX_LENGTH}`)
  }
  return t
}

function ownClaim (claims: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(claims, name) ? claims[name] : undefined
}

/** `{claim:sha256}`: 32 lowercase hex of SHA-256 over the UTF-8 value; undefined when unusable. */
export function hashClaim (value: unknown): string | undefined {
  // A lone surrogate would be encoded as U+FFFD, so two different subjects could
  // share a hash (and a directory): refuse strings that are not well-formed Unicode.
  if (typeof value !== 'string' || value.length === 0 || value.length > HASHED_CLAIM_MAX_LENGTH || LONE_SURROGATE.test(value)) {
    return undefined
  }
  return createHash('sha256').update(value, 'utf8').digest('hex').slice(0, HASH_HEX_LENGTH)
}

/** The caller's directory, or undefined when a claim is missing or not safe to splice. */
export function fillPrefix (t: PrefixTemplate, claims: Record<string, unknown>, issuerName: string): string | undefined {
  if (claims === null || typeof claims !== 'object') return undefined
  let out = ''
  for (const part of t.parts) {
    if (part.kind === 'literal') {
      out += part.text
    } else if (part.kind === 'issuer') {
      if (!isSafeSegment(issuerName)) return undefined
      out += issuerName
    } else {
      const value = ownClaim(claims, part.claim)
      const segment = part.hash ? hashClaim(value) : (isSafeSegment(value) ? value : undefined)
      if (segment === undefined) return undefined
      out += segment
    }
  }
  // Every piece was checked; this re-check is the fail-closed backstop.
  return isSafePrefix(out) ? out : undefined
}

/** The template filled with a value of maximum length for every placeholder. */
export function worstCasePrefix (t: PrefixTemplate): string {
  let out = ''
  for (const part of t.parts) {
    if (part.kind === 'literal') out += part.text
    else if (part.kind === 'issuer') out += 'i'.repeat(ISSUER_MAX_LENGTH)
    else out += part.hash ? 'h'.repeat(HASH_HEX_LENGTH) : 'c'.repeat(PLAIN_CLAIM_MAX_LENGTH)
  }
  return out
}

/** Longest prefix this template can produce. */
export function maxFilledLength (t: PrefixTemplate): number {
  return worstCasePrefix(t).length
}

/** Whether the issuer's name is part of the directory. */
export function usesIssuer (t: PrefixTemplate): boolean {
  return t.parts.some((p) => p.kind === 'issuer')
}

/** Whether the directory depends on a claim (one per caller) rather than being shared. */
export function isPerCaller (t: PrefixTemplate): boolean {
  return t.parts.some((p) => p.kind === 'claim')
}

type Segment = { kind: 'literal', text: string } | { kind: 'claim', claim: string, hash: boolean }

function segmentsOf (t: PrefixTemplate, issuerName: string): Segment[] {
  const out: Segment[] = []
  let pending = ''
  for (const part of t.parts) {
    if (part.kind === 'claim') {
      out.push({ kind: 'claim', claim: part.claim, hash: part.hash })
      continue
    }
    pending += part.kind === 'issuer' ? issuerName : part.text
    let slash = pending.indexOf('/')
    while (slash !== -1) {
      if (slash > 0) out.push({ kind: 'literal', text: pending.slice(0, slash) })
      pending = pending.slice(slash + 1)
      slash = pending.indexOf('/')
    }
  }
  if (pending !== '') out.push({ kind: 'literal', text: pending })
  return out
}

const HASH_SEGMENT = /^[0-9a-f]{32}$/

function segmentsMayBeEqual (a: Segment, b: Segment): boolean {
  if (a.kind === 'literal' && b.kind === 'literal') return a.text === b.text
  if (a.kind === 'literal') return b.kind === 'claim' && (b.hash ? HASH_SEGMENT.test(a.text) : isSafeSegment(a.text))
  if (b.kind === 'literal') return segmentsMayBeEqual(b, a)
  return true
}

/**
 * Conservative: could a caller of issuer A under template `a` and a caller of
 * issuer B under template `b` get the same directory, or one inside the other?
 * Used by grant compilation so that no two callers ever share files by accident.
 */
export function mayShareDirectory (a: PrefixTemplate, issuerA: string, b: PrefixTemplate, issuerB: string): boolean {
  const sa = segmentsOf(a, issuerA)
  const sb = segmentsOf(b, issuerB)
  const n = Math.min(sa.length, sb.length)
  for (let i = 0; i < n; i++) {
    if (!segmentsMayBeEqual(sa[i] as Segment, sb[i] as Segment)) return false
  }
  return true
}

/**
 * Whether the two templates build the same directory from the same claims, segment by
 * segment, for these issuers: then one caller gets one directory under both, and two
 * callers with different claims get directories that are neither equal nor nested.
 */
export function sameDirectoryRule (a: PrefixTemplate, issuerA: string, b: PrefixTemplate, issuerB: string): boolean {
  const sa = segmentsOf(a, issuerA)
  const sb = segmentsOf(b, issuerB)
  return sa.length === sb.length && sa.every((x, i) => {
    const y = sb[i] as Segment
    if (x.kind === 'literal') return y.kind === 'literal' && x.text === y.text
    return y.kind === 'claim' && x.claim === y.claim && x.hash === y.hash
  })
}
