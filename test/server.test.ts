// The process shell, as the image runs it: `node dist/server.js` in a child process.
// Settings and exit codes, limits on a real socket, graceful shutdown with requests in
// flight, crashes, a log reader that goes away, --version and the start-up line.
import t, { type Test } from 'tap'
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { connect, createServer } from 'node:net'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { request } from 'undici'
import { baseConfig, build, ROLE_ARN } from './helpers/build.js'
import { readSettings } from '../src/server.js'
import { createDevIssuer } from '../devkit/dev/issuer.js'
import { startStsEmulator, type StsEmulator } from '../devkit/emulator/sts.js'

// Each case starts a node process; on a loaded CI machine that alone can take seconds.
t.setTimeout(300_000)

const SERVER = new URL('../dist/server.js', import.meta.url).pathname
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

t.test('settings from the environment', async (t) => {
  t.same(readSettings([], { STS_VENDING_CONFIG: '/c.yaml' }), { host: '0.0.0.0', port: 3000, logLevel: 'info', configPath: '/c.yaml' })
  t.equal(readSettings(['--config', '/x.yaml'], { STS_VENDING_CONFIG: '/c.yaml', PORT: '8080' }).configPath, '/x.yaml', '--config wins')
  t.throws(() => readSettings([], {}), { name: 'ConfigError', message: /STS_VENDING_CONFIG/ })
  t.throws(() => readSettings([], { STS_VENDING_CONFIG: '/c', PORT: 'eighty' }), { message: /PORT/ })
  t.throws(() => readSettings([], { STS_VENDING_CONFIG: '/c', LOG_LEVEL: 'loud' }), { message: /LOG_LEVEL/ })
})

async function runServer (env: Record<string, string>, args: string[] = []): Promise<{ code: number | null, stderr: string, stdout: string }> {
  return await new Promise((resolve) => {
    const child = spawn(process.execPath, [SERVER, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    let stdout = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.on('exit', (code) => resolve({ code, stderr, stdout }))
  })
}

t.test('a bad config exits 2 with one line naming the problem, before listening', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-server-'))
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, 'sts: {}\nissuers: []\ngrants: []\nbogus: 1\n')
  const r1 = await runServer({ STS_VENDING_CONFIG: bad, PORT: '0' })
  t.equal(r1.code, 2)
  t.match(r1.stderr, /^sts-vending: config: .+\n$/, 'one line')
  t.equal(r1.stdout, '', 'nothing half-started')
  const r2 = await runServer({ STS_VENDING_CONFIG: join(dir, 'missing.yaml'), PORT: '0' })
  t.equal(r2.code, 2)
  t.match(r2.stderr, /cannot read/)
  const r3 = await runServer({ PORT: '0' })
  t.equal(r3.code, 2)
})

t.test('--version prints the package version and exits 0, without a config', async (t) => {
  const r = await runServer({}, ['--version'])
  t.equal(r.code, 0)
  t.equal(r.stdout, `${VERSION}\n`)
  t.equal(r.stderr, '')
})

t.test('--help prints the usage and exits 0, without a config', async (t) => {
  for (const flag of ['--help', '-h']) {
    const r = await runServer({}, [flag])
    t.equal(r.code, 0, flag)
    t.equal(r.stderr, '', flag)
    for (const word of ['--config', 'STS_VENDING_CONFIG', 'PORT', 'HOST', 'LOG_LEVEL', '--version']) t.match(r.stdout, word, `${flag}: names ${word}`)
  }
})

t.test('limits on a real socket: oversized headers and slow clients', async (t) => {
  const h = await build(t, { config: (c) => ({ ...c, server: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } }) })
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = h.app.server.address() as AddressInfo
  const big = await request(`http://127.0.0.1:${port}/credentials`, { method: 'POST', headers: { authorization: `Bearer ${'a'.repeat(20_000)}` } })
  t.equal(big.statusCode, 431, '20 KB of headers: 431 before any crypto')
  await big.body.dump()

  const closedAfter = await new Promise<number>((resolve) => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1', () => { socket.write('POST /credentials HTTP/1.1\r\nHost: x\r\n') })
    socket.on('data', () => {})
    socket.on('close', () => resolve(Date.now() - started))
    socket.on('error', () => {})
  })
  t.ok(closedAfter < 4000, `a slow-header client is cut off (${closedAfter} ms)`)
  t.equal(h.emulator.callCount, 0)
})

