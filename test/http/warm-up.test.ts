// Ready means warm (issue 25): once /readyz says ready, the first request of each kind
// finds nothing left to load or compile, so no synchronous step holds the event loop
// longer than 50 ms (a compile or an import after ready is what pushed the loop past
// `server.maxEventLoopDelayMs` and answered the first callers 503 OVERLOADED). Measured
// with perf_hooks.monitorEventLoopDelay around the first requests of each kind, on a
// fresh app each attempt. A busy machine can deschedule this process for longer than
// that on its own, which no code of ours decides: the check passes when one of three
// fresh apps stays under the bound, and a real regression (a compile, an SDK import)
// misses it on every attempt.
import t from 'tap'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { build, type Harness } from '../helpers/build.js'

const BOUND_MS = 50

async function listening (h: Harness): Promise<string> {
  await h.app.listen({ host: '127.0.0.1', port: 0 })
  const address = h.app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  for (let i = 0; i < 2000; i++) {
    const res = await fetch(`${url}/readyz`)
    await res.arrayBuffer()
    if (res.status === 200) return url
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('never ready')
}

/** The first request of each kind after ready; the longest event-loop delay seen meanwhile, in ms. */
async function firstRequests (h: Harness, url: string): Promise<{ maxMs: number, statuses: number[] }> {
  const token = h.token({ sub: 'first' })
  const json = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  const requests: Array<[string, RequestInit]> = [
    ['/credentials', { method: 'POST', headers: json, body: '{}' }], // a miss: the SDK's first AssumeRole
    ['/credentials', { method: 'POST', headers: json, body: '{}' }], // a hit
    ['/credentials?format=oss-app-server', { method: 'POST', headers: json, body: '{}' }],
    ['/credentials?format=credentials-uri', { method: 'POST', headers: json, body: '{}' }],
    ['/credentials', { method: 'POST', headers: json, body: '{"bucket":"other"}' }], // 400: the body's validator
    ['/credentials', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }], // 401
    ['/credentials', { method: 'POST', headers: { ...json, origin: 'https://evil.example' }, body: '{}' }], // 403
    ['/uploads/form', { method: 'POST', headers: json, body: '{}' }],
    ['/uploads/url', { method: 'POST', headers: json, body: JSON.stringify({ key: 'dir111/dir111_secondline1/first/a.bin', method: 'PUT' }) }],
    ['/nothing-here', { method: 'GET' }],
    ['/healthz', { method: 'GET' }],
    ['/metrics', { method: 'GET' }]
  ]
  const histogram = monitorEventLoopDelay({ resolution: 5 })
  histogram.enable()
  const statuses: number[] = []
  try {
    for (const [path, init] of requests) {
      const res = await fetch(`${url}${path}`, init)
      await res.arrayBuffer()
      statuses.push(res.status)
    }
    // The last request's own turn is sampled too.
    await new Promise((resolve) => setTimeout(resolve, 20))
  } finally {
    histogram.disable()
  }
  return { maxMs: histogram.max / 1e6, statuses }
}

t.test(`after ready, the first request of each kind holds the event loop < ${BOUND_MS} ms`, async (t) => {
  const seen: number[] = []
  for (let attempt = 1; attempt <= 3; attempt++) {
    const h = await build(t, {
      config: (base) => ({ ...base, grants: (base.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, signing: { maxBytes: 1_048_576, expiresSeconds: 600 } })) })
    })
    const url = await listening(h)
    const { maxMs, statuses } = await firstRequests(h, url)
    t.same(statuses, [200, 200, 200, 200, 400, 401, 403, 200, 200, 404, 200, 200], 'each kind answered as usual')
    seen.push(maxMs)
    await h.app.close()
    if (maxMs < BOUND_MS) break
  }
  t.comment(`longest event-loop delay per attempt: ${seen.map((ms) => ms.toFixed(1)).join(', ')} ms`)
  t.ok(seen.some((ms) => ms < BOUND_MS), `under ${BOUND_MS} ms in at least one of ${seen.length} fresh apps`)
})
