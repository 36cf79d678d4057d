// SourceIdentity templates: who the end user is, in Alibaba Cloud's own audit log. STS
// keeps a session's SourceIdentity through role chaining and the session cannot change
// it, so ActionTrail names the caller even when the session name is only a hash. A
// template reads like a prefix's placeholders, inline: `{sub}`, `{sub:sha256}`,
// `{issuer}`, `{claim}`, around literal text. The filled value must be STS's 2-64
// characters of [A-Za-z0-9_+=,.@-]; claim values are refused, never escaped or cut,
// when they do not fit (fail closed: no credentials without the identity the operator
// asked for).
import { hashClaim, HASH_HEX_LENGTH, placeholderPart, type TemplatePart } from './template.js'

/** STS's SourceIdentity alphabet and length. */
export const SOURCE_IDENTITY = /^[A-Za-z0-9_+=,.@-]{2,64}$/
export const SOURCE_IDENTITY_MAX_LENGTH = 64
const LITERAL = /^[A-Za-z0-9_+=,.@-]*$/
const PIECE = /\{([^{}:]*)(?::([^{}]*))?\}|[^{}]+|[{}]/g

export type SourceIdentityPart = TemplatePart

export interface SourceIdentityTemplate { source: string, parts: SourceIdentityPart[] }

/** Parse and check a template; throws Error with the reason when it cannot work. */
export function parseSourceIdentityTemplate (source: string): SourceIdentityTemplate {
  if (typeof source !== 'string' || source.length === 0) throw new Error('the template is empty')
  const parts: SourceIdentityPart[] = []
  for (const m of source.matchAll(PIECE)) {
    const piece = m[0]
    if (piece === '{' || piece === '}') throw new Error(`"${source}": a placeholder must read {claim} or {claim:sha256}`)
    if (!piece.startsWith('{')) {
      if (!LITERAL.test(piece)) throw new Error(`"${piece}": literal text may only use A-Z a-z 0-9 _ + = , . @ -`)
      parts.push({ kind: 'literal', text: piece })
      continue
    }
    parts.push(placeholderPart(piece, m[1] ?? '', m[2]))
  }
  // What load can know: the fixed part alone must leave room (a plain claim's length
  // is only known per caller, and checked then).
  const fixed = parts.reduce((n, p) => n + (p.kind === 'literal' ? p.text.length : p.kind === 'claim' && p.hash ? HASH_HEX_LENGTH : 1), 0)
  if (fixed > SOURCE_IDENTITY_MAX_LENGTH) {
    throw new Error(`the filled value is at least ${fixed} characters, over STS's ${SOURCE_IDENTITY_MAX_LENGTH}`)
  }
  return { source, parts }
}

/** The caller's SourceIdentity, or undefined when a claim is missing or the value does not fit STS's rules. */
export function fillSourceIdentity (t: SourceIdentityTemplate, claims: Record<string, unknown>, issuerName: string): string | undefined {
  let out = ''
  for (const part of t.parts) {
    if (part.kind === 'literal') {
      out += part.text
    } else if (part.kind === 'issuer') {
      out += issuerName
    } else {
      const value = Object.hasOwn(claims, part.claim) ? claims[part.claim] : undefined
      const filled = part.hash ? hashClaim(value) : (typeof value === 'string' && LITERAL.test(value) ? value : undefined)
      if (filled === undefined || filled === '') return undefined
      out += filled
    }
  }
  return SOURCE_IDENTITY.test(out) ? out : undefined
}
