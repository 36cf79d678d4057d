// Where an issuer's verification keys come from: a JWKS URL, a static PEM, or an
// HMAC secret. The JWKS store is written here rather than taken from get-jwks because
// the service needs things that library does not do: a flood of unknown `kid`s or of
// bad signatures may trigger at most one refetch per interval (not one fetch each),
// with backoff while the identity provider fails; keys already loaded keep verifying
// through an outage; one fetch has one deadline (a dripping host cannot hold it, or a
// request, for longer); "no keys yet" is distinguishable (503) from "bad token" (401).
//
// Each key is one object for as long as the key set holds it, so that the verifier
// built for it (verifier.ts) lives exactly as long as the key, and a token verified
// with it is recalled (verified-tokens.ts) only while `holds` still finds it.
//
// undici is imported on the first fetch, not at start: only a JWKS issuer needs it, and
// it is a tenth of start-up. Node's global fetch would be cheaper still, but it follows
// redirects and decompresses unless told otherwise, refuses the fetch spec's "bad ports"
// and wraps every socket error, so the exact behaviour tested here stays on undici.
import { createPublicKey, createSecretKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { InvalidToken, KeysUnavailable } from '../errors.js'

/** A key as fast-jwt takes it: an SPKI PEM or an HMAC secret. One object per key, kept while the key is. */
export interface VerificationKey { readonly material: string | Buffer }

export interface KeySource {
  /** The key for a token with this header, or InvalidToken / KeysUnavailable. */
  getKey (kid: string | undefined, alg: string): Promise<VerificationKey>
  /**
   * Whether this key is still in the set (identity: a key kept across refetches is the
   * same object). Starts a refresh when the set is stale, as getKey does, so that a
   * token verified before cannot keep a removed key's set from being refreshed.
   */
  holds (key: VerificationKey): boolean
  /** True once keys are available (readiness). */
  ready (): boolean
  close (): void
}

export interface KeyLog {
  warn (obj: Record<string, unknown>, msg: string): void
  info (obj: Record<string, unknown>, msg: string): void
}

const CURVES: Record<string, { name: string, alg: string }> = {
  prime256v1: { name: 'P-256', alg: 'ES256' },
  secp384r1: { name: 'P-384', alg: 'ES384' },
  secp521r1: { name: 'P-521', alg: 'ES512' }
}
export const MIN_RSA_BITS = 2048

/**
 * Why this public key must not verify tokens (of `alg`, when given), or undefined when
 * it may: RSA under 2048 bits, EC curves other than P-256/P-384/P-521 (secp256k1 never),
 * an EC curve that is not the one `alg` names, or a key type that `alg` does not use.
 */
export function keyProblem (key: KeyObject, alg?: string): string | undefined {
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails ?? {}
  if (type === 'rsa' || type === 'rsa-pss') {
    const bits = details.modulusLength ?? 0
    if (bits < MIN_RSA_BITS) return `an RSA key of ${bits} bits is too weak (at least ${MIN_RSA_BITS} are required)`
    if (alg !== undefined && !/^(RS|PS)(256|384|512)$/.test(alg)) return `an RSA key cannot verify ${alg}`
    return undefined
  }
  if (type === 'ec') {
    const curve = CURVES[details.namedCurve ?? '']
    if (curve === undefined) return `the EC curve ${details.namedCurve ?? 'unknown'} is not allowed (P-256, P-384 or P-521 only)`
    if (alg !== undefined && alg !== curve.alg) return `a ${curve.name} key cannot verify ${alg} (it is for ${curve.alg})`
    return undefined
  }
  if (type === 'ed25519' || type === 'ed448') {
    if (alg !== undefined && alg !== 'EdDSA') return `an ${type} key cannot verify ${alg}`
    return undefined
  }
  return `${type ?? 'unknown'} keys are not supported`
}

/**
 * A static public key. A weak key, or one that cannot verify every configured
 * algorithm, is refused here: a configuration error at start.
 */
export function staticKeySource (pem: string, algorithms: readonly string[]): KeySource {
  let key: KeyObject
  try {
    key = createPublicKey(pem)
  } catch {
    throw new Error('not a readable public key (SPKI PEM expected)')
  }
  for (const alg of algorithms) {
    const problem = keyProblem(key, alg)
    if (problem !== undefined) throw new Error(problem)
  }
  const verificationKey: VerificationKey = { material: key.export({ type: 'spki', format: 'pem' }).toString() }
  return { getKey: async () => verificationKey, holds: (key) => key === verificationKey, ready: () => true, close: () => {} }
}

export function secretKeySource (secret: string): KeySource {
  const verificationKey: VerificationKey = { material: createSecretKey(Buffer.from(secret, 'utf8')).export() }
  return { getKey: async () => verificationKey, holds: (key) => key === verificationKey, ready: () => true, close: () => {} }
}

/** The one deadline of a whole JWKS fetch (connect, headers, body); kept well under 10 s. */
export const JWKS_FETCH_DEADLINE_MS = 5000
/** The first retry after a failed cold fetch; it doubles up to the refetch interval. */
export const JWKS_COLD_RETRY_MS = 250

export interface JwksOptions {
  uri: string
  /** The issuer's name, for log lines. */
  name?: string
  /** Keys older than this are refreshed in the background. */
  refreshMs: number
  /** Fetches (unknown kids, stale keys) start at most this often; failures back off from here. */
  minRefetchMs: number
  /** Deadline of one whole fetch. Default JWKS_FETCH_DEADLINE_MS. */
  fetchDeadlineMs?: number
  /** The longest a request waits on a fetch in flight. Default: the fetch deadline. */
  maxWaitMs?: number
  /** First retry delay while no keys were ever loaded. Default JWKS_COLD_RETRY_MS. */
  coldRetryMs?: number
  now?: () => number
  /** Schedules the background retry of a cold start; returns a cancel function (fake timers in tests). */
  setTimer?: (fn: () => void, ms: number) => () => void
  /** [0, 1): spreads the retry delays after failures (JWKS_BACKOFF_JITTER). Default Math.random. */
  random?: () => number
  log?: KeyLog
}

/**
 * Retry delays after a failed fetch are lengthened by up to this fraction, at random,
 * so that the replicas of a fleet, which saw the identity provider fail together, do
 * not retry in step when it comes back. Only ever lengthened: the refetch interval
 * stays the floor of any two fetches.
 */
export const JWKS_BACKOFF_JITTER = 0.25

interface LoadedKey extends VerificationKey {
  kid?: string
  /** The `alg` the JWK declares, if any. */
  alg?: string
  key: KeyObject
  /** The algorithms this key may verify, worked out once at load (not per request). */
  algs: ReadonlySet<string>
  /** Identity across refetches: an unchanged key keeps its object (and verifier). */
  id: string
}

const PUBLIC_KEY_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

const MAX_JWKS_BYTES = 256 * 1024

/** A JWKS fetch that failed, with a cause fit for a log line (no body, no key material). */
export class JwksFetchError extends Error {
  override name = 'JwksFetchError'
}

/** The URL without userinfo or query, which may hold credentials. */
export function loggableUri (uri: string): string {
  try {
    const u = new URL(uri)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return '(unparseable URL)'
  }
}

function describe (err: unknown, deadlineMs: number): string {
  if (err instanceof JwksFetchError) return err.message
  const e = err as { name?: string, code?: string, message?: string }
  if (e.name === 'TimeoutError') return `no complete answer within ${deadlineMs} ms`
  if (typeof e.code === 'string') return `connection error ${e.code}`
  return `fetch error ${e.name ?? 'unknown'}`
}

interface Fetched { keys: LoadedKey[], skipped: Array<{ kid?: string, reason: string }> }

async function fetchJwks (uri: string, deadlineMs: number, closed: AbortSignal): Promise<Fetched> {
  // One signal for the whole exchange: undici's headers/body timeouts are per wait,
  // so a host that drips one byte at a time would otherwise never time out. The
  // timeout signal is held here until the end (AbortSignal.any holds its sources weakly).
  const deadline = AbortSignal.timeout(deadlineMs)
  const signal = AbortSignal.any([deadline, closed])
  try {
    return await readJwks(uri, deadlineMs, signal)
  } catch (err) {
    if (deadline.aborted) throw new JwksFetchError(`no complete answer within ${deadlineMs} ms`)
    throw err
  }
}

async function readJwks (uri: string, deadlineMs: number, signal: AbortSignal): Promise<Fetched> {
  const { request } = await import('undici')
  const res = await request(uri, { method: 'GET', signal, headersTimeout: deadlineMs, bodyTimeout: deadlineMs, headers: { accept: 'application/json' } })
  try {
    if (res.statusCode !== 200) throw new JwksFetchError(`HTTP status ${res.statusCode}`)
    const declared = Number(res.headers['content-length'] ?? 0)
    if (declared > MAX_JWKS_BYTES) throw new JwksFetchError(`larger than ${MAX_JWKS_BYTES} bytes`)
    let size = 0
    const chunks: Buffer[] = []
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > MAX_JWKS_BYTES) throw new JwksFetchError(`larger than ${MAX_JWKS_BYTES} bytes`)
      chunks.push(chunk as Buffer)
    }
    let doc: { keys?: unknown }
    try {
      doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { keys?: unknown }
    } catch {
      throw new JwksFetchError('the answer is not JSON')
    }
    if (doc === null || typeof doc !== 'object' || !Array.isArray(doc.keys)) throw new JwksFetchError('the answer has no "keys" array')
    return parseKeys(doc.keys)
  } finally {
    // Nothing left unread holds the socket (destroy, not dump: dump would read on).
    if (!res.body.destroyed) res.body.on('error', () => {}).destroy()
  }
}

