// Rules across keys that the schema cannot express. Each returns the first problem
// as "<path>: <what is wrong>", or undefined when the config is sound.
import type { Config } from './schema.js'
import { parsePrefixTemplate } from '../grants/template.js'
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
    const bytes = worstCasePolicyBytes(grant.bucket, template, grant.actions)
    if (bytes > POLICY_MAX_BYTES) {
      return `${at}: the session policy can reach ${bytes} bytes, over STS's limit of ${POLICY_MAX_BYTES}`
    }
    if (config.cache.minRemainingSeconds + MIN_USABLE_SECONDS > grant.durationSeconds) {
      return `${at}.durationSeconds: must exceed cache.minRemainingSeconds (${config.cache.minRemainingSeconds}) by at least ${MIN_USABLE_SECONDS}`
    }
  }
  return undefined
}