// --- dist/server.js as a child process, on a real STS emulator --------------------

interface Child {
  proc: ChildProcessByStdio<null, Readable, Readable>
  port: number
  url: string
  emulator: StsEmulator
  /** stdout and stderr as read so far. */
  out: () => string
  err: () => string
  /** Log lines from stdout, parsed. */
  lines: () => Array<Record<string, any>>
  token: (sub?: string) => string
  secrets: string[]
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>
}

async function freePort (): Promise<number> {
  return await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })
}

async function startChild (t: Test, opts: { server?: Record<string, unknown>, env?: Record<string, string>, nodeArgs?: string[] } = {}): Promise<Child> {
  const accessKeyId = `test${randomBytes(6).toString('hex')}`
  const accessKeySecret = randomBytes(24).toString('base64url')
  const emulator = await startStsEmulator({ accessKeys: { [accessKeyId]: accessKeySecret }, roles: { [ROLE_ARN]: { maxSessionDuration: 43_200 } } })
  t.teardown(() => emulator.close())
  const issuer = createDevIssuer()
  const dir = mkdtempSync(join(tmpdir(), 'stsv-server-'))
  const configPath = join(dir, 'config.yaml')
  writeFileSync(configPath, JSON.stringify(baseConfig(issuer, emulator.url, { server: { shutdownGraceMs: 5000, ...opts.server } }))) // JSON is YAML
  const port = await freePort()
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), SERVER], {
    env: {
      PATH: process.env.PATH ?? '',
      STS_VENDING_CONFIG: configPath,
      PORT: String(port),
      HOST: '127.0.0.1',
      ALIBABA_CLOUD_ACCESS_KEY_ID: accessKeyId,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: accessKeySecret,
      ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true',
      ...opts.env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() }))
  })
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 15_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited ${proc.exitCode}: ${err}`)
    const ok = await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false)
    if (ok) break
    if (Date.now() > deadline) throw new Error(`server not ready: ${err}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const secrets = [accessKeySecret]
  return {
    proc,
    port,
    url,
    emulator,
    out: () => out,
    err: () => err,
    lines: () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>),
    token: (sub = 'alice') => { const tok = issuer.mint({ sub }); secrets.push(tok); return tok },
    secrets,
    exited
  }
}

function noSecrets (t: Test, c: Child): void {
  const text = c.out() + c.err()
  t.notOk(c.secrets.some((s) => text.includes(s)), 'no token or AccessKey secret in the output')
  t.notMatch(text, /Bearer [A-Za-z0-9]/)
}

function rawSocket (port: number): { write: (s: string) => void, done: Promise<string> } {
  const socket = connect(port, '127.0.0.1')
  let raw = ''
  socket.on('data', (d: Buffer) => { raw += d.toString() })
  socket.on('error', () => {})
  return { write: (s) => socket.write(s), done: new Promise((resolve) => socket.on('close', () => resolve(raw))) }
}

t.test('the start-up line says who is running, and never a secret', async (t) => {
  const c = await startChild(t)
  const started = c.lines().filter((l) => l.msg === 'sts-vending started')
  t.equal(started.length, 1, 'one start-up line')
  t.match(started[0], {
    level: 30,
    version: VERSION,
    listening: `http://127.0.0.1:${c.port}`,
    issuers: ['app'],
    grants: ['uploads'],
    cache: { mode: 'memory', maxEntries: 1000 },
    upstreamCredential: 'access_key'
  })
  c.proc.kill('SIGTERM')
  t.equal((await c.exited).code, 0)
  noSecrets(t, c)
})