function parseKeys (jwks: unknown[]): Fetched {
  const keys: LoadedKey[] = []
  const skipped: Fetched['skipped'] = []
  for (const jwk of jwks as Array<Record<string, unknown>>) {
    if (jwk === null || typeof jwk !== 'object') continue
    const kid = typeof jwk.kid === 'string' ? jwk.kid : undefined
    const alg = typeof jwk.alg === 'string' ? jwk.alg : undefined
    // Only public signature keys: never a private or symmetric key published by mistake.
    if ('d' in jwk || jwk.kty === 'oct' || (jwk.use !== undefined && jwk.use !== 'sig')) {
      skipped.push({ ...(kid !== undefined ? { kid } : {}), reason: 'not a public signature key' })
      continue
    }
    let key: KeyObject
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
    } catch {
      skipped.push({ ...(kid !== undefined ? { kid } : {}), reason: 'not a readable key' })
      continue
    }
    const problem = keyProblem(key, alg)
    if (problem !== undefined) {
      skipped.push({ ...(kid !== undefined ? { kid } : {}), reason: problem })
      continue
    }
    const material = key.export({ type: 'spki', format: 'pem' }).toString()
    const algs = new Set(PUBLIC_KEY_ALGS.filter((a) => (alg === undefined || alg === a) && keyProblem(key, a) === undefined))
    keys.push({ kid, alg, key, material, algs, id: JSON.stringify([kid ?? null, alg ?? null, material]) })
  }
  if (keys.length === 0) throw new JwksFetchError(skipped.length > 0 ? `no usable keys (${skipped.length} refused)` : 'no keys')
  return { keys, skipped }
}

