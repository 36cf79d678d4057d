// Issuers with a JWKS: unknown-kid floods, identity-provider outages (warm and cold),
// key rotation, and readiness.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { build } from '../helpers/build.js'
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js'
import { createDevIssuer } from '../../devkit/dev/issuer.js'

async function waitFor (cond: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await cond()) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

async function jwksHarness (t: Parameters<typeof build>[0], jwks: JwksServer, now?: () => number) {
  const issuer = createDevIssuer()
  jwks.keys.push(issuer.publicJwk)
  return build(t, {
    issuer,
    ...(now !== undefined ? { deps: { now } } : {}),
    config: (c) => ({ ...c, issuers: [{ name: 'app', issuer: issuer.issuer, audience: issuer.audience, jwksUri: jwks.url, algorithms: ['RS256'], jwksRefetchIntervalSeconds: 60 }] })
  })
}

const ready = async (h: Awaited<ReturnType<typeof build>>): Promise<boolean> => (await h.app.inject('/readyz')).statusCode === 200

t.test('a flood of unknown kids costs at most one refetch', async (t) => {
  const jwks = await startJwksServer([])
  t.teardown(() => jwks.close())
  const h = await jwksHarness(t, jwks)
  t.ok(await waitFor(async () => ready(h)), 'ready once keys are loaded')
  t.equal((await h.vend(h.token())).statusCode, 200)
  const before = jwks.fetches
  for (let i = 0; i < 100; i++) {
    const r = await h.vend(h.issuer.mint({}, { header: { kid: randomUUID() } }))
    t.equal(r.statusCode, 401)
  }
  t.ok(jwks.fetches - before <= 1, `JWKS fetched ${jwks.fetches - before} time(s) for 100 random kids`)
})

t.test('identity provider down with warm keys: tokens still verify', async (t) => {
  const jwks = await startJwksServer([])
  t.teardown(() => jwks.close())
  let clock = Date.now()
  const h = await jwksHarness(t, jwks, () => clock)
  t.ok(await waitFor(async () => ready(h)))
  jwks.down = true
  clock += 700_000 // past the 600 s refresh interval: a refresh is attempted and fails
  t.equal((await h.vend(h.token({}, { expiresInSeconds: 7200 }))).statusCode, 200)
  t.equal((await h.vend(h.token({ sub: 'bob' }, { expiresInSeconds: 7200 }))).statusCode, 200, 'still verifying after the failed refresh')
  t.equal((await h.app.inject('/readyz')).statusCode, 200, 'still ready')
  t.equal((await h.app.inject('/healthz')).statusCode, 200, 'liveness never depends on the IdP')
})

t.test('cold start with the identity provider down: 503 and not ready, then recovery', async (t) => {
  const jwks = await startJwksServer([])
  t.teardown(() => jwks.close())
  jwks.down = true
  const h = await jwksHarness(t, jwks)
  const notReady = await h.app.inject('/readyz')
  t.equal(notReady.statusCode, 503)
  t.same(notReady.json().failing, ['keys:app'])
  const res = await h.vend(h.token())
  t.equal(res.statusCode, 503, 'no keys yet is 503, not 401')
  t.equal(res.json.code, 'STS_VENDING_KEYS_UNAVAILABLE')
  t.ok(Number(res.headers['retry-after']) >= 1)
  t.equal(h.emulator.callCount, 0)
  jwks.down = false
  t.ok(await waitFor(async () => ready(h), 8000), 'ready once the IdP is back (background retry)')
  t.equal((await h.vend(h.token())).statusCode, 200)
})

t.test('key rotation: a new kid is picked up by one refetch', async (t) => {
  const jwks = await startJwksServer([])
  t.teardown(() => jwks.close())
  let clock = Date.now()
  const h = await jwksHarness(t, jwks, () => clock)
  t.ok(await waitFor(async () => ready(h)))
  const rotated = createDevIssuer({ issuer: h.issuer.issuer, audience: h.issuer.audience })
  jwks.keys.push(rotated.publicJwk)
  clock += 61_000
  const token = h.secret(rotated.mint({}, { expiresInSeconds: 7200 }))
  t.equal((await h.vend(token)).statusCode, 200)
})
