// Rules across keys that the schema cannot express. Each returns the first problem
// as "<path>: <what is wrong>", or undefined when the config is sound.
import type { Config } from './schema.js'
import { isPerCaller, mayShareDirectory, parsePrefixTemplate, type PrefixTemplate } from '../grants/template.js'
import { worstCasePolicyBytes, POLICY_MAX_BYTES } from '../policy/build.js'

/** Credentials must stay cacheable for at least this long after the margin is taken off. */
export const MIN_USABLE_SECONDS = 300

function duplicates (names: string[]): string | undefined {
  const seen = new Set<string>()
  for (const n of names) {
    if (seen.has(n)) return n
    seen.add(n)
  }
  return undefined
}

export function crossCheck (config: Config): string | undefined {
  const dupIssuer = duplicates(config.issuers.map((i) => i.name))
  if (dupIssuer !== undefined) return `issuers: the name "${dupIssuer}" is used twice`
  const dupGrant = duplicates(config.grants.map((g) => g.name))
  if (dupGrant !== undefined) return `grants: the name "${dupGrant}" is used twice`

  for (const [i, iss] of config.issuers.entries()) {
    const at = `issuers[${i}]`
    const sources = [iss.jwksUri, iss.publicKey, iss.secretEnv].filter((s) => s !== undefined)
    if (sources.length !== 1) return `${at}: exactly one of jwksUri, publicKey or secretEnv is required`
    const hmac = iss.algorithms.filter((a) => a.startsWith('HS'))
    if (iss.secretEnv !== undefined && hmac.length !== iss.algorithms.length) {
      return `${at}.algorithms: an issuer with secretEnv may only use HS256/HS384/HS512`
    }
    if (iss.secretEnv === undefined && hmac.length > 0) {
      // A public key used as an HMAC secret is the classic algorithm-confusion attack.
      return `${at}.algorithms: HS* algorithms need secretEnv; they are refused with public keys`
    }
  }

  const issuerNames = new Set(config.issuers.map((i) => i.name))
  const templates: PrefixTemplate[] = []
  for (const [i, grant] of config.grants.entries()) {
    const at = `grants[${i}]`
    for (const name of grant.issuers) {
      if (!issuerNames.has(name)) return `${at}.issuers: no issuer is named "${name}"`
    }
    let template
    try {
      template = parsePrefixTemplate(grant.prefix)
    } catch (err) {
      return `${at}.prefix: ${(err as Error).message}`
    }
    templates.push(template)
    const bytes = worstCasePolicyBytes(grant.bucket, template, grant.actions)
    if (bytes > POLICY_MAX_BYTES) {
      return `${at}: the session policy can reach ${bytes} bytes, over STS's limit of ${POLICY_MAX_BYTES}`
    }
    if (config.cache.minRemainingSeconds + MIN_USABLE_SECONDS > grant.durationSeconds) {
      return `${at}.durationSeconds: must exceed cache.minRemainingSeconds (${config.cache.minRemainingSeconds}) by at least ${MIN_USABLE_SECONDS}`
    }
  }

  // The same `sub` from two issuers is two people: their directories (in one bucket)
  // must never be equal or nested, within one grant or across grants. Conservative:
  // a claim placeholder may equal any literal segment. Two directories without claims
  // are shared on purpose (e.g. `public/`) and are left alone.
  for (const [j, b] of config.grants.entries()) {
    for (const [i, a] of config.grants.entries()) {
      if (i > j || a.bucket !== b.bucket) continue
      if (!isPerCaller(templates[i] as PrefixTemplate) && !isPerCaller(templates[j] as PrefixTemplate)) continue
      for (const issA of a.issuers) {
        for (const issB of b.issuers) {
          if (issA === issB || !mayShareDirectory(templates[i] as PrefixTemplate, issA, templates[j] as PrefixTemplate, issB)) continue
          return i === j
            ? `grants[${j}].prefix: this grant serves several issuers; put {issuer} in its prefix so the same subject from "${issA}" and "${issB}" never shares a directory`
            : `grants[${j}].prefix: callers of "${issB}" could reach the same directory as callers of "${issA}" under grants[${i}] in bucket "${b.bucket}"; use {issuer} or distinct literal segments`
        }
      }
    }
  }
  return redisProblem(config)
}

function redisProblem (config: Config): string | undefined {
  if (config.redis === undefined) return undefined
  let url: URL
  try {
    url = new URL(config.redis.url)
  } catch {
    return 'redis.url: not a valid URL'
  }
  // Secrets belong in passwordEnv: a URL ends up in config maps, logs and process lists.
  if (url.password !== '') return 'redis.url: a password inside the URL is refused; use redis.passwordEnv'
  if (config.cache.encryptionKeysEnv === undefined) return 'cache.encryptionKeysEnv: required when redis is set (entries in Redis are encrypted)'
  if (config.sts.fleetMaxCallsPerSecond === undefined) return 'sts.fleetMaxCallsPerSecond: required when redis is set (the AssumeRole budget of all replicas together)'
  if (config.redis.commandTimeoutMs >= config.sts.deadlineMs) return 'redis.commandTimeoutMs: must be below sts.deadlineMs'
  return undefined
}
