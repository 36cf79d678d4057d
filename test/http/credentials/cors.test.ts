// Issue 16 item 10: a browser on an allowed origin must be able to read every answer,
// refusals included (the code, Retry-After, the request id); without the CORS headers
// it sees an opaque network error. An origin that is not allowed never gets them.
import { setLag, sampled } from '../../helpers/event-loop.js' // first: it replaces the event-loop monitor
import t from 'tap'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { build, type Harness } from '../../helpers/build.js'
import { startJwksServer } from '../../helpers/jwks-server.js'
import { createDevIssuer } from '../../../devkit/dev/issuer.js'

const ALLOWED = 'https://app.example.com'
const OTHER = 'https://evil.example.com'
const withCors = (c: Record<string, unknown>): Record<string, unknown> => ({ ...c, cors: { origins: [ALLOWED] }, rateLimit: { max: 3, timeWindowMs: 60_000 } })

type Check = Pick<typeof t, 'equal' | 'ok' | 'match' | 'not'>

function assertCors (t: Check, headers: Record<string, unknown>, what: string): void {
  t.equal(headers['access-control-allow-origin'], ALLOWED, `${what}: Access-Control-Allow-Origin`)
  const exposed = String(headers['access-control-expose-headers'] ?? '').toLowerCase().split(/,\s*/)
  t.ok(exposed.includes('retry-after') && exposed.includes('x-request-id'), `${what}: Retry-After and X-Request-Id exposed (${exposed.join(',')})`)
  t.match(String(headers.vary ?? ''), /origin/i, `${what}: Vary: Origin`)
  t.not(headers['access-control-allow-credentials'], 'true', `${what}: never credentials mode`)
}

/** The Origin header, or none. */
const hdr = (origin: string | undefined): Record<string, string> => origin === undefined ? {} : { origin }

interface Row { desc: string, status: number, code: string, send: (h: Harness, origin: string | undefined) => Promise<{ statusCode: number, headers: Record<string, unknown>, json: any }> }

const rows: Row[] = [
  { desc: 'no token', status: 401, code: 'STS_VENDING_MISSING_TOKEN', send: async (h, origin) => h.vend(undefined, {}, hdr(origin)) },
  { desc: 'a token that is not valid', status: 401, code: 'STS_VENDING_INVALID_TOKEN', send: async (h, origin) => h.vend(h.secret('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'), {}, hdr(origin)) },
  { desc: 'a malformed Authorization header', status: 400, code: 'STS_VENDING_BAD_AUTHORIZATION_HEADER', send: async (h, origin) => h.vend('a b', {}, hdr(origin)) },
  { desc: 'an unacceptable Accept', status: 406, code: 'STS_VENDING_NOT_ACCEPTABLE', send: async (h, origin) => h.vend(h.token(), {}, { ...hdr(origin), accept: 'text/html' }) },
  { desc: 'a prefix outside the grant', status: 403, code: 'STS_VENDING_PREFIX_NOT_ALLOWED', send: async (h, origin) => h.vend(h.token(), { prefix: 'elsewhere/' }, hdr(origin)) },
  { desc: 'success', status: 200, code: '', send: async (h, origin) => h.vend(h.token(), {}, hdr(origin)) }
]

t.test('every answer to an allowed origin carries the CORS headers; another origin gets none', async (t) => {
  const h = await build(t, { config: withCors })
  for (const row of rows) {
    const res = await row.send(h, ALLOWED)
    t.equal(res.statusCode, row.status, `${row.desc}: ${row.status}`)
    if (row.code !== '') t.equal(res.json.code, row.code, `${row.desc}: ${row.code}`)
    assertCors(t, res.headers, row.desc)

    const other = await row.send(h, OTHER)
    t.equal(other.statusCode, 403, `${row.desc} from another origin: 403`)
    t.equal(other.json.code, 'STS_VENDING_ORIGIN_NOT_ALLOWED')
    t.equal(other.headers['access-control-allow-origin'], undefined, `${row.desc} from another origin: no Access-Control-Allow-Origin`)
    t.equal(other.headers['access-control-expose-headers'], undefined, `${row.desc} from another origin: nothing exposed`)
  }
  t.equal(h.emulator.callCount, 1, 'only the one success reached STS')
})

