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
  t.same(c.redis, { url: 'redis://redis.platform.svc:6379/0', passwordEnv: 'STS_VENDING_REDIS_PASSWORD', tls: false, keyPrefix: 'stsv:', commandTimeoutMs: 500 })
  t.equal(c.sts.fleetMaxCallsPerSecond, 80)
  t.equal(c.sts.maxCallsPerSecond, 20, 'the per-replica cap keeps its meaning')
  t.same(c.rateLimit.upstreamPerCaller, { max: 10, timeWindowMs: 60_000 }, 'per-caller upstream budget: 10 a minute by default')
  t.equal(parseConfig(base).redis, undefined, 'absent: single replica, as before')
  for (const url of ['rediss://redis.example:6380', 'redis://10.0.0.1', 'redis://r-bp1.redis.rds.aliyuncs.com:6379/3', 'redis://[::1]:6379/']) {
    t.ok(parseConfig(fleet((c) => { c.redis.url = url })), `${url}: an address is fine`)
  }
  const sentinel = parseConfig(fleet((c) => { c.redis = { sentinels: ['10.0.0.1:26379', '[fd00::2]:26379'], sentinelName: 'mymaster', usernameEnv: 'REDIS_USER', passwordEnv: 'REDIS_PASSWORD', sentinelPasswordEnv: 'SENTINEL_PASSWORD', tls: true } }))
  t.same(sentinel.redis?.sentinels, ['10.0.0.1:26379', '[fd00::2]:26379'])
  const cluster = parseConfig(fleet((c) => { c.redis = { clusterNodes: ['r-1.redis:6379', 'r-2.redis:6379'], passwordEnv: 'REDIS_PASSWORD' } }))
  t.same(cluster.redis?.clusterNodes, ['r-1.redis:6379', 'r-2.redis:6379'])
})

t.test('redis.url is an address, not an options channel', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['a password', 'redis://:hunter2hunter2@redis:6379', /^config: redis\.url: a password inside the URL is refused; use redis\.usernameEnv and redis\.passwordEnv$/],
    ['user and password', 'rediss://app:hunter2hunter2@redis:6379', /^config: redis\.url: a password inside the URL is refused; use redis\.usernameEnv and redis\.passwordEnv$/],
    ['a user name', 'rediss://app@redis:6379', /^config: redis\.url: a user name inside the URL is refused; use redis\.usernameEnv and redis\.passwordEnv$/],
    ['?password=', 'redis://redis:6379/0?password=hunter2hunter2', /^config: redis\.url: a query string is refused: .*redis\.usernameEnv and redis\.passwordEnv/],
    ['?keyPrefix=', 'redis://redis:6379?keyPrefix=other:', /^config: redis\.url: a query string is refused/],
    ['an empty query', 'redis://redis:6379?', /^config: redis\.url: a query string is refused/],
    ['a fragment', 'redis://redis:6379#x', /^config: redis\.url: a fragment is refused/],
    ['a path that is no db', 'redis://redis:6379/a/b', /^config: redis\.url: the path may only be a database number/],
    ['tls beside a url', 'redis://redis:6379', /^config: redis\.tls: only for sentinels or clusterNodes/]
  ]
  for (const [desc, url, msg] of cases) {
    const patch = (c: Record<string, any>): void => { c.redis.url = url; if (desc === 'tls beside a url') c.redis.tls = true }
    t.throws(() => parseConfig(fleet(patch)), { name: 'ConfigError', message: msg }, desc)
    try { parseConfig(fleet(patch)) } catch (err) { t.notMatch((err as Error).message, /hunter2/, `${desc}: the password is not echoed`) }
  }
})

t.test('exactly one way to reach Redis', async (t) => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['url and sentinels', { url: 'redis://r:6379', sentinels: ['s:26379'], sentinelName: 'm' }, /^config: redis: exactly one of url, sentinels \(with sentinelName\) or clusterNodes is required; found url and sentinels$/],
    ['sentinels and clusterNodes', { sentinels: ['s:26379'], sentinelName: 'm', clusterNodes: ['c:6379'] }, /found sentinels and clusterNodes/],
    ['none of them', { passwordEnv: 'P' }, /^config: redis: exactly one of url, sentinels/],
    ['sentinels without sentinelName', { sentinels: ['s:26379'] }, /^config: redis\.sentinelName: required with redis\.sentinels/],
    ['sentinelName alone', { url: 'redis://r:6379', sentinelName: 'm' }, /^config: redis\.sentinelName: only with redis\.sentinels/],
    ['an unparsable host:port', { clusterNodes: ['c6379'] }, /^config: redis\.clusterNodes\[0\]: expected host:port/],
    ['a port out of range', { sentinels: ['s:70000'], sentinelName: 'm' }, /^config: redis\.sentinels\[0\]: the port must be 1-65535$/],
    ['a URL as a node', { clusterNodes: ['redis://c:6379'] }, /^config: redis\.clusterNodes\[0\]: /]
  ]
  for (const [desc, redis, msg] of cases) t.throws(() => parseConfig(fleet((c) => { c.redis = redis })), { name: 'ConfigError', message: msg }, desc)
})

t.test('refused at load, with the key named', async (t) => {
  const cases: Array<[string, (c: Record<string, any>) => void, RegExp]> = [
    ['redis without cache.encryptionKeysEnv', (c) => { delete c.cache.encryptionKeysEnv }, /^config: cache\.encryptionKeysEnv: required when redis is set/],
    ['redis without sts.fleetMaxCallsPerSecond', (c) => { delete c.sts.fleetMaxCallsPerSecond }, /^config: sts\.fleetMaxCallsPerSecond: required when redis is set/],
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
  t.same(s?.target, { mode: 'standalone', url: 'redis://redis.platform.svc:6379/0' })
  const sentinel = sharedStateSettings(parseConfig(fleet((c) => { c.redis = { sentinels: ['10.0.0.1:26379', '[fd00::2]:26380'], sentinelName: 'mymaster', usernameEnv: 'U', passwordEnv: 'P' } })), { STS_VENDING_CACHE_KEYS: key, U: 'app', P: 'pw' })
  t.same(sentinel?.target, { mode: 'sentinel', name: 'mymaster', sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: 'fd00::2', port: 26380 }], sentinelUsername: 'app', sentinelPassword: 'pw' }, 'the Sentinels take usernameEnv and passwordEnv unless sentinelPasswordEnv')
  t.equal(sentinel?.username, 'app')
  const own = sharedStateSettings(parseConfig(fleet((c) => { c.redis = { sentinels: ['10.0.0.1:26379'], sentinelName: 'mymaster', usernameEnv: 'U', passwordEnv: 'P', sentinelPasswordEnv: 'S' } })), { STS_VENDING_CACHE_KEYS: key, U: 'app', P: 'pw', S: 'spw' })
  t.match(own?.target, { mode: 'sentinel', sentinelUsername: undefined, sentinelPassword: 'spw' }, 'with sentinelPasswordEnv: that password alone (a Sentinel\'s requirepass knows no ACL user)')
  t.equal(own?.username, 'app', 'the data nodes keep the ACL user')
  t.throws(() => sharedStateSettings(parseConfig(fleet((c) => { c.redis.usernameEnv = 'U' })), { STS_VENDING_CACHE_KEYS: key }), { message: /^config: redis\.usernameEnv: U is not set$/ })
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
  t.match(r3.stderr, /^sts-vending: config: redis\.url: a password inside the URL is refused; use redis\.usernameEnv and redis\.passwordEnv\n$/)
  t.notMatch(r3.stderr, /hunter2/)
})