t.test('SIGTERM: in-flight requests finish, later requests get 503, exit 0', async (t) => {
  const c = await startChild(t)
  // One issuance first: the STS SDK loads on the first AssumeRole (or 500 ms after
  // listening), and its import holds the event loop for a moment, which would blur the
  // order in which the signal and the requests below are seen.
  const warm = await request(`${c.url}/credentials`, { method: 'POST', headers: { authorization: `Bearer ${c.token('warm')}`, 'content-type': 'application/json' }, body: '{}' })
  t.equal(warm.statusCode, 200)
  const warmBody = await warm.body.json() as Record<string, string>
  c.secrets.push(warmBody.accessKeySecret ?? '', warmBody.securityToken ?? '')
  c.emulator.inject({ kind: 'slow', delayMs: 800 })
  const token = c.token()
  // A slow credentials request in flight, and two requests whose headers are still
  // arriving when the signal comes.
  const inflight = rawSocket(c.port)
  inflight.write(`POST /credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`)
  const ready = rawSocket(c.port)
  ready.write('GET /readyz HTTP/1.1\r\nHost: x\r\n')
  const late = rawSocket(c.port)
  late.write(`POST /credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n`)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const signalled = Date.now()
  c.proc.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 100))
  ready.write('\r\n')
  late.write('Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}')

  const readyRaw = await ready.done
  t.match(readyRaw, /^HTTP\/1\.1 503 /, 'readiness is 503 once closing')
  t.match(readyRaw, /"failing":\["closing"\]/)
  const lateRaw = await late.done
  t.match(lateRaw, /^HTTP\/1\.1 503 /, 'a request after SIGTERM gets 503')
  t.match(lateRaw, /connection: close/i, 'with Connection: close')
  t.match(lateRaw, /STS_VENDING_SHUTTING_DOWN/)
  const first = await inflight.done
  t.match(first, /^HTTP\/1\.1 200 /, 'the in-flight request completed with 200')
  const body = JSON.parse(first.slice(first.indexOf('\r\n\r\n') + 4)) as Record<string, string>
  t.match(body.accessKeyId, /^STS\./)
  c.secrets.push(body.accessKeySecret ?? '', body.securityToken ?? '')
  const { code, at } = await c.exited
  t.equal(code, 0, 'exit 0 once in-flight work is done')
  t.ok(at - signalled < 5000, `within the grace period (${at - signalled} ms)`)
  const refused = await new Promise<string>((resolve) => {
    const s = connect(c.port, '127.0.0.1', () => resolve('connected'))
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
  })
  t.equal(refused, 'ECONNREFUSED', 'new connections are refused after close')
  t.equal(c.emulator.callCount, 2, 'the warm-up issuance and the in-flight one')
  t.ok(c.lines().some((l) => l.msg === 'shutting down: finishing in-flight requests' && l.signal === 'SIGTERM'))
  noSecrets(t, c)
})

t.test('a second signal forces exit 1 at once', async (t) => {
  const c = await startChild(t, { server: { shutdownGraceMs: 60_000 } })
  c.emulator.inject({ kind: 'hang' })
  request(`${c.url}/credentials`, { method: 'POST', headers: { authorization: `Bearer ${c.token()}`, 'content-type': 'application/json' }, body: '{}' }).catch(() => {})
  await new Promise((resolve) => setTimeout(resolve, 200))
  c.proc.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 200))
  const signalled = Date.now()
  c.proc.kill('SIGINT')
  const { code, at } = await c.exited
  t.equal(code, 1, 'forced exit, non-zero')
  t.ok(at - signalled < 3000, `promptly (${at - signalled} ms)`)
  t.ok(c.lines().some((l) => l.msg === 'second signal: exiting now'))
})

t.test('the grace period ends a shutdown that in-flight work would hold: exit 1', async (t) => {
  const c = await startChild(t, { server: { shutdownGraceMs: 1000 } })
  c.emulator.inject({ kind: 'hang' })
  request(`${c.url}/credentials`, { method: 'POST', headers: { authorization: `Bearer ${c.token()}`, 'content-type': 'application/json' }, body: '{}' }).catch(() => {})
  await new Promise((resolve) => setTimeout(resolve, 200))
  const signalled = Date.now()
  c.proc.kill('SIGTERM')
  const { code, at } = await c.exited
  t.equal(code, 1)
  t.ok(at - signalled >= 900 && at - signalled < 4000, `after the grace period (${at - signalled} ms)`)
  t.ok(c.lines().some((l) => l.msg === 'grace period over: exiting with requests still in flight'))
})

