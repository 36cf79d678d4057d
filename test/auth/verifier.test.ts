// The per-issuer verifier: verified tokens are cached per key, yet the time claims are
// checked on every request against the injected clock.
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { parseConfig } from '../../src/config/load.js'
import { staticKeySource } from '../../src/auth/keys.js'
import { decodeToken } from '../../src/auth/token.js'
import { createIssuerVerifier } from '../../src/auth/verifier.js'
import { createDevIssuer } from '../../devkit/dev/issuer.js'
import { baseConfig } from '../helpers/build.js'
import { prepare } from '../../src/prepare.js'

/** The reason a verification was refused, or 'accepted'. */
async function reasonOf (p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'accepted'
  } catch (err) {
    return (err as { reason?: string }).reason ?? 'other'
  }
}

function setup (now: () => number) {
  const issuer = createDevIssuer({ now })
  const config = parseConfig({
    issuers: [{ name: 'app', issuer: issuer.issuer, audience: issuer.audience, publicKey: issuer.publicKeyPem, algorithms: ['RS256'], maxTokenAgeSeconds: 3600 }],
    grants: [{ name: 'g', issuers: ['app'], roleArn: 'acs:ram::1234567890123456:role/r', bucket: 'bkt', region: 'cn-hangzhou', prefix: 'u/{sub}/', actions: ['read'], durationSeconds: 3600 }]
  })
  const iss = config.issuers[0]
  if (iss === undefined) throw new Error('no issuer')
  return { issuer, verify: createIssuerVerifier(iss, staticKeySource(issuer.publicKeyPem, ['RS256']), now) }
}

t.test('a repeated token is answered from the cache: the same verified claims, no new verification', async (t) => {
  const { issuer, verify } = setup(Date.now)
  const token = issuer.mint()
  const first = await verify(decodeToken(token))
  const second = await verify(decodeToken(token))
  t.equal(second.subject, 'alice')
  // A fresh verification parses the payload anew; a cache hit returns the object verified before.
  t.equal(second.claims, first.claims, 'the second call is a cache hit')
  t.ok(Object.isFrozen(first.claims), 'cached claims cannot be changed by a caller')
  const other = await verify(decodeToken(issuer.mint()))
  t.not(other.claims, first.claims, 'another token is verified on its own')
})

t.test('time claims are checked on every request, cached or not, with the injected clock', async (t) => {
  const start = Math.floor(Date.now() / 1000) * 1000
  let clock = start
  const { issuer, verify } = setup(() => clock)
  const token = issuer.mint({}, { expiresInSeconds: 600 })
  t.equal((await verify(decodeToken(token))).subject, 'alice')
  clock = start + 600_000 + 29_000
  t.equal((await verify(decodeToken(token))).subject, 'alice', 'within clock tolerance')
  clock = start + 600_000 + 30_000
  t.equal(await reasonOf(verify(decodeToken(token))), 'expired', 'expired although cached')
  clock = start
  const early = issuer.mint({ nbf: start / 1000 + 120 })
  t.equal(await reasonOf(verify(decodeToken(early))), 'not_yet_valid')
  clock = start + 120_000
  t.equal((await verify(decodeToken(early))).subject, 'alice', 'valid once nbf is reached')
  clock = start
  t.equal(await reasonOf(verify(decodeToken(early))), 'not_yet_valid', 'a cached token is not valid before its nbf either')
  const old = issuer.mint({ iat: start / 1000 - 100, exp: start / 1000 + 86_400 })
  t.equal((await verify(decodeToken(old))).subject, 'alice')
  clock = start + 3_600_000
  t.equal(await reasonOf(verify(decodeToken(old))), 'too_old', 'maxTokenAgeSeconds applies to cached tokens')
})

t.test('a failed verification is not cached as a success, and a tampered copy of a cached token fails', async (t) => {
  const { issuer, verify } = setup(Date.now)
  const token = issuer.mint()
  await verify(decodeToken(token))
  const [h, , s] = token.split('.') as [string, string, string]
  const tampered = `${h}.${Buffer.from(JSON.stringify({ iss: issuer.issuer, aud: issuer.audience, sub: 'bob', exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url')}.${s}`
  t.equal(await reasonOf(verify(decodeToken(tampered))), 'signature')
  t.equal(await reasonOf(verify(decodeToken(tampered))), 'signature', 'twice')
  t.equal((await verify(decodeToken(token))).subject, 'alice', 'the genuine token still verifies')
})

t.test('a static publicKey that is too weak or on a foreign curve fails preparation with a config error naming the key', async (t) => {
  const issuer = createDevIssuer()
  const cases: Array<{ desc: string, publicKey: string, algorithms: string[], message: RegExp }> = [
    { desc: 'RSA 1024', publicKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString(), algorithms: ['RS256'], message: /^config: issuers\[0\]\.publicKey: an RSA key of 1024 bits is too weak/ },
    { desc: 'secp256k1', publicKey: generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString(), algorithms: ['ES256'], message: /^config: issuers\[0\]\.publicKey: the EC curve secp256k1 is not allowed/ }
  ]
  for (const c of cases) {
    const raw = baseConfig(issuer, 'http://127.0.0.1:9') as { issuers: Array<Record<string, unknown>> }
    const config = parseConfig({ ...raw, issuers: [{ ...raw.issuers[0], publicKey: c.publicKey, algorithms: c.algorithms }] })
    t.throws(() => prepare(config, {}), { name: 'ConfigError', message: c.message }, c.desc)
  }
})
