// The codes that used to be listed but never sent are real answers now: 405 with
// `Allow` for a known path and another method, 406 for an Accept that admits no JSON,
// and the HTTP layer's own 431/408/400 in our Error shape. None of them reaches STS.
import t from 'tap'
import { connect, type AddressInfo } from 'node:net'
import { Value } from '@sinclair/typebox/value'
import { build } from '../helpers/build.js'
import { ErrorResponse } from '../../src/http/schemas.js'

t.test('a known path with another method is 405 with Allow; an unknown path is 404', async (t) => {
  const h = await build(t)
  const rows: Array<{ method: 'GET' | 'PUT' | 'DELETE' | 'PATCH' | 'POST' | 'HEAD', url: string, status: number, allow?: string }> = [
    { method: 'GET', url: '/credentials', status: 405, allow: 'POST' },
    { method: 'PUT', url: '/credentials', status: 405, allow: 'POST' },
    { method: 'DELETE', url: '/credentials?format=oss-app-server', status: 405, allow: 'POST' },
    { method: 'PATCH', url: '/credentials', status: 405, allow: 'POST' },
    { method: 'HEAD', url: '/credentials', status: 405, allow: 'POST' },
    { method: 'POST', url: '/healthz', status: 405, allow: 'GET, HEAD' },
    { method: 'DELETE', url: '/openapi.json', status: 405, allow: 'GET, HEAD' },
    { method: 'GET', url: '/nope', status: 404 },
    { method: 'POST', url: '/credentials/admin', status: 404 },
    { method: 'GET', url: '/credentials/', status: 404 }
  ]
  for (const row of rows) {
    const what = `${row.method} ${row.url}`
    const res = await h.app.inject({ method: row.method, url: row.url, headers: { authorization: `Bearer ${h.token()}` } })
    t.equal(res.statusCode, row.status, `${what}: ${row.status}`)
    t.equal(res.headers.allow, row.allow, `${what}: Allow ${row.allow ?? 'absent'}`)
    if (row.method === 'HEAD') continue
    t.ok(Value.Check(ErrorResponse, res.json()), `${what}: an Error body`)
    t.equal(res.json().code, row.status === 405 ? 'STS_VENDING_METHOD_NOT_ALLOWED' : 'STS_VENDING_NOT_FOUND')
    t.equal(res.headers['cache-control'], 'no-store')
  }
  t.equal(h.emulator.callCount, 0)
})

t.test('Accept: 406 when no JSON answer is acceptable, decided before the token is read', async (t) => {
  const h = await build(t)
  const refused: Array<[string, string]> = [
    ['text/html only', 'text/html'],
    ['XML only', 'application/xml'],
    ['JSON refused with q=0', 'application/json;q=0, text/plain'],
    ['an unknown vendor type', 'application/vnd.sts-vending.nope+json']
  ]
  for (const [desc, accept] of refused) {
    const res = await h.vend(undefined, {}, { accept })
    t.equal(res.statusCode, 406, `${desc}: 406 (no token needed to learn it)`)
    t.equal(res.json.code, 'STS_VENDING_NOT_ACCEPTABLE', desc)
  }
  const shaped = await h.app.inject({ method: 'POST', url: '/credentials?format=oss-app-server', headers: { accept: 'text/html' } })
  t.equal(shaped.statusCode, 406)
  t.same(shaped.json(), { StatusCode: 406, ErrorCode: 'STS_VENDING_NOT_ACCEPTABLE', ErrorMessage: 'No acceptable response format' }, 'in the format asked for')

  const accepted: Array<[string, string]> = [
    ['any', '*/*'],
    ['application/*', 'application/*'],
    ['JSON', 'application/json'],
    ['JSON with a charset', 'application/json; charset=utf-8'],
    ['a browser\'s default', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
    ['a vendor type', 'application/vnd.sts-vending.credentials-uri+json'],
    ['empty', '']
  ]
  const token = h.token()
  for (const [desc, accept] of accepted) {
    const res = await h.vend(token, {}, { accept })
    t.equal(res.statusCode, 200, `${desc}: 200`)
  }
  t.equal(h.emulator.callCount, 1, 'refusals never reached STS (one miss, then the cache)')
})

interface Raw { status: number, headers: Record<string, string>, body: unknown }

function parseRaw (raw: string): Raw {
  const [head = '', body = ''] = raw.split('\r\n\r\n', 2)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
  let parsed: unknown = body
  try { parsed = JSON.parse(body) } catch { /* the assertions report it */ }
  return { status: Number(statusLine.split(' ')[1]), headers, body: parsed }
}

async function exchangeRaw (port: number, text: string, end = true): Promise<Raw> {
  return await new Promise((resolve) => {
    let raw = ''
    const socket = connect(port, '127.0.0.1', () => { socket.write(text); if (end) socket.end() })
    socket.on('data', (d: Buffer) => { raw += d.toString() })
    socket.on('error', () => {})
    socket.on('close', () => resolve(parseRaw(raw)))
  })
}

t.test('the HTTP layer\'s own refusals come in our Error shape', async (t) => {
  const h = await build(t, { config: (c) => ({ ...c, server: { headersTimeoutMs: 1000, requestTimeoutMs: 5000 } }) })
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = h.app.server.address() as AddressInfo
  const rows: Array<{ desc: string, text: string, end: boolean, status: number, code: string }> = [
    { desc: 'headers over server.maxHeaderBytes', text: `POST /credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(20_000)}\r\n\r\n`, end: true, status: 431, code: 'STS_VENDING_HEADERS_TOO_LARGE' },
    { desc: 'bytes that are not HTTP', text: 'HELLO THERE\r\n\r\n', end: true, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'headers that never finish', text: 'POST /credentials HTTP/1.1\r\nHost: x\r\n', end: false, status: 408, code: 'STS_VENDING_REQUEST_TIMEOUT' }
  ]
  for (const row of rows) {
    const res = await exchangeRaw(port, row.text, row.end)
    t.equal(res.status, row.status, `${row.desc}: ${row.status}`)
    t.ok(Value.Check(ErrorResponse, res.body), `${row.desc}: an Error body`)
    t.match(res.body, { statusCode: row.status, code: row.code }, row.desc)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${row.desc}: nosniff`)
    t.equal(res.headers['cache-control'], 'no-store', `${row.desc}: no-store`)
    t.match(res.headers['content-type'], /^application\/json/, `${row.desc}: JSON`)
  }
  t.equal(h.emulator.callCount, 0)
})