const keyMatchesAlg = (key: LoadedKey, alg: string): boolean => key.algs.has(alg)

function defaultTimer (fn: () => void, ms: number): () => void {
  const timer = setTimeout(fn, ms)
  timer.unref()
  return () => clearTimeout(timer)
}

/** Resolves true if `p` settles within `ms`, false otherwise; never rejects. */
async function settlesWithin (p: Promise<unknown>, ms: number): Promise<boolean> {
  let cancel: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => { cancel = setTimeout(() => resolve(false), ms) })
  try {
    return await Promise.race([p.then(() => true, () => true), timeout])
  } finally {
    clearTimeout(cancel)
  }
}

export function jwksKeySource (opts: JwksOptions): KeySource & { fetches (): number } {
  const now = opts.now ?? Date.now
  const deadlineMs = opts.fetchDeadlineMs ?? JWKS_FETCH_DEADLINE_MS
  const maxWaitMs = opts.maxWaitMs ?? deadlineMs
  const coldRetryMs = opts.coldRetryMs ?? JWKS_COLD_RETRY_MS
  const setTimer = opts.setTimer ?? defaultTimer
  const random = opts.random ?? Math.random
  const logFields = { issuer: opts.name, jwksUri: loggableUri(opts.uri) }
  let keys: LoadedKey[] | undefined
  let loadedAt = -Infinity
  /** No fetch starts before this time: the refetch interval after any fetch, longer while failing. */
  let nextFetchAt = -Infinity
  let failures = 0
  let lastFailureLogAt = -Infinity
  let inflight: Promise<void> | undefined
  let fetchCount = 0
  let closed = false
  let cancelRetry: (() => void) | undefined
  const closing = new AbortController()

  const mayFetch = (): boolean => !closed && inflight === undefined && now() >= nextFetchAt

  function backoffMs (): number {
    // Warm: the refetch interval, doubling while the provider fails, up to the cache TTL.
    // Cold: start small so that readiness does not wait a whole interval.
    const step = 2 ** Math.min(failures - 1, 20)
    const base = keys !== undefined
      ? Math.min(opts.minRefetchMs * step, Math.max(opts.refreshMs, opts.minRefetchMs))
      : Math.min(coldRetryMs * step, opts.minRefetchMs)
    return Math.round(base * (1 + JWKS_BACKOFF_JITTER * random()))
  }

  function loaded (fetched: Fetched): void {
    const previous = new Map((keys ?? []).map((k) => [k.id, k]))
    keys = fetched.keys.map((k) => previous.get(k.id) ?? k)
    loadedAt = now()
    nextFetchAt = loadedAt + opts.minRefetchMs
    if (fetched.skipped.length > 0) opts.log?.warn({ ...logFields, skipped: fetched.skipped }, 'JWKS keys refused and skipped')
    if (failures > 0) opts.log?.info({ ...logFields, failures }, 'JWKS fetched again after failures')
    failures = 0
  }

  function failed (err: unknown): void {
    if (closed) return
    failures++
    nextFetchAt = now() + backoffMs()
    // One line per refetch interval at most, whatever the number of failures.
    if (now() - lastFailureLogAt >= opts.minRefetchMs) {
      lastFailureLogAt = now()
      opts.log?.warn({ ...logFields, cause: describe(err, deadlineMs), failures, keysLoaded: keys !== undefined }, keys !== undefined ? 'JWKS fetch failed; the loaded keys stay in use' : 'JWKS fetch failed; no keys yet')
    }
    if (keys === undefined) scheduleColdRetry()
  }

  // Until the first load succeeds, keep trying in the background so readiness recovers.
  function scheduleColdRetry (): void {
    cancelRetry?.()
    if (closed) return
    cancelRetry = setTimer(() => {
      cancelRetry = undefined
      if (keys !== undefined || closed) return
      if (mayFetch()) void start()
      else if (inflight === undefined) scheduleColdRetry()
    }, Math.max(1, nextFetchAt - now()))
  }

  /** Starts a fetch (the caller checked mayFetch); the promise never rejects. */
  function start (): Promise<void> {
    fetchCount++
    nextFetchAt = now() + opts.minRefetchMs
    const p = fetchJwks(opts.uri, deadlineMs, closing.signal).then(loaded, failed).catch(() => {}).finally(() => {
      if (inflight === p) inflight = undefined
    })
    inflight = p
    return p
  }

  void start()

  function find (kid: string | undefined, alg: string): LoadedKey | undefined {
    if (keys === undefined) return undefined
    // kids are compared exactly (base64 `+`, `/`, `=` included); without a kid, only an unambiguous key.
    if (kid !== undefined) return keys.find((k) => k.kid === kid && keyMatchesAlg(k, alg))
    const usable = keys.filter((k) => keyMatchesAlg(k, alg))
    return usable.length === 1 ? usable[0] : undefined
  }

  return {
    fetches: () => fetchCount,
    ready: () => keys !== undefined,
    close () {
      closed = true
      cancelRetry?.()
      closing.abort()
    },
    holds (key) {
      if (keys === undefined) return false
      if (now() - loadedAt >= opts.refreshMs && mayFetch()) void start()
      return keys.includes(key as LoadedKey)
    },
    async getKey (kid, alg) {
      if (keys === undefined) {
        if (mayFetch()) void start()
        const pending = inflight
        if (pending === undefined || !(await settlesWithin(pending, maxWaitMs)) || keys === undefined) throw new KeysUnavailable()
      } else if (now() - loadedAt >= opts.refreshMs && mayFetch()) {
        void start() // stale keys keep verifying while the refresh runs (or fails)
      }
      let key = find(kid, alg)
      if (key === undefined) {
        // Possibly a rotated key: one refetch per interval, whatever the number of unknown kids.
        if (mayFetch()) void start()
        const pending = inflight
        if (pending !== undefined && await settlesWithin(pending, maxWaitMs)) key = find(kid, alg)
      }
      if (key === undefined) throw new InvalidToken()
      return key
    }
  }
}
