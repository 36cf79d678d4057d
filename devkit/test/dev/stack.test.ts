// Issue 24 item 5: the dev stack for a user's own page and own config, and what
// `npm run dev` / `npm run emulators` print (run as a user runs them, through tsx).
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { pino } from 'pino'
import OSS from 'ali-oss'
import { createSigner } from 'fast-jwt'
import { parseConfig } from '../../../src/config/load.js'
import { startDevStack } from '../../dev/stack.js'
import { parseOrigin } from '../../dev/emulators.js'
import { TSX_NODE_ARGS } from '../../../test/helpers/tsx.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const PAGE = 'http://localhost:5173'
const SECRET = 'a-development-secret-of-at-least-32-bytes'

t.test('--allow-origin: the service and the OSS emulator both let that page in', async (t) => {
  const stack = await startDevStack({ logger: pino({ level: 'silent' }), allowOrigins: [PAGE] })
  t.teardown(stack.close)
  t.strictSame(stack.config.cors.origins, [PAGE])
  const pre = await stack.app.inject({ method: 'OPTIONS', url: '/credentials', headers: { origin: PAGE, 'access-control-request-method': 'POST' } })
  t.equal(pre.statusCode, 204)
  t.equal(pre.headers['access-control-allow-origin'], PAGE)
  const other = await stack.app.inject({ method: 'OPTIONS', url: '/credentials', headers: { origin: 'http://localhost:5174', 'access-control-request-method': 'POST' } })
  t.equal(other.statusCode, 403, 'another origin is still refused')
  const oss = await fetch(`${stack.oss.url}/${stack.oss.bucket}/users/alice/x`, { method: 'OPTIONS', headers: { origin: PAGE, 'access-control-request-method': 'PUT' } })
  t.equal(oss.status, 200, 'the OSS emulator answers the preflight')
  t.equal(oss.headers.get('access-control-allow-origin'), PAGE)
})

t.test('origins are checked: scheme://host[:port] only', async (t) => {
  t.equal(parseOrigin('http://localhost:5173'), 'http://localhost:5173')
  t.equal(parseOrigin('http://localhost:5173/'), 'http://localhost:5173')
  t.throws(() => parseOrigin('localhost:5173'), /not an origin|not a URL/)
  t.throws(() => parseOrigin('http://localhost:5173/app'), /not an origin/)
  t.throws(() => parseOrigin('file:///tmp/x.html'), /not an origin/)
})

t.test('--config: the user\'s issuers and grants, on the emulators, one OSS per bucket', async (t) => {
  const config = parseConfig({
    issuers: [{ name: 'backend', issuer: 'https://backend.example.com', audience: 'sts-vending', secretEnv: 'MY_JWT_SECRET', algorithms: ['HS256'] }],
    grants: [
      { name: 'photos', issuers: ['backend'], roleArn: 'acs:ram::1234567890123456:role/photos', bucket: 'my-photos', region: 'cn-shanghai', prefix: 'p/{sub}/', actions: ['list', 'read', 'write'], durationSeconds: 7200 },
      { name: 'docs', issuers: ['backend'], roleArn: 'acs:ram::1234567890123456:role/docs', bucket: 'my-docs', region: 'cn-beijing', prefix: 'd/{sub}/', actions: ['read', 'write'], durationSeconds: 3600 }
    ],
    cors: { origins: ['https://app.example.com'] },
    redis: { url: 'redis://127.0.0.1:1' },
    cache: { encryptionKeysEnv: 'MY_CACHE_KEYS' },
    sts: { fleetMaxCallsPerSecond: 50 }
  })
  const stack = await startDevStack({ logger: pino({ level: 'silent' }), config, env: { MY_JWT_SECRET: SECRET }, allowOrigins: [PAGE] })
  t.teardown(stack.close)
  t.ok(stack.ownConfig)
  t.strictSame(stack.osses.map((o) => o.bucket), ['my-photos', 'my-docs'])
  t.equal(stack.config.sts.endpoint, stack.sts.url, 'STS is the emulator')
  t.equal(stack.config.redis, undefined, 'the user\'s Redis is left out of a local run')
  t.strictSame(stack.config.cors.origins, ['https://app.example.com', PAGE], 'the config\'s origins and --allow-origin')

  const now = Math.floor(Date.now() / 1000)
  const token = createSigner({ key: SECRET, algorithm: 'HS256' })({ iss: 'https://backend.example.com', aud: 'sts-vending', sub: 'dana', iat: now, exp: now + 600 })
  for (const [grant, bucket] of [['photos', 'my-photos'], ['docs', 'my-docs']] as const) {
    const res = await stack.app.inject({ method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify({ grant }) })
    t.equal(res.statusCode, 200, `${grant}: vended`)
    const c = res.json()
    const oss = stack.osses.find((o) => o.bucket === bucket)!
    t.equal(c.endpoint, oss.url, `${grant}: the grant's OSS endpoint is its bucket's emulator`)
    const client = new OSS({ region: c.ossRegion, endpoint: c.endpoint, bucket: c.bucket, accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, stsToken: c.securityToken })
    await client.put(`${c.prefix}hello.txt`, Buffer.from('hi'))
    t.ok(oss.object(`${c.prefix}hello.txt`) !== undefined, `${grant}: uploaded into the caller's directory`)
    const outside = await client.put('elsewhere/hello.txt', Buffer.from('hi')).then(() => 'ok', (err: { code?: string }) => err.code)
    t.equal(outside, 'AccessDenied', `${grant}: the session policy still narrows`)
  }
  const long = await stack.app.inject({ method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify({ grant: 'photos', durationSeconds: 7200 }) })
  t.equal(long.statusCode, 200, 'the emulated role allows the grant\'s longest duration')
})

