// A Redis that cannot be used says why, loudly and soon: one `error` line naming the
// cause within 5 s of start (authentication, TLS, unknown host), repeated at most once
// a minute while it lasts, and the state goes down with it. Real servers only.
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { createRedis, redisFailureCause, redisStatus } from '../../src/redis/connection.js'
import { standalone, startRedis, freePort } from '../helpers/redis.js'
import { stringify } from 'yaml'
import { createDevIssuer } from '../../devkit/dev/issuer.js'
import { baseConfig } from '../helpers/build.js'

/** A TLS listener with a fresh self-signed certificate (openssl): the handshake fails verification. */
async function selfSignedTlsServer (t: { teardown: (fn: () => unknown) => void }): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-tls-'))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' })
  const server = createTlsServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }, (socket) => socket.end())
  server.on('tlsClientError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close(); rmSync(dir, { recursive: true, force: true }) })
  return (server.address() as AddressInfo).port
}

interface Line { obj: Record<string, unknown>, msg: string }

function capture (): { lines: Line[], log: { error: (obj: object, msg: string) => void, info: (obj: object, msg: string) => void } } {
  const lines: Line[] = []
  return {
    lines,
    log: {
      error: (obj, msg) => lines.push({ obj: { level: 'error', ...obj }, msg }),
      info: (obj, msg) => lines.push({ obj: { level: 'info', ...obj }, msg })
    }
  }
}