// A preloaded module that throws or rejects when the test sends SIGWINCH: a crash in
// the middle of serving, without a test-only hook in the product.
const CRASHES = [
  { description: 'an uncaught exception', code: 'process.on("SIGWINCH", () => { setImmediate(() => { throw new Error("boom-uncaught") }) })', message: 'boom-uncaught' },
  { description: 'an unhandled rejection', code: 'process.on("SIGWINCH", () => { void Promise.reject(new Error("boom-rejected")) })', message: 'boom-rejected' }
]
for (const crash of CRASHES) {
  t.test(`${crash.description} is logged, the app closes, and the process exits 1`, async (t) => {
    const c = await startChild(t, { nodeArgs: ['--import', `data:text/javascript,${encodeURIComponent(crash.code)}`] })
    t.equal((await request(`${c.url}/healthz`)).statusCode, 200)
    c.proc.kill('SIGWINCH')
    const { code } = await c.exited
    t.equal(code, 1)
    const fatal = c.lines().find((l) => l.level === 60)
    t.match(fatal, { msg: 'uncaught exception or unhandled rejection: closing', err: { message: crash.message } })
    t.ok(c.lines().some((l) => l.msg === 'closed'), 'closed before exiting')
  })
}

t.test('stdout\'s reader gone (EPIPE): serving goes on and SIGTERM still ends within the grace period', async (t) => {
  const c = await startChild(t, { server: { shutdownGraceMs: 3000 } })
  // The log collector goes away: nothing reads stdout any more.
  c.proc.stdout.destroy()
  await new Promise((resolve) => setTimeout(resolve, 100))
  for (let i = 0; i < 5; i++) {
    const started = Date.now()
    const res = await request(`${c.url}/credentials`, { method: 'POST', headers: { authorization: `Bearer ${c.token()}`, 'content-type': 'application/json' }, body: '{}' })
    t.equal(res.statusCode, 200, `request ${i + 1} answered with stdout broken`)
    await res.body.dump()
    // A write that blocked would hold the answer for good: the bound only catches that,
    // not a slow machine.
    t.ok(Date.now() - started < 10_000, 'without blocking')
  }
  const signalled = Date.now()
  c.proc.kill('SIGTERM')
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), 10_000)
  const { code, signal, at } = await c.exited
  clearTimeout(timer)
  t.equal(signal, null, 'not killed')
  // Exit 0 is the grace timer's verdict: had it fired first, the exit would be 1.
  t.equal(code, 0, `exit 0: within shutdownGraceMs (${at - signalled} ms)`)
})

t.test('LOG_LEVEL=error: the audit line of an issuance is still written, without secrets', async (t) => {
  const c = await startChild(t, { env: { LOG_LEVEL: 'error' } })
  const res = await request(`${c.url}/credentials`, { method: 'POST', headers: { authorization: `Bearer ${c.token('bob')}`, 'content-type': 'application/json' }, body: '{}' })
  t.equal(res.statusCode, 200)
  const body = await res.body.json() as Record<string, string>
  c.secrets.push(body.accessKeySecret ?? '', body.securityToken ?? '', body.accessKeyId ?? '')
  c.proc.kill('SIGTERM')
  t.equal((await c.exited).code, 0)
  const lines = c.lines()
  const audit = lines.filter((l) => l.log === 'audit')
  t.equal(audit.length, 1, 'one audit line for one issuance')
  t.match(audit[0], { event: 'credentials.issued', subject: 'bob', grant: 'uploads', accessKeyIdPrefix: (body.accessKeyId ?? '').slice(0, 12) })
  t.same(lines.filter((l) => l.log !== 'audit'), [], 'no other line at LOG_LEVEL=error')
  noSecrets(t, c)
})