/** Runs a devkit script with tsx until `until` appears in its output (then SIGINT), or it exits. */
async function runScript (script: string, args: string[], env: Record<string, string>, until?: RegExp): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [...TSX_NODE_ARGS, script, ...args], { cwd: ROOT, env: { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); if (until?.test(stdout) === true) child.kill('SIGINT') })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

t.test('npm run dev writes the alice token to a file, prints an export line and a verify line that uses it', async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'stsv-dev-'))
  const r = await runScript('devkit/dev.ts', ['--allow-origin', PAGE], { TMPDIR: tmp, PORT: '0' }, /Check the credentials end to end.*\n/)
  const file = join(tmp, 'sts-vending-dev', 'alice.jwt')
  t.match(r.stdout, `is in ${file}`, 'the path is printed')
  t.match(r.stdout, `export JWT="$(cat ${file})"`, 'an export line')
  t.match(r.stdout, new RegExp(`verify --url http://127\\.0\\.0\\.1:\\d+ --token-file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`), 'verify reads that file')
  t.match(r.stdout, `Pages on ${PAGE} may call it`)
  const token = (await readFile(file, 'utf8')).trim()
  t.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/, 'the file holds a JWT')
  t.equal((await stat(file)).mode & 0o777, 0o600, 'readable by its owner only')
})

t.test('a port in use prints a PORT=… hint; a bad origin is a usage error', async (t) => {
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { busy.close() })
  const port = (busy.address() as AddressInfo).port
  const r = await runScript('devkit/dev.ts', [], { PORT: String(port) })
  t.equal(r.code, 1)
  t.match(r.stderr, `port ${port} is in use`)
  t.match(r.stderr, `PORT=${port + 1} npm run dev`)
  const bad = await runScript('devkit/dev.ts', ['--allow-origin', 'localhost:5173'], { PORT: '0' })
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--allow-origin: not an origin/)
  const envBad = await runScript('devkit/dev.ts', [], { PORT: '0', STS_VENDING_DEV_ORIGINS: 'http://a.example, nope' })
  t.equal(envBad.code, 2, 'STS_VENDING_DEV_ORIGINS is checked the same way')
})

t.test('npm run emulators prints the endpoints and what points the server and provision at them', async (t) => {
  const r = await runScript('devkit/emulators.ts', ['--sts-port', '0', '--ram-port', '0', '--oss-port', '0'], {}, /Ctrl-C stops them/)
  t.match(r.stdout, /STS emulator {2}http:\/\/127\.0\.0\.1:\d+/)
  t.match(r.stdout, /RAM emulator {2}http:\/\/127\.0\.0\.1:\d+/)
  t.match(r.stdout, /OSS emulator {2}http:\/\/127\.0\.0\.1:\d+ {3}bucket dev-bucket/)
  t.match(r.stdout, /export ALIBABA_CLOUD_ACCESS_KEY_ID=dev[0-9a-f]+/)
  t.match(r.stdout, /sts: \{ endpoint: http:\/\/127\.0\.0\.1:\d+ \}/)
  t.match(r.stdout, /provision --endpoint http:\/\/127\.0\.0\.1:\d+ /)
  t.equal(r.code, 0, 'Ctrl-C stops them cleanly')
})
