// Grant compilation: every rule about grants, run once at load, before the service
// listens. Each template is parsed here and only here; the result is what resolve.ts
// picks from on every request. A bad grant is a ConfigError naming the grant, so the
// process says so in one line and exits 2.
//
// The rule that matters most: no two callers may ever get the same directory, or one
// inside the other, unless the operator said so. The same `sub` from two issuers is two
// people; so are a `sub` and a `preferred_username` of one issuer; and a caller whose
// `sub` is "home" must not read everyone under `home/`. Conservative: a claim may equal
// any literal segment. Two directories without claims are shared on purpose (`public/`)
// and left alone; two grants with the same template and claims give each caller one
// directory under both (a read-only and a read-write `users/{sub}/`) and are allowed.
import { MIN_DURATION_SECONDS, MIN_USABLE_SECONDS, POLICY_MAX_BYTES, type Action } from '../core/index.js'
import { ConfigError } from '../config/error.js'
import type { Config, GrantConfig } from '../config/schema.js'
import { buildSessionPolicy, policyBytes } from '../policy/build.js'
import { isPerCaller, mayShareDirectory, parsePrefixTemplate, sameDirectoryRule, worstCasePrefix, type PrefixTemplate } from './template.js'
import { parseSourceIdentityTemplate, type SourceIdentityTemplate } from './source-identity.js'

export interface CompiledGrant {
  config: GrantConfig
  template: PrefixTemplate
  /** The caller's SourceIdentity on every AssumeRole for this grant, when configured. */
  sourceIdentity?: SourceIdentityTemplate
  /**
   * The shortest duration a caller may ask for: STS's minimum, or more when the cache
   * margin needs more (a credential shorter than the margin could never be served).
   */
  minDurationSeconds: number
}

/** Grants that passed every rule, in config order. */
export type CompiledGrants = readonly CompiledGrant[]

/** What compilation reads: the grants, the issuers' names, and the cache margin. */
export interface GrantsInput {
  issuers: ReadonlyArray<{ name: string }>
  grants: readonly GrantConfig[]
  cache: Pick<Config['cache'], 'minRemainingSeconds'>
}

/**
 * The largest session policy a template can produce: every placeholder filled with a
 * value of its maximum length. Exact, not an estimate, because the safe alphabet needs
 * no JSON escaping, so every character costs one byte.
 */
export function worstCasePolicyBytes (bucket: string, template: PrefixTemplate, actions: readonly Action[]): number {
  return policyBytes(buildSessionPolicy(bucket, worstCasePrefix(template), actions))
}

/**
 * Why a grant's signing settings cannot work (relative to the grant), or undefined: a
 * signed form or URL must outlive its promised lifetime on a credential that the cache
 * still serves, so the grant's credentials must cover expiresSeconds plus the margin.
 */
export function signingProblem (grant: GrantConfig, minRemainingSeconds: number): string | undefined {
  const s = grant.signing
  if (s === undefined) return undefined
  if (!grant.actions.includes('write') && !grant.actions.includes('read')) return 'signing: needs the read or write action'
  if (s.callback !== undefined) {
    if (!grant.actions.includes('write')) return 'signing.callback: needs the write action (callbacks follow form uploads)'
    for (const field of ['url', 'forwardUrl'] as const) {
      if (!isHttpsOrLoopback(s.callback[field])) return `signing.callback.${field}: must be https (plain http only on a loopback address, for development)`
    }
  }
  const needed = s.expiresSeconds + minRemainingSeconds + MIN_USABLE_SECONDS
  if (grant.durationSeconds < needed) {
    return `durationSeconds: must be at least signing.expiresSeconds + cache.minRemainingSeconds + ${MIN_USABLE_SECONDS} (${needed}) for signed uploads`
  }
  return undefined
}

/** https, or http to a loopback address (a development stack on one machine). */
export function isHttpsOrLoopback (url: string): boolean {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return false
  }
  if (u.protocol === 'https:') return true
  return u.protocol === 'http:' && (u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname))
}