async function firstError (lines: Line[], withinMs: number): Promise<Line | undefined> {
  const end = Date.now() + withinMs
  while (Date.now() < end) {
    const e = lines.find((l) => l.obj.level === 'error')
    if (e !== undefined) return e
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return undefined
}

t.test('a wrong password: one error line naming authentication within 5 s, state down, once a minute', async (t) => {
  const server = await startRedis(t, { args: ['--requirepass', 'right-password-123'] })
  const { lines, log } = capture()
  const states: boolean[] = []
  let clock = 0
  const redis = createRedis({ settings: standalone(server.url, { password: 'wrong-password-456' }), log, onState: (up) => states.push(up), now: () => clock })
  t.teardown(() => redis.disconnect())
  const started = Date.now()
  const line = await firstError(lines, 5000)
  t.ok(line !== undefined, `an error line within 5 s (${Date.now() - started} ms)`)
  t.match(line?.msg, /^redis down \(authentication failed/)
  t.match(line?.obj, { redis: 'down', cause: /authentication failed/ })
  t.notMatch(JSON.stringify(lines), /password-(123|456)/, 'no password in any line')
  t.same(redisStatus(redis).up, false)
  t.match(redisStatus(redis).cause, /authentication failed/)
  t.notOk(states.includes(true), 'never up')
  // The client keeps trying; the line is not repeated within the minute.
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.equal(lines.filter((l) => l.obj.level === 'error').length, 1, 'one line while it lasts')
  clock += 60_000
  const more = Date.now() + 3000
  while (Date.now() < more && lines.filter((l) => l.obj.level === 'error').length < 2) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(lines.filter((l) => l.obj.level === 'error').length, 2, 'again a minute later')
})

t.test('the right password: up, one info line', async (t) => {
  const server = await startRedis(t, { args: ['--requirepass', 'right-password-123'] })
  const { lines, log } = capture()
  const redis = createRedis({ settings: standalone(server.url, { password: 'right-password-123' }), log })
  t.teardown(() => redis.disconnect())
  await new Promise((resolve) => redis.once('ready', resolve))
  t.same(redisStatus(redis), { up: true, cause: undefined })
  t.same(lines.map((l) => l.obj.level), ['info'])
})

t.test('an ACL user (usernameEnv): connects as that user; a wrong one is an authentication failure', async (t) => {
  const server = await startRedis(t)
  await server.admin.call('ACL', 'SETUSER', 'sts-app', 'on', '>app-password-789', '~stsv:*', '&*', '+@all')
  const ok = createRedis({ settings: standalone(server.url, { username: 'sts-app', password: 'app-password-789' }) })
  t.teardown(() => ok.disconnect())
  await new Promise((resolve) => ok.once('ready', resolve))
  t.equal(await ok.call('ACL', 'WHOAMI'), 'sts-app')
  const { lines, log } = capture()
  const wrong = createRedis({ settings: standalone(server.url, { username: 'sts-app', password: 'not-it' }), log })
  t.teardown(() => wrong.disconnect())
  t.match((await firstError(lines, 5000))?.obj.cause, /^authentication failed/)
})

t.test('an unknown host and a TLS handshake with a plain server: named', async (t) => {
  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ['unknown host', async () => 'redis://no-such-host.invalid:6379', /^unknown host$/],
    ['TLS to a plain server', async () => `rediss://127.0.0.1:${(await startRedis(t)).port}`, /^TLS handshake timed out/],
    ['TLS with a certificate nobody signed', async () => `rediss://127.0.0.1:${await selfSignedTlsServer(t)}`, /^TLS failed \(the server certificate is not trusted: check redis\.tlsCaEnv\)$/],
    ['nothing listening', async () => `redis://127.0.0.1:${await freePort()}`, /^connection refused$/]
  ]
  for (const [desc, url, cause] of cases) {
    const { lines, log } = capture()
    const u = await url()
    const redis = createRedis({ settings: standalone(u, { tls: u.startsWith('rediss:'), commandTimeoutMs: 500 }), log })
    const line = await firstError(lines, 5000)
    redis.disconnect()
    t.match(line?.obj.cause, cause, `${desc}: ${String(line?.obj.cause)}`)
  }
})

t.test('causes in plain words, never the reply text', async (t) => {
  t.match(redisFailureCause(Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), {})), /^authentication failed/)
  t.match(redisFailureCause(new Error('NOAUTH Authentication required.')), /^authentication failed/)
  t.equal(redisFailureCause(Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' })), 'unknown host')
  t.equal(redisFailureCause(Object.assign(new Error('x'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' })), 'TLS failed')
  t.equal(redisFailureCause(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })), 'TLS failed (the server certificate is not trusted: check redis.tlsCaEnv)')
  t.equal(redisFailureCause(Object.assign(new Error('unable to get local issuer certificate'), { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' })), 'TLS failed (the server certificate is not trusted: check redis.tlsCaEnv)')
  t.equal(redisFailureCause(Object.assign(new Error('Hostname/IP does not match'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' })), 'TLS failed (the server certificate does not name this host)')
  t.equal(redisFailureCause(new Error('some reply with secret text')), 'connection error')
})

t.test('the server with a wrong Redis password: an error line naming authentication within 5 s, the start-up line says redis: down, stsv_redis_up 0', async (t) => {
  const server = await startRedis(t, { args: ['--requirepass', 'right-password-123'] })
  const issuer = createDevIssuer()
  const config = { ...baseConfig(issuer, 'http://127.0.0.1:1') as Record<string, any> }
  config.redis = { url: server.url, passwordEnv: 'STS_VENDING_REDIS_PASSWORD' }
  config.cache = { ...config.cache, encryptionKeysEnv: 'STS_VENDING_CACHE_KEYS' }
  config.sts = { ...config.sts, fleetMaxCallsPerSecond: 10 }
  const dir = mkdtempSync(join(tmpdir(), 'stsv-redis-auth-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'c.yaml'), stringify(config))
  const started = Date.now()
  const child = spawn(process.execPath, [new URL('../../dist/server.js', import.meta.url).pathname], {
    env: { PATH: process.env.PATH ?? '', STS_VENDING_CONFIG: join(dir, 'c.yaml'), PORT: '0', HOST: '127.0.0.1', ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-test', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'not-a-real-secret', STS_VENDING_CACHE_KEYS: randomBytes(32).toString('base64'), STS_VENDING_REDIS_PASSWORD: 'wrong-password-456' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: Array<Record<string, any>> = []
  let buf = ''
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString()
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      try { lines.push({ ...JSON.parse(line), seenAfterMs: Date.now() - started }) } catch {}
    }
  })
  const end = Date.now() + 8000
  while (Date.now() < end && !(lines.some((l) => l.msg === 'sts-vending started') && lines.some((l) => l.level === 50))) await new Promise((resolve) => setTimeout(resolve, 50))
  const error = lines.find((l) => l.level === 50)
  t.ok(error !== undefined && error.seenAfterMs < 5000, `an error line within 5 s of start (${String(error?.seenAfterMs)} ms)`)
  t.match(error?.msg, /^redis down \(authentication failed/)
  const startedLine = lines.find((l) => l.msg === 'sts-vending started')
  t.match(startedLine?.cache, { mode: 'memory', redis: /^down \(authentication failed/ }, 'the start-up line says redis: down (<cause>)')
  t.notMatch(JSON.stringify(lines), /password-(123|456)/, 'no password in the log')
  const metrics = await (await fetch(`${String(startedLine?.listening)}/metrics`)).text()
  t.match(metrics, /^stsv_redis_up 0$/m)
  t.match(metrics, /^stsv_build_info\{version="[^"]+"\} 1$/m)
  t.equal(lines.filter((l) => l.level === 50 && /^redis down/.test(String(l.msg))).length, 1, 'one line, not one per reconnect')
})
