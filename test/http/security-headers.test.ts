// Issue 16 item 11: X-Content-Type-Options: nosniff on every answer, whatever route,
// status or error produced it.
import t from 'tap'
import type { InjectOptions } from 'fastify'
import { build } from '../helpers/build.js'

t.test('nosniff on every answer', async (t) => {
  const h = await build(t, { config: (c) => ({ ...c, cors: { origins: ['https://app.example.com'] }, server: { bodyLimitBytes: 256 } }) })
  const token = h.token()
  const rows: Array<{ desc: string, status: number, req: InjectOptions }> = [
    { desc: 'liveness', status: 200, req: { url: '/healthz' } },
    { desc: 'readiness', status: 200, req: { url: '/readyz' } },
    { desc: 'metrics', status: 200, req: { url: '/metrics' } },
    { desc: 'openapi.yaml', status: 200, req: { url: '/openapi.yaml' } },
    { desc: 'openapi.json', status: 200, req: { url: '/openapi.json' } },
    { desc: 'an unknown path', status: 404, req: { url: '/nope' } },
    { desc: 'a wrong method', status: 405, req: { method: 'GET', url: '/credentials' } },
    { desc: 'credentials', status: 200, req: { method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${token}` } } },
    { desc: 'another format', status: 200, req: { method: 'POST', url: '/credentials?format=credentials-uri', headers: { authorization: `Bearer ${token}` } } },
    { desc: 'no token', status: 401, req: { method: 'POST', url: '/credentials' } },
    { desc: 'an unknown format', status: 400, req: { method: 'POST', url: '/credentials?format=nope', headers: { authorization: `Bearer ${token}` } } },
    { desc: 'a body that is not JSON', status: 415, req: { method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, payload: 'x' } },
    { desc: 'a body too large', status: 413, req: { method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify({ prefix: 'x'.repeat(400) }) } },
    { desc: 'a refused origin', status: 403, req: { method: 'POST', url: '/credentials', headers: { origin: 'https://evil.example.com' } } },
    { desc: 'a preflight', status: 204, req: { method: 'OPTIONS', url: '/credentials', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } } },
    { desc: 'not a preflight', status: 400, req: { method: 'OPTIONS', url: '/credentials' } }
  ]
  for (const row of rows) {
    const res = await h.app.inject(row.req)
    t.equal(res.statusCode, row.status, `${row.desc}: ${row.status}`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${row.desc}: nosniff`)
  }
  h.app.lifecycle.addReadinessCheck('keys', () => false)
  const notReady = await h.app.inject('/readyz')
  t.equal(notReady.statusCode, 503)
  t.equal(notReady.headers['x-content-type-options'], 'nosniff', 'not ready: nosniff')
})