// Issue 25: @fastify/cors runs only for requests that can be CORS (cors-headers.ts). One
// without Origin gets the same answer and Vary: Origin, and nothing a browser would read.
t.test('without Origin: the same answers, Vary: Origin, no CORS headers', async (t) => {
  const h = await build(t, { config: withCors })
  for (const row of rows) {
    const res = await row.send(h, undefined)
    t.equal(res.statusCode, row.status, `${row.desc}: ${row.status}`)
    if (row.code !== '') t.equal(res.json.code, row.code, `${row.desc}: ${row.code}`)
    t.match(String(res.headers.vary ?? ''), /^Origin$/i, `${row.desc}: Vary: Origin, once`)
    t.equal(res.headers['access-control-allow-origin'], undefined, `${row.desc}: no Access-Control-Allow-Origin`)
    t.equal(res.headers['access-control-expose-headers'], undefined, `${row.desc}: nothing exposed`)
  }
  const options = await h.app.inject({ method: 'OPTIONS', url: '/credentials', headers: { 'access-control-request-method': 'POST' } })
  t.equal(options.statusCode, 400, 'an OPTIONS without Origin still reaches the plugin: the strict preflight\'s 400')
})

t.test('a token in the query string, in the oss-app-server shape, to an allowed origin', async (t) => {
  const h = await build(t, { config: withCors })
  const res = await h.app.inject({ method: 'POST', url: `/credentials?format=oss-app-server&Access_Token=${h.token()}`, headers: { origin: ALLOWED } })
  t.equal(res.statusCode, 400)
  t.equal(res.json().ErrorCode, 'STS_VENDING_TOKEN_IN_QUERY')
  assertCors(t, res.headers, 'token in query')
})

t.test('429 from the rate limit: the page can read Retry-After', async (t) => {
  const h = await build(t, { config: withCors })
  const token = h.token()
  for (let i = 0; i < 3; i++) t.equal((await h.vend(token, {}, { origin: ALLOWED })).statusCode, 200)
  const limited = await h.vend(token, {}, { origin: ALLOWED })
  t.equal(limited.statusCode, 429)
  t.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After')
  assertCors(t, limited.headers, '429')
})

t.test('503 for missing keys (the auth hook) carries the CORS headers', async (t) => {
  const jwks = await startJwksServer([])
  t.teardown(() => jwks.close())
  jwks.down = true
  const issuer = createDevIssuer()
  const h = await build(t, {
    issuer,
    config: (c) => withCors({ ...c, issuers: [{ name: 'app', issuer: issuer.issuer, audience: issuer.audience, jwksUri: jwks.url, algorithms: ['RS256'] }] })
  })
  const res = await h.vend(h.token(), {}, { origin: ALLOWED })
  t.equal(res.statusCode, 503)
  t.equal(res.json.code, 'STS_VENDING_KEYS_UNAVAILABLE')
  t.ok(Number(res.headers['retry-after']) >= 1)
  assertCors(t, res.headers, 'keys unavailable')
  const other = await h.vend(h.token(), {}, { origin: OTHER })
  t.equal(other.headers['access-control-allow-origin'], undefined)
})

t.test('503 under load carries the CORS headers', async (t) => {
  const h = await build(t, { config: (c) => withCors({ ...c, server: { maxEventLoopDelayMs: 50 } }) })
  const token = h.token()
  t.equal((await h.vend(token, {}, { origin: ALLOWED })).statusCode, 200)
  setLag(600)
  t.teardown(() => { setLag(0) })
  await sampled()
  const shed = await h.vend(token, {}, { origin: ALLOWED })
  t.equal(shed.statusCode, 503)
  t.equal(shed.json.code, 'STS_VENDING_OVERLOADED')
  assertCors(t, shed.headers, 'overloaded')
})

t.test('503 while shutting down (refused before the plugin\'s hooks) carries the CORS headers', async (t) => {
  const h = await build(t, { config: withCors })
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = h.app.server.address() as AddressInfo
  const token = h.token()
  const send = (origin: string): { rest: () => void, done: Promise<string> } => {
    const socket = connect(port, '127.0.0.1')
    let raw = ''
    socket.on('data', (d: Buffer) => { raw += d.toString() })
    socket.on('error', () => {})
    socket.write(`POST /credentials HTTP/1.1\r\nHost: x\r\nOrigin: ${origin}\r\nAuthorization: Bearer ${token}\r\n`)
    return { rest: () => socket.write('Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'), done: new Promise((resolve) => socket.on('close', () => resolve(raw))) }
  }
  // Requests whose headers are still arriving when the shutdown starts.
  const allowed = send(ALLOWED)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const closed = h.app.close()
  await new Promise((resolve) => setTimeout(resolve, 100))
  allowed.rest()
  const raw = await allowed.done
  t.match(raw, /^HTTP\/1\.1 503 /)
  t.match(raw, /STS_VENDING_SHUTTING_DOWN/)
  t.match(raw, new RegExp(`\r\naccess-control-allow-origin: ${ALLOWED}\r\n`, 'i'))
  t.match(raw, /\r\naccess-control-expose-headers: [^\r]*retry-after/i)
  t.match(raw, /\r\nvary: [^\r]*origin/i)
  await closed
})
