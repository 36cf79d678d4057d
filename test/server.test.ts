// The process shell: settings, exit codes, limits on a real socket, and graceful
// shutdown with requests in flight.
import t from 'tap'
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { build } from './helpers/build.js'
import { installSignalHandlers, readSettings } from '../src/server.js'

const SERVER = new URL('../dist/server.js', import.meta.url).pathname

t.test('settings from the environment', async (t) => {
  t.same(readSettings([], { STS_VENDING_CONFIG: '/c.yaml' }), { host: '0.0.0.0', port: 3000, logLevel: 'info', configPath: '/c.yaml' })
  t.equal(readSettings(['--config', '/x.yaml'], { STS_VENDING_CONFIG: '/c.yaml', PORT: '8080' }).configPath, '/x.yaml', '--config wins')
  t.throws(() => readSettings([], {}), { name: 'ConfigError', message: /STS_VENDING_CONFIG/ })
  t.throws(() => readSettings([], { STS_VENDING_CONFIG: '/c', PORT: 'eighty' }), { message: /PORT/ })
  t.throws(() => readSettings([], { STS_VENDING_CONFIG: '/c', LOG_LEVEL: 'loud' }), { message: /LOG_LEVEL/ })
})

async function runServer (env: Record<string, string>): Promise<{ code: number | null, stderr: string, stdout: string }> {
  return await new Promise((resolve) => {
    const child = spawn(process.execPath, [SERVER], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
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

t.test('SIGTERM: in-flight requests finish, later requests get 503, exit 0', async (t) => {
  const h = await build(t)
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = h.app.server.address() as AddressInfo
  const exits: number[] = []
  const exited = new Promise<void>((resolve) => {
    installSignalHandlers(h.app, 5000, (code) => { exits.push(code); resolve() })
  })
  t.teardown(() => { process.removeAllListeners('SIGTERM'); process.removeAllListeners('SIGINT') })
  h.emulator.inject({ kind: 'slow', delayMs: 600 })
  const token = h.token()
  const open = (): { write: (s: string) => void, done: Promise<string> } => {
    const socket = connect(port, '127.0.0.1')
    let raw = ''
    socket.on('data', (d: Buffer) => { raw += d.toString() })
    socket.on('error', () => {})
    return { write: (s) => socket.write(s), done: new Promise((resolve) => socket.on('close', () => resolve(raw))) }
  }
  // A slow credentials request in flight, and two requests whose headers are still
  // arriving when the signal comes.
  const inflight = open()
  inflight.write(`POST /credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`)
  const ready = open()
  ready.write('GET /readyz HTTP/1.1\r\nHost: x\r\n')
  const late = open()
  late.write(`POST /credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n`)
  await new Promise((resolve) => setTimeout(resolve, 200))
  process.emit('SIGTERM', 'SIGTERM')
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
  h.secret(body.accessKeySecret ?? '')
  h.secret(body.securityToken ?? '')
  await exited
  const refused = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1', () => resolve('connected'))
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
  })
  t.equal(refused, 'ECONNREFUSED', 'new connections are refused after close')
  t.same(exits, [0], 'exit 0 once in-flight work is done')
  t.equal(h.emulator.callCount, 1)
})

t.test('a second signal forces exit', async (t) => {
  const h = await build(t)
  const exits: number[] = []
  h.emulator.inject({ kind: 'hang' })
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = h.app.server.address() as AddressInfo
  installSignalHandlers(h.app, 60_000, (code) => { exits.push(code) })
  t.teardown(() => { process.removeAllListeners('SIGTERM'); process.removeAllListeners('SIGINT') })
  request(`http://127.0.0.1:${port}/credentials`, { method: 'POST', headers: { authorization: `Bearer ${h.token()}`, 'content-type': 'application/json' }, body: '{}' }).catch(() => {})
  await new Promise((resolve) => setTimeout(resolve, 100))
  process.emit('SIGTERM', 'SIGTERM')
  process.emit('SIGINT', 'SIGINT')
  t.same(exits, [1], 'forced exit, non-zero')
})
