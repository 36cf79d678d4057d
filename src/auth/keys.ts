// Where an issuer's verification keys come from: a JWKS URL, a static PEM, or an
// HMAC secret. The JWKS store is written here rather than taken from get-jwks because
// the service needs three things that library does not do: a flood of unknown `kid`s
// may trigger at most one refetch per interval (not one fetch each), keys already
// loaded keep verifying through an identity-provider outage, and "no keys yet" must be
// distinguishable (503) from "bad token" (401).
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto'
import { request } from 'undici'
import { InvalidToken, KeysUnavailable } from '../errors.js'

export interface KeySource {
  /** The key (PEM or HMAC secret, as fast-jwt takes it) for a token with this header, or InvalidToken / KeysUnavailable. */
  getKey (kid: string | undefined, alg: string): Promise<string | Buffer>
  /** True once keys are available (readiness). */
  ready (): boolean
  close (): void
}

export function staticKeySource (pem: string): KeySource {
  const key = createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString()
  return { getKey: async () => key, ready: () => true, close: () => {} }
}

export function secretKeySource (secret: string): KeySource {
  const key = createSecretKey(Buffer.from(secret, 'utf8')).export()
  return { getKey: async () => key, ready: () => true, close: () => {} }
}

export interface JwksOptions {
  uri: string
  /** Keys older than this are refreshed in the background. */
  refreshMs: number
  /** Unknown kids may trigger a refetch at most this often. */
  minRefetchMs: number
  timeoutMs?: number
  now?: () => number
  onFetch?: (outcome: 'ok' | 'error', err?: unknown) => void
}

interface LoadedKey { kid?: string, alg?: string, key: KeyObject, pem: string }

const MAX_JWKS_BYTES = 256 * 1024

async function fetchJwks (uri: string, timeoutMs: number): Promise<LoadedKey[]> {
  const res = await request(uri, { method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs, headers: { accept: 'application/json' } })
  if (res.statusCode !== 200) {
    await res.body.dump()
    throw new Error(`JWKS answered ${res.statusCode}`)
  }
  const declared = Number(res.headers['content-length'] ?? 0)
  if (declared > MAX_JWKS_BYTES) {
    await res.body.dump()
    throw new Error('JWKS too large')
  }
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length
    if (size > MAX_JWKS_BYTES) throw new Error('JWKS too large')
    chunks.push(chunk as Buffer)
  }
  const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { keys?: unknown }
  if (!Array.isArray(doc.keys)) throw new Error('JWKS has no keys array')
  const keys: LoadedKey[] = []
  for (const jwk of doc.keys as Array<Record<string, unknown>>) {
    if (jwk === null || typeof jwk !== 'object') continue
    // Only public signature keys: never a private or symmetric key published by mistake.
    if ('d' in jwk || jwk.kty === 'oct' || (jwk.use !== undefined && jwk.use !== 'sig')) continue
    try {
      const key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' })
      keys.push({ kid: typeof jwk.kid === 'string' ? jwk.kid : undefined, alg: typeof jwk.alg === 'string' ? jwk.alg : undefined, key, pem: key.export({ type: 'spki', format: 'pem' }).toString() })
    } catch {
      // An unusable key in the set is skipped, not fatal to the others.
    }
  }
  if (keys.length === 0) throw new Error('JWKS has no usable keys')
  return keys
}

function keyMatchesAlg (key: LoadedKey, alg: string): boolean {
  if (key.alg !== undefined && key.alg !== alg) return false
  const type = key.key.asymmetricKeyType
  if (alg.startsWith('RS') || alg.startsWith('PS')) return type === 'rsa' || type === 'rsa-pss'
  if (alg.startsWith('ES')) return type === 'ec'
  if (alg === 'EdDSA') return type === 'ed25519' || type === 'ed448'
  return false
}

export function jwksKeySource (opts: JwksOptions): KeySource & { refresh (): Promise<void>, fetches (): number } {
  const now = opts.now ?? Date.now
  const timeoutMs = opts.timeoutMs ?? 3000
  let keys: LoadedKey[] | undefined
  let loadedAt = 0
  let lastAttempt = -Infinity
  let inflight: Promise<void> | undefined
  let fetchCount = 0
  let closed = false
  let retryTimer: NodeJS.Timeout | undefined

  function refresh (): Promise<void> {
    if (inflight !== undefined) return inflight
    lastAttempt = now()
    fetchCount++
    inflight = fetchJwks(opts.uri, timeoutMs)
      .then((loaded) => {
        keys = loaded
        loadedAt = now()
        opts.onFetch?.('ok')
      }, (err: unknown) => {
        opts.onFetch?.('error', err)
        throw err
      })
      .finally(() => { inflight = undefined })
    return inflight
  }

  // Until the first load succeeds, keep trying in the background so readiness recovers.
  function scheduleColdRetry (): void {
    if (closed || keys !== undefined) return
    retryTimer = setTimeout(() => {
      refresh().catch(() => scheduleColdRetry())
    }, Math.min(opts.minRefetchMs, 5000))
    retryTimer.unref()
  }
  refresh().catch(() => scheduleColdRetry())

  function find (kid: string | undefined, alg: string): string | undefined {
    if (keys === undefined) return undefined
    const usable = keys.filter((k) => keyMatchesAlg(k, alg))
    if (kid !== undefined) return usable.find((k) => k.kid === kid)?.pem
    return usable.length === 1 ? usable[0]?.pem : undefined
  }

  return {
    refresh,
    fetches: () => fetchCount,
    ready: () => keys !== undefined,
    close () {
      closed = true
      if (retryTimer !== undefined) clearTimeout(retryTimer)
    },
    async getKey (kid, alg) {
      if (keys === undefined) {
        // Cold: wait for a fetch in flight, or start one if the last try is old enough.
        if (inflight === undefined && now() - lastAttempt < Math.min(opts.minRefetchMs, 2000)) throw new KeysUnavailable()
        try {
          await refresh()
        } catch {
          throw new KeysUnavailable()
        }
      } else if (now() - loadedAt > opts.refreshMs && inflight === undefined) {
        refresh().catch(() => {}) // stale keys keep working while the refresh fails
      }
      let key = find(kid, alg)
      if (key === undefined && now() - lastAttempt >= opts.minRefetchMs) {
        // Possibly a rotated key: one refetch per interval, whatever the number of unknown kids.
        await refresh().catch(() => {})
        key = find(kid, alg)
      } else if (key === undefined && inflight !== undefined) {
        await inflight.catch(() => {})
        key = find(kid, alg)
      }
      if (key === undefined) throw new InvalidToken()
      return key
    }
  }
}
