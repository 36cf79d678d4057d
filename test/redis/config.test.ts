// The fleet's configuration: every mistake is one clear line at start (exit 2), and
// no line ever shows a password or a key.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { stringify } from 'yaml'
import { parseConfig } from '../../src/config/load.js'
import { sharedStateSettings } from '../../src/redis/settings.js'
import { createDevIssuer } from '../../devkit/dev/issuer.js'
import { baseConfig } from '../helpers/build.js'

const issuer = createDevIssuer()
const base = baseConfig(issuer, 'http://127.0.0.1:1') as Record<string, any>
const fleet = (patch: (c: Record<string, any>) => void = () => {}): Record<string, any> => {
  const c = structuredClone(base)
  c.redis = { url: 'redis://redis.platform.svc:6379/0' }
  c.cache = { ...c.cache, encryptionKeysEnv: 'STS_VENDING_CACHE_KEYS' }
  c.sts = { ...c.sts, fleetMaxCallsPerSecond: 80 }
  patch(c)
  return c
}

t.test('the contract names, with defaults', async (t) => {
  const c = parseConfig(fleet((c) => { c.redis.passwordEnv = 'STS_VENDING_REDIS_PASSWORD' }))
  t.same(c.redis, { url: 'redis://redis.platform.svc:6379/0', passwordEnv: 'STS_VENDING_REDIS_PASSWORD', keyPrefix: 'stsv:', commandTimeoutMs: 500 })
  t.equal(c.sts.fleetMaxCallsPerSecond, 80)
  t.equal(c.sts.maxCallsPerSecond, 20, 'the per-replica cap keeps its meaning')
  t.same(c.rateLimit.upstreamPerCaller, { max: 10, timeWindowMs: 60_000 }, 'per-caller upstream budget: 10 a minute by default')
  t.equal(parseConfig(base).redis, undefined, 'absent: single replica, as before')
  t.ok(parseConfig(fleet((c) => { c.redis.url = 'rediss://user@redis.example:6380' })), 'rediss:// and an ACL user name are fine')
})

t.test('refused at load, with the key named', async (t) => {
  const cases: Array<[string, (c: Record<string, any>) => void, RegExp]> = [
    ['redis without cache.encryptionKeysEnv', (c) => { delete c.cache.encryptionKeysEnv }, /^config: cache\.encryptionKeysEnv: required when redis is set/],
    ['redis without sts.fleetMaxCallsPerSecond', (c) => { delete c.sts.fleetMaxCallsPerSecond }, /^config: sts\.fleetMaxCallsPerSecond: required when redis is set/],
    ['a password inside the URL', (c) => { c.redis.url = 'redis://:hunter2hunter2@redis:6379' }, /^config: redis\.url: a password inside the URL is refused; use redis\.passwordEnv$/],
    ['user and password inside the URL', (c) => { c.redis.url = 'rediss://app:hunter2hunter2@redis:6379' }, /redis\.url: a password inside the URL is refused/],
    ['not a redis URL', (c) => { c.redis.url = 'http://redis:6379' }, /^config: redis\.url: /],
    ['a lower-case env name', (c) => { c.cache.encryptionKeysEnv = 'keys' }, /^config: cache\.encryptionKeysEnv: /],
    ['an unknown redis key', (c) => { c.redis.db = 1 }, /^config: redis\.db: unknown key/],
    ['a fleet budget of 0', (c) => { c.sts.fleetMaxCallsPerSecond = 0 }, /^config: sts\.fleetMaxCallsPerSecond: /],
    ['a command timeout beyond the deadline', (c) => { c.redis.commandTimeoutMs = 10_000; c.sts.deadlineMs = 5000 }, /redis\.commandTimeoutMs: must be below sts\.deadlineMs/]
  ]
  for (const [desc, patch, msg] of cases) {
    t.throws(() => parseConfig(fleet(patch)), { name: 'ConfigError', message: msg }, desc)
    try { parseConfig(fleet(patch)) } catch (err) { t.notMatch((err as Error).message, /hunter2/, `${desc}: the password is not echoed`) }
  }
})

t.test('settings from the environment', async (t) => {
  const config = parseConfig(fleet((c) => { c.redis.passwordEnv = 'STS_VENDING_REDIS_PASSWORD' }))
  const key = randomBytes(32).toString('base64')
  const s = sharedStateSettings(config, { STS_VENDING_CACHE_KEYS: key, STS_VENDING_REDIS_PASSWORD: 'pw' })
  t.equal(s?.password, 'pw')
  t.equal(s?.keys.length, 1)
  t.equal(sharedStateSettings(parseConfig(base), {}), undefined)
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['keys missing', { STS_VENDING_REDIS_PASSWORD: 'pw' }, /^config: cache\.encryptionKeysEnv: STS_VENDING_CACHE_KEYS: not set/],
    ['a key of the wrong length', { STS_VENDING_CACHE_KEYS: randomBytes(31).toString('base64'), STS_VENDING_REDIS_PASSWORD: 'pw' }, /key 1 is 31 bytes, not 32/],
    ['a malformed key', { STS_VENDING_CACHE_KEYS: `${key},???`, STS_VENDING_REDIS_PASSWORD: 'pw' }, /key 2 is not base64/],
    ['password variable unset', { STS_VENDING_CACHE_KEYS: key }, /^config: redis\.passwordEnv: STS_VENDING_REDIS_PASSWORD is not set$/]
  ]
  for (const [desc, env, msg] of cases) t.throws(() => sharedStateSettings(config, env), { name: 'ConfigError', message: msg }, desc)
})

const SERVER = new URL('../../dist/server.js', import.meta.url).pathname

async function runServer (env: Record<string, string>): Promise<{ code: number | null, stderr: string, stdout: string }> {
  return await new Promise((resolve) => {
    const child = spawn(process.execPath, [SERVER], { env: { PATH: process.env.PATH ?? '', ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-test', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'not-a-real-secret', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    let stdout = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.on('exit', (code) => resolve({ code, stderr, stdout }))
  })
}

t.test('the process: a bad key or a password in the URL is one line and exit 2, before listening', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-redis-config-'))
  const file = join(dir, 'c.yaml')
  writeFileSync(file, stringify(fleet()))
  const short = randomBytes(16).toString('base64')
  const r1 = await runServer({ STS_VENDING_CONFIG: file, PORT: '0', STS_VENDING_CACHE_KEYS: short })
  t.equal(r1.code, 2)
  t.match(r1.stderr, /^sts-vending: config: cache\.encryptionKeysEnv: STS_VENDING_CACHE_KEYS: key 1 is 16 bytes, not 32\n$/)
  t.notMatch(r1.stderr, short, 'the key is not echoed')
  t.equal(r1.stdout, '')
  const r2 = await runServer({ STS_VENDING_CONFIG: file, PORT: '0' })
  t.equal(r2.code, 2)
  t.match(r2.stderr, /^sts-vending: config: cache\.encryptionKeysEnv: STS_VENDING_CACHE_KEYS: not set/)
  writeFileSync(file, stringify(fleet((c) => { c.redis.url = 'redis://:hunter2hunter2@127.0.0.1:1' })))
  const r3 = await runServer({ STS_VENDING_CONFIG: file, PORT: '0', STS_VENDING_CACHE_KEYS: randomBytes(32).toString('base64') })
  t.equal(r3.code, 2)
  t.match(r3.stderr, /^sts-vending: config: redis\.url: a password inside the URL is refused; use redis\.passwordEnv\n$/)
  t.notMatch(r3.stderr, /hunter2/)
})