function refuse (problem: string): never {
  throw new ConfigError(`config: ${problem}`)
}

function compileOne (grant: GrantConfig, at: string, issuerNames: ReadonlySet<string>, minRemainingSeconds: number): CompiledGrant {
  for (const name of grant.issuers) {
    if (!issuerNames.has(name)) refuse(`${at}.issuers: no issuer is named "${name}"`)
  }
  let template: PrefixTemplate
  try {
    template = parsePrefixTemplate(grant.prefix)
  } catch (err) {
    refuse(`${at}.prefix: ${(err as Error).message}`)
  }
  const bytes = worstCasePolicyBytes(grant.bucket, template, grant.actions)
  if (bytes > POLICY_MAX_BYTES) {
    refuse(`${at}: the session policy can reach ${bytes} bytes, over STS's limit of ${POLICY_MAX_BYTES}`)
  }
  if (minRemainingSeconds + MIN_USABLE_SECONDS > grant.durationSeconds) {
    refuse(`${at}.durationSeconds: must exceed cache.minRemainingSeconds (${minRemainingSeconds}) by at least ${MIN_USABLE_SECONDS}`)
  }
  const signing = signingProblem(grant, minRemainingSeconds)
  if (signing !== undefined) refuse(`${at}.${signing}`)
  let sourceIdentity: SourceIdentityTemplate | undefined
  if (grant.sourceIdentity !== undefined) {
    try {
      sourceIdentity = parseSourceIdentityTemplate(grant.sourceIdentity)
    } catch (err) {
      refuse(`${at}.sourceIdentity: ${(err as Error).message}`)
    }
  }
  return { config: grant, template, ...(sourceIdentity !== undefined ? { sourceIdentity } : {}), minDurationSeconds: Math.max(MIN_DURATION_SECONDS, minRemainingSeconds + MIN_USABLE_SECONDS) }
}

/** The first pair of grants (or one grant across its issuers) that could give two callers overlapping directories. */
function overlap (grants: CompiledGrants): string | undefined {
  for (const [j, b] of grants.entries()) {
    for (const [i, a] of grants.entries()) {
      if (i > j || a.config.bucket !== b.config.bucket) continue
      if (!isPerCaller(a.template) && !isPerCaller(b.template)) continue
      if (a.config.shared === true || b.config.shared === true) continue
      for (const issA of a.config.issuers) {
        for (const issB of b.config.issuers) {
          if (i === j && issA === issB) continue
          if (issA === issB && sameDirectoryRule(a.template, issA, b.template, issB)) continue
          if (!mayShareDirectory(a.template, issA, b.template, issB)) continue
          if (i === j) {
            return `grants[${j}].prefix: grant "${b.config.name}" serves several issuers; put {issuer} in its prefix so the same subject from "${issA}" and "${issB}" never shares a directory`
          }
          const who = issA === issB ? `two callers of "${issA}"` : `a caller of "${issB}" and a caller of "${issA}"`
          return `grants[${j}].prefix: grant "${b.config.name}" and grant "${a.config.name}" (grants[${i}]) could give ${who} the same or nested directories in bucket "${b.config.bucket}"; ` +
            'use distinct literal segments (or {issuer}), or set shared: true on the grant that is meant to reach into the other\'s directories'
        }
      }
    }
  }
  return undefined
}

/** Check every grant rule and parse every template, once. Throws ConfigError. */
export function compileGrants (input: GrantsInput): CompiledGrants {
  const names = new Map<string, number>()
  for (const [i, g] of input.grants.entries()) {
    const first = names.get(g.name)
    if (first !== undefined) refuse(`grants[${i}].name: the name "${g.name}" is used twice (also grants[${first}])`)
    names.set(g.name, i)
  }
  const issuerNames = new Set(input.issuers.map((i) => i.name))
  const compiled = input.grants.map((g, i) => compileOne(g, `grants[${i}]`, issuerNames, input.cache.minRemainingSeconds))
  const problem = overlap(compiled)
  if (problem !== undefined) refuse(problem)
  return Object.freeze(compiled)
}
