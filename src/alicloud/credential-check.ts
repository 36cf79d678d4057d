// checkUpstreamCredential() walks the SDK's default credential chain (credentials.ts
// lists its order) at start without asking anything of STS and without loading the
// SDK: nothing found is a configuration error (exit 2); an RRSA token file that the
// platform has not mounted yet is "not ready" until it appears. The chain itself is
// lazy, so without this check a service with no credential at all would report ready
// and answer its first caller "upstream unavailable" after three retries, which reads
// as an Alibaba outage. Nothing here returns or logs a secret.
import { statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

export type CredentialCheck =
  | { ok: true, source: string, ready: () => boolean, pending?: string }
  | { ok: false, problem: string }

export interface CredentialCheckOptions {
  env: Record<string, string | undefined>
  /** Home directory for the CLI profile and the credentials file. Default: os.homedir(). */
  home?: string
  /** The ECS metadata service. Default http://100.100.100.200 */
  metadataUrl?: string
  /** One deadline for the whole metadata probe. */
  metadataTimeoutMs?: number
}

const METADATA_URL = 'http://100.100.100.200'

const isTrue = (v: string | undefined): boolean => v?.toLowerCase() === 'true'
const set = (v: string | undefined): v is string => v !== undefined && v !== ''

function nonEmptyFile (path: string): boolean {
  try {
    const st = statSync(path)
    return st.isFile() && st.size > 0
  } catch {
    return false
  }
}

/** The RAM role name the ECS metadata service offers, or undefined (not ECS, no role, no answer in time). */
async function metadataRole (base: string, timeoutMs: number): Promise<string | undefined> {
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    // Loaded here, not at start: only a host with no other source probes the metadata service.
    const { request } = await import('undici')
    // IMDSv2 first (hardened instances refuse v1), as the SDK does; v1 if no token is given.
    const tokenRes = await request(`${base}/latest/api/token`, { method: 'PUT', signal, headers: { 'x-aliyun-ecs-metadata-token-ttl-seconds': '60' } })
    const token = tokenRes.statusCode === 200 ? (await tokenRes.body.text()).trim() : (await tokenRes.body.dump(), '')
    const res = await request(`${base}/latest/meta-data/ram/security-credentials/`, { method: 'GET', signal, headers: token !== '' ? { 'x-aliyun-ecs-metadata-token': token } : {} })
    if (res.statusCode !== 200) {
      await res.body.dump()
      return undefined
    }
    const role = (await res.body.text()).trim().split('\n')[0]?.trim()
    return role !== undefined && role !== '' ? role : undefined
  } catch {
    return undefined
  }
}

/**
 * Walks the default chain's sources, in its order, without fetching any secret from
 * STS. Never returns or logs a secret (only variable names, paths and a role name).
 */
export async function checkUpstreamCredential (opts: CredentialCheckOptions): Promise<CredentialCheck> {
  const { env } = opts
  const ready = (): boolean => true
  const id = env.ALIBABA_CLOUD_ACCESS_KEY_ID
  const secret = env.ALIBABA_CLOUD_ACCESS_KEY_SECRET
  if (set(id) && set(secret)) return { ok: true, source: 'ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET', ready }
  // Half a pair is a mistake, not a request for the next source in the chain.
  if (set(id) !== set(secret)) {
    return { ok: false, problem: `upstream credential: ${set(id) ? 'ALIBABA_CLOUD_ACCESS_KEY_ID is set but ALIBABA_CLOUD_ACCESS_KEY_SECRET is not' : 'ALIBABA_CLOUD_ACCESS_KEY_SECRET is set but ALIBABA_CLOUD_ACCESS_KEY_ID is not'}` }
  }

  const tokenFile = env.ALIBABA_CLOUD_OIDC_TOKEN_FILE
  if (set(env.ALIBABA_CLOUD_ROLE_ARN) && set(env.ALIBABA_CLOUD_OIDC_PROVIDER_ARN) && set(tokenFile)) {
    const source = 'RRSA (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE)'
    if (nonEmptyFile(tokenFile)) return { ok: true, source, ready }
    // The pod identity webhook mounts the projected token; it may come a moment later.
    let seen = false
    return {
      ok: true,
      source,
      pending: `the RRSA token file ${tokenFile} is not there yet`,
      ready: () => (seen ||= nonEmptyFile(tokenFile))
    }
  }

  const home = opts.home ?? homedir()
  if (!isTrue(env.ALIBABA_CLOUD_CLI_PROFILE_DISABLED) && nonEmptyFile(join(home, '.aliyun', 'config.json'))) {
    return { ok: true, source: `the aliyun CLI profile (${join(home, '.aliyun', 'config.json')})`, ready }
  }
  const credentialsFile = set(env.ALIBABA_CLOUD_CREDENTIALS_FILE) ? env.ALIBABA_CLOUD_CREDENTIALS_FILE : join(home, '.alibabacloud', 'credentials')
  if (nonEmptyFile(credentialsFile)) return { ok: true, source: `the credentials file ${credentialsFile}`, ready }
  // Checked before the metadata probe (the chain asks it after), so that a host that
  // names its credential service does not wait on a probe first.
  if (set(env.ALIBABA_CLOUD_CREDENTIALS_URI)) return { ok: true, source: 'ALIBABA_CLOUD_CREDENTIALS_URI', ready }

  const metadataDisabled = isTrue(env.ALIBABA_CLOUD_ECS_METADATA_DISABLED)
  if (!metadataDisabled) {
    const role = await metadataRole(opts.metadataUrl ?? METADATA_URL, opts.metadataTimeoutMs ?? 1000)
    if (role !== undefined) return { ok: true, source: `the ECS RAM role ${role} (instance metadata)`, ready }
  }
  return {
    ok: false,
    problem: 'no upstream credential: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or RRSA ' +
      '(ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE), or run on ECS with a RAM role ' +
      `(${metadataDisabled ? 'the metadata service is disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED' : 'the metadata service gave no role'})`
  }
}
