// The credentials-URI sidecar over real HTTP: which Host names it answers (a DNS
// rebinding page sends its own), the bounds on the token file and on the service's
// answer, a log line with the cause of every failure (never the token or the
// credentials), both URL forms, and the real command started, used and stopped.
import t from 'tap'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { pino } from 'pino'
import { MAX_ANSWER_BYTES, MAX_TOKEN_FILE_BYTES, startSidecar, type SidecarOptions } from '../../../src/cli/commands/sidecar.js'
import { spawnCli } from '../../helpers/cli.js'
import { b64 } from '../../helpers/jwt.js'

const TOKEN = `${b64({ alg: 'RS256', kid: 'k1' })}.${b64({ sub: 'system:serviceaccount:payments:api' })}.c2lnbmF0dXJlLW9mLXRoZS1wb2Q`
const SECRET = 'the-access-key-secret-from-the-service'
const GOOD = JSON.stringify({ Code: 'Success', AccessKeyId: 'STS.abc', AccessKeySecret: SECRET, SecurityToken: 'the-security-token', Expiration: '2030-01-01T00:00:00Z' })

/** What the helpers need of a tap test. */
interface T { teardown: (fn: () => unknown) => void, testdir: (fixture?: Record<string, string>) => string }

interface Seen { method?: string, url?: string, authorization?: string }

/** A stand-in for the service whose answer each test chooses. */
async function fakeService (t: T, handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(GOOD) }): Promise<{ url: string, seen: Seen[], handle: (h: typeof handler) => void }> {
  const seen: Seen[] = []
  let current = handler
  const server = createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization })
    req.resume()
    current(req, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, handle: (h) => { current = h } }
}

async function sidecar (t: T, opts: Partial<SidecarOptions> & { serviceUrl: string }): Promise<{ port: number, url: string, logs: () => string }> {
  const dir = t.testdir({ token: TOKEN + '\n' })
  let logs = ''
  const logger = pino({ level: 'info' }, { write: (line: string) => { logs += line } })
  const s = await startSidecar({ tokenFile: join(dir, 'token'), port: 0, logger, ...opts })
  t.teardown(() => s.close())
  return { port: Number(new URL(s.url).port), url: s.url, logs: () => logs }
}

/** GET with exactly this Host header (fetch would not let us choose it). */
async function get (port: number, host: string | undefined, path = '/credentials'): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', setHost: false, headers: host === undefined ? {} : { host } }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('answers only requests addressed to a loopback name with its port', async (t) => {
  const service = await fakeService(t)
  const { port, logs } = await sidecar(t, { serviceUrl: service.url })
  const allowed = [`127.0.0.1:${port}`, `localhost:${port}`, `LocalHost:${port}`, `[::1]:${port}`]
  for (const host of allowed) {
    const res = await get(port, host)
    t.equal(res.status, 200, host)
    t.equal(res.body, GOOD, `${host}: the service's answer, as is`)
  }
  t.equal(service.seen.length, allowed.length)

  const refused: Array<[string, string]> = [
    ['a rebinding page\'s own name', `attacker.example:${port}`],
    ['a lookalike name', `localhost.attacker.example:${port}`],
    ['a name ending like an address', `127.0.0.1.nip.io:${port}`],
    ['loopback without the port', '127.0.0.1'],
    ['loopback with another port', `127.0.0.1:${port === 1 ? 2 : 1}`],
    ['the port with a suffix', `127.0.0.1:${port}.attacker.example`],
    ['an empty Host', ''],
    ['the 0.0.0.0 address', `0.0.0.0:${port}`]
  ]
  for (const [what, host] of refused) {
    const res = await get(port, host)
    t.equal(res.status, 403, what)
    t.same(JSON.parse(res.body), { Code: 'Forbidden', Message: 'only loopback names are answered' }, what)
  }
  t.equal(service.seen.length, allowed.length, 'a refused request never reaches the service')
  t.match(logs(), /"host":"attacker\.example:\d+","msg":"refused a request for another Host/)

  // HTTP/1.0 needs no Host at all.
  const socket = connect(port, '127.0.0.1')
  socket.end('GET /credentials HTTP/1.0\r\n\r\n')
  let raw = ''
  socket.on('data', (d: Buffer) => { raw += d.toString() })
  await once(socket, 'close')
  t.match(raw, /^HTTP\/1\.1 403 /, 'no Host header: refused')
})

