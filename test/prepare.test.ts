// prepare(): the one step from a parsed config plus the environment to what the app
// needs. Every check that reads the environment happens here, once, and a problem is one
// ConfigError line naming the key or variable, never its value.
import t from 'tap'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { parseConfig } from '../src/config/load.js'
import { prepare } from '../src/prepare.js'
import { createDevIssuer } from '../devkit/dev/issuer.js'
import { baseConfig } from './helpers/build.js'

const issuer = createDevIssuer()
const base = (): Record<string, any> => structuredClone(baseConfig(issuer, 'http://127.0.0.1:9')) as Record<string, any>
const hmac = (): Record<string, any> => {
  const c = base()
  c.issuers = [{ name: 'app', issuer: 'https://hmac.example', audience: 'sts-vending', secretEnv: 'APP_SECRET', algorithms: ['HS256'] }]
  return c
}

t.test('a plain config becomes compiled grants, settled issuer keys and no fleet', async (t) => {
  const p = prepare(parseConfig(base()), {})
  t.equal(p.grants.length, 1)
  t.equal(p.grants[0]?.config.name, 'uploads')
  t.equal(p.issuers[0]?.keys.kind, 'static', 'a static PEM is parsed and checked here')
  t.equal(p.fleet, undefined)
  t.equal(p.config.grants[0]?.name, 'uploads')
})

t.test('a JWKS issuer gets the settings its key source fetches with, bounded by the request timeout', async (t) => {
  const c = base()
  c.issuers = [{ name: 'app', issuer: 'https://idp.example', audience: 'sts-vending', jwksUri: 'https://idp.example/jwks', algorithms: ['RS256'] }]
  c.server = { requestTimeoutMs: 4000 }
  const keys = prepare(parseConfig(c), {}).issuers[0]?.keys
  t.match(keys, { kind: 'jwks', uri: 'https://idp.example/jwks', maxWaitMs: 2000 })
})

t.test('the environment is read here, and a problem names the variable, never its value', async (t) => {
  const config = parseConfig(hmac())
  t.doesNotThrow(() => parseConfig(hmac()), 'parsing alone needs no environment')
  t.throws(() => prepare(config, {}), { name: 'ConfigError', message: 'config: issuers[0].secretEnv: the environment variable APP_SECRET is not set' })
  t.throws(() => prepare(config, { APP_SECRET: '' }), { message: /APP_SECRET is not set/ })
  const short = 'tooshort-secret'
  t.throws(() => prepare(config, { APP_SECRET: short }), { message: /APP_SECRET must hold a secret of at least 32 bytes$/ })
  try { prepare(config, { APP_SECRET: short }) } catch (err) { t.notMatch((err as Error).message, short) }
  const p = prepare(config, { APP_SECRET: 'k'.repeat(32) })
  t.equal(p.issuers[0]?.keys.kind, 'static')
})

t.test('a public key that cannot work is refused here, naming the key', async (t) => {
  const c = base()
  c.issuers[0].publicKey = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  t.throws(() => prepare(parseConfig(c), {}), { name: 'ConfigError', message: /^config: issuers\[0\]\.publicKey: an RSA key of 1024 bits is too weak/ })
})

t.test('grant rules run here: a grant that cannot work is one line', async (t) => {
  const c = base()
  c.grants[0].issuers = ['nobody']
  t.throws(() => prepare(parseConfig(c), {}), { name: 'ConfigError', message: /^config: grants\[0\]/ })
})

t.test('the fleet: Redis password and cache keys come from the environment', async (t) => {
  const c = base()
  c.redis = { url: 'redis://127.0.0.1:6379/0', passwordEnv: 'REDIS_PASSWORD' }
  c.cache = { ...c.cache, encryptionKeysEnv: 'CACHE_KEYS' }
  c.sts = { ...c.sts, fleetMaxCallsPerSecond: 50 }
  const config = parseConfig(c)
  const key = randomBytes(32).toString('base64')
  const p = prepare(config, { CACHE_KEYS: key, REDIS_PASSWORD: 'pw-not-echoed' })
  t.equal(p.fleet?.password, 'pw-not-echoed')
  t.equal(p.fleet?.keys.length, 1)
  t.equal(p.fleet?.fleetMaxCallsPerSecond, 50)
  t.throws(() => prepare(config, { CACHE_KEYS: key }), { name: 'ConfigError', message: /^config: redis\.passwordEnv: REDIS_PASSWORD is not set$/ })
  t.throws(() => prepare(config, { REDIS_PASSWORD: 'pw' }), { name: 'ConfigError', message: /^config: cache\.encryptionKeysEnv: CACHE_KEYS: not set/ })
})
