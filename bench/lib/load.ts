// One load run with autocannon's programmatic API. Latency percentiles are computed
// here from every 2xx response's own duration (autocannon's histogram keeps whole
// milliseconds, too coarse for sub-millisecond p50s).
import autocannon, { type Request, type Result } from 'autocannon'

export interface LoadOptions {
  url: string
  connections: number
  /** Seconds; ignored when `amount` is set. */
  duration?: number
  /** Stop after this many requests. */
  amount?: number
  requests: Request[]
}

export interface LoadResult {
  /** Responses received (any status). */
  requests: number
  ok: number
  non2xx: number
  errors: number
  seconds: number
  /** 2xx responses per second. */
  rps: number
  p50: number
  p99: number
  /** Every 2xx response's latency, ms, sorted (for mergeLoads). */
  latencies: Float64Array
}

export function percentile (sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i] as number
}

export async function runLoad (opts: LoadOptions): Promise<LoadResult> {
  let latencies = new Float64Array(1 << 16)
  let n = 0
  const started = performance.now()
  // autocannon settles on its once-a-second tick; the run ends with the last response.
  let last = started
  const result = await new Promise<Result>((resolve, reject) => {
    const instance = autocannon({
      url: opts.url,
      connections: opts.connections,
      pipelining: 1,
      timeout: 30,
      // autocannon notices the end of a run on this tick; the default (1 s) pads every short run.
      sampleInt: 100,
      ...(opts.amount !== undefined ? { amount: opts.amount } : { duration: opts.duration ?? 1 }),
      requests: opts.requests
    }, (err, res) => { if (err !== null) reject(err); else resolve(res) })
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      last = performance.now()
      if (status < 200 || status > 299) return
      if (n === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2)
        bigger.set(latencies)
        latencies = bigger
      }
      latencies[n++] = ms
    })
  })
  const seconds = (last - started) / 1000
  const sorted = latencies.subarray(0, n).sort()
  return {
    requests: result['2xx'] + result.non2xx,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    seconds,
    rps: result['2xx'] / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    latencies: sorted
  }
}

/** Two runs against one server as one: counts and time added, percentiles over both runs' latencies. */
export function mergeLoads (a: LoadResult, b: LoadResult): LoadResult {
  const latencies = new Float64Array(a.latencies.length + b.latencies.length)
  latencies.set(a.latencies)
  latencies.set(b.latencies, a.latencies.length)
  latencies.sort()
  const seconds = a.seconds + b.seconds
  return {
    requests: a.requests + b.requests,
    ok: a.ok + b.ok,
    non2xx: a.non2xx + b.non2xx,
    errors: a.errors + b.errors,
    seconds,
    rps: (a.ok + b.ok) / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    latencies
  }
}

const JSON_HEADERS = { 'content-type': 'application/json' }

/** POST /credentials with `{}`, cycling through the tokens (each connection on its own). */
export function cyclingRequests (tokens: string[]): Request[] {
  return tokens.map((t) => ({ method: 'POST', path: '/credentials', headers: { ...JSON_HEADERS, authorization: `Bearer ${t}` }, body: '{}' }))
}

/**
 * POST /credentials with `{}`, the tokens taken in turn across all connections: with N
 * tokens and N×k requests, each caller asks exactly k times, k-1 of them after its
 * first answer came back (given N much larger than the connections).
 */
export function roundRobinRequests (tokens: string[], path = '/credentials'): Request[] {
  let i = 0
  return [{
    method: 'POST',
    path,
    body: '{}',
    headers: { ...JSON_HEADERS },
    setupRequest: (req) => ({ ...req, headers: { ...JSON_HEADERS, authorization: `Bearer ${tokens[i++ % tokens.length] ?? ''}` } })
  }]
}

export type SigningPath = '/uploads/form' | '/uploads/url'

/**
 * POST /uploads/form (or /uploads/url), cycling through the tokens: signing for one or
 * many distinct callers. The body: `{}` (the form for the grant's defaults) unless given
 * (a URL names a key in the caller's directory).
 */
export function signingRequests (tokens: string[], path: SigningPath = '/uploads/form', body = '{}'): Request[] {
  return tokens.map((t) => ({ method: 'POST', path, headers: { ...JSON_HEADERS, authorization: `Bearer ${t}` }, body }))
}