t.test('the token file: read on every request, bounded, its problems logged without its contents', async (t) => {
  const service = await fakeService(t)
  const s = await sidecar(t, { serviceUrl: service.url })
  const dir = mkdtempSync(join(tmpdir(), 'stsv-sidecar-token-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const rows: Array<{ desc: string, content: string | undefined, log: RegExp }> = [
    { desc: 'missing', content: undefined, log: /"msg":"the service-account token file cannot be opened \(ENOENT\)"/ },
    { desc: 'empty', content: ' \n', log: /"msg":"the service-account token file is empty"/ },
    { desc: 'too large', content: `${TOKEN}.${'x'.repeat(MAX_TOKEN_FILE_BYTES)}`, log: new RegExp(`"msg":"the service-account token file is larger than ${MAX_TOKEN_FILE_BYTES} bytes"`) }
  ]
  for (const [i, row] of rows.entries()) {
    const tokenFile = join(dir, `token-${i}`)
    if (row.content !== undefined) writeFileSync(tokenFile, row.content)
    let logged = ''
    const other = await startSidecar({ serviceUrl: service.url, tokenFile, port: 0, logger: pino({ level: 'info' }, { write: (line: string) => { logged += line } }) })
    const res = await get(Number(new URL(other.url).port), `127.0.0.1:${new URL(other.url).port}`)
    await other.close()
    t.equal(res.status, 503, row.desc)
    t.same(JSON.parse(res.body), { Code: 'TokenUnavailable', Message: 'the service-account token file cannot be used' }, row.desc)
    t.match(logged, row.log, `${row.desc}: the cause is logged`)
    t.notMatch(logged, TOKEN.slice(0, 20), `${row.desc}: never the token`)
  }
  t.equal(service.seen.length, 0, 'nothing unusable is sent to the service')

  // A usable file: its token (trimmed) is the Bearer credential.
  const res = await get(s.port, `127.0.0.1:${s.port}`)
  t.equal(res.status, 200)
  t.equal(service.seen[0]?.authorization, `Bearer ${TOKEN}`)
  t.notMatch(s.logs(), TOKEN.slice(0, 20), 'a success logs nothing of the token')
})

t.test('the service\'s answer is bounded, and every failure is logged with its cause', async (t) => {
  const service = await fakeService(t)
  const { port, logs } = await sidecar(t, { serviceUrl: service.url, timeoutMs: 1000 })
  const host = `127.0.0.1:${port}`

  service.handle((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(' '.repeat(300 * 1024) + GOOD) })
  const declared = await get(port, host)
  t.equal(declared.status, 502, 'an answer larger than the bound (with Content-Length) is refused')
  t.same(JSON.parse(declared.body).Code, 'BadAnswer')

  service.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    // Chunked, no length announced: the bound must count what arrives.
    const chunk = 'x'.repeat(8 * 1024)
    for (let i = 0; i < (MAX_ANSWER_BYTES / chunk.length) + 4; i++) res.write(chunk)
    res.end()
  })
  const streamed = await get(port, host)
  t.equal(streamed.status, 502, 'a streamed answer past the bound is cut off')
  t.match(logs(), new RegExp(`"msg":"sts-vending answered with more than ${MAX_ANSWER_BYTES} bytes"`))

  service.handle((_req, res) => { res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ Code: 'STS_VENDING_TOKEN_INVALID', Message: 'the token is not valid' })) })
  const refused = await get(port, host)
  t.equal(refused.status, 401, 'the service\'s refusal is passed on')
  t.match(logs(), /"status":401,"code":"STS_VENDING_TOKEN_INVALID","msg":"sts-vending refused the request"/)

  service.handle((req) => { req.socket.destroy() })
  const dropped = await get(port, host)
  t.equal(dropped.status, 502)
  t.match(logs(), /"cause":"UND_ERR_SOCKET","msg":"sts-vending could not be reached"/)

  service.handle(() => { /* never answers */ })
  const hung = await get(port, host)
  t.equal(hung.status, 502)
  t.match(logs(), /"cause":"UND_ERR_HEADERS_TIMEOUT","msg":"sts-vending could not be reached"/)

  const wrongPath = await get(port, host, '/other')
  t.equal(wrongPath.status, 404)
  t.match(logs(), /"method":"GET","path":"\/other","msg":"no such route"/)

  service.handle((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(GOOD) })
  t.equal((await get(port, host)).status, 200)
  t.notMatch(logs(), TOKEN.slice(0, 20), 'no token in any line')
  t.notMatch(logs(), SECRET, 'no credentials in any line')
  t.notMatch(logs(), 'the-security-token')
})

t.test('nothing listening behind --url: 502 and the connection error in the log', async (t) => {
  const closed = createServer()
  closed.listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const { port: deadPort } = closed.address() as AddressInfo
  closed.close()
  const { port, logs } = await sidecar(t, { serviceUrl: `http://127.0.0.1:${deadPort}` })
  const res = await get(port, `localhost:${port}`)
  t.equal(res.status, 502)
  t.same(JSON.parse(res.body), { Code: 'ServiceUnavailable', Message: 'sts-vending could not be reached' })
  t.match(logs(), /"cause":"ECONNREFUSED"/)
})

t.test('the service URL: its base or its credentials URL, with or without a path in front', async (t) => {
  const service = await fakeService(t)
  const rows: Array<[string, string]> = [
    [service.url, '/credentials?format=credentials-uri'],
    [`${service.url}/`, '/credentials?format=credentials-uri'],
    [`${service.url}/credentials`, '/credentials?format=credentials-uri'],
    [`${service.url}/sts/`, '/sts/credentials?format=credentials-uri'],
    [`${service.url}/sts/credentials`, '/sts/credentials?format=credentials-uri']
  ]
  for (const [serviceUrl, path] of rows) {
    const s = await sidecar(t, { serviceUrl })
    t.equal((await get(s.port, `127.0.0.1:${s.port}`)).status, 200, serviceUrl)
    t.same(service.seen.at(-1), { method: 'POST', url: path, authorization: `Bearer ${TOKEN}` }, serviceUrl)
  }
  await t.rejects(startSidecar({ serviceUrl: `${service.url}/?x=1`, tokenFile: '/dev/null', port: 0 }), /must not carry a query/)
  await t.rejects(startSidecar({ serviceUrl: 'http://user:pw@127.0.0.1/', tokenFile: '/dev/null', port: 0 }), /must not carry a user or password/)
})

t.test('the command: started, used by a client, refused for another Host, stopped by SIGTERM', async (t) => {
  const service = await fakeService(t)
  const dir = t.testdir({ token: TOKEN })
  const run = spawnCli(['sidecar', '--url', service.url, '--token-file', join(dir, 'token'), '--listen', '127.0.0.1:0'])
  t.teardown(() => { run.child.kill('SIGKILL') })
  while (!run.stdout().includes('\n')) {
    const exited = await Promise.race([once(run.child.stdout!, 'data').then(() => false), run.exit.then(() => true)])
    if (exited) break
  }
  const uri = /ALIBABA_CLOUD_CREDENTIALS_URI=(\S+)/.exec(run.stdout())?.[1]
  t.ok(uri !== undefined, `prints the URI: ${run.stdout()}${run.stderr()}`)
  if (uri === undefined) return
  const answer = await fetch(uri)
  t.equal(answer.status, 200)
  t.equal(await answer.text(), GOOD)
  t.same(service.seen.map((s) => s.url), ['/credentials?format=credentials-uri'], 'the base URL was completed')

  const port = Number(new URL(uri).port)
  t.equal((await get(port, `rebound.example:${port}`)).status, 403)
  run.child.kill('SIGTERM')
  const { code } = await run.exit
  t.equal(code, 0, 'SIGTERM stops it with exit 0')
  t.match(run.stdout(), /^\{.*"name":"sts-vending-sidecar".*"msg":"refused a request for another Host/m, 'failures are JSON lines on stdout')
  t.notMatch(run.stdout() + run.stderr(), TOKEN.slice(0, 20))
  t.notMatch(run.stdout() + run.stderr(), SECRET)
})

t.test('command usage errors exit 2', async (t) => {
  const { cli } = await import('../../helpers/cli.js')
  const rows: Array<[string, string[], RegExp]> = [
    ['no --url', ['--token-file', '/t'], /--url is required/],
    ['no --token-file', ['--url', 'http://s'], /--token-file is required/],
    ['a URL with a query', ['--url', 'http://s/?a=1', '--token-file', '/t'], /--url must not carry a query/],
    ['not loopback', ['--url', 'http://s', '--token-file', '/t', '--listen', '0.0.0.0:8099'], /--listen: the sidecar listens on loopback only, not 0\.0\.0\.0/],
    ['no port', ['--url', 'http://s', '--token-file', '/t', '--listen', '127.0.0.1'], /--listen must be <host>:<port>/],
    ['a port too large', ['--url', 'http://s', '--token-file', '/t', '--listen', '127.0.0.1:70000'], /--listen must be <host>:<port>/]
  ]
  for (const [what, argv, want] of rows) {
    const run = await cli(['sidecar', ...argv])
    t.equal(run.code, 2, what)
    t.match(run.stderr, want, what)
  }
})
