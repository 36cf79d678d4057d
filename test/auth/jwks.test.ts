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

t.test('a key removed from the JWKS stops verifying at the next refresh, even for a token seen before', async (t) => {
  const jwks = await startJwksServer([])
  t.teardown(() => jwks.close())
  let clock = Date.now()
  const h = await jwksHarness(t, jwks, () => clock)
  t.ok(await waitFor(async () => ready(h)))
  const successor = createDevIssuer({ issuer: h.issuer.issuer, audience: h.issuer.audience })
  jwks.keys.push(successor.publicJwk)
  const token = h.token({}, { expiresInSeconds: 7200 })
  t.equal((await h.vend(token)).statusCode, 200)
  t.equal((await h.vend(token)).statusCode, 200, 'seen before: answered from the verified-token cache')
  jwks.keys.splice(0, 1) // the IdP retires the old key
  clock += 599_000
  t.equal((await h.vend(token)).statusCode, 200, 'within the refresh interval the loaded key still verifies')
  clock += 2000 // past jwksCacheTtlSeconds (600 s): the next request refreshes the key set
  const before = jwks.fetches
  await h.vend(token)
  t.ok(await waitFor(async () => jwks.fetches > before), 'the key set was refetched')
  t.ok(await waitFor(async () => (await h.vend(token)).statusCode === 401), 'the retired key no longer verifies the cached token')
  t.equal((await h.vend(token)).json.code, 'STS_VENDING_INVALID_TOKEN')
  t.equal((await h.vend(h.secret(successor.mint({}, { expiresInSeconds: 7200 })))).statusCode, 200, 'the remaining key verifies')
})

t.test('kids: standard base64 is accepted and compared exactly; injection-shaped kids are unknown kids', async (t) => {
  const jwks = await startJwksServer([])
  t.teardown(() => jwks.close())
  const kid = 'aGVsbG8+/d29ybGQ='
  const issuer = createDevIssuer({ kid })
  jwks.keys.push(issuer.publicJwk)
  const h = await build(t, {
    issuer,
    config: (c) => ({ ...c, issuers: [{ name: 'app', issuer: issuer.issuer, audience: issuer.audience, jwksUri: jwks.url, algorithms: ['RS256'] }] })
  })
  t.ok(await waitFor(async () => ready(h)))
  t.equal((await h.vend(h.token())).statusCode, 200, 'a kid with +, / and = verifies')
  const before = jwks.fetches
  const cases: Array<{ desc: string, kid: string }> = [
    { desc: 'the kid without padding', kid: 'aGVsbG8+/d29ybGQ' },
    { desc: 'the kid in base64url', kid: 'aGVsbG8-_d29ybGQ=' },
    { desc: 'the kid in another case', kid: 'AGVSBG8+/D29YBGQ=' },
    { desc: 'path traversal', kid: '../../etc/passwd' },
    { desc: 'SQL', kid: "' OR '1'='1" },
    { desc: 'JNDI', kid: '${jndi:ldap://127.0.0.1/x}' }, // eslint-disable-line no-template-curly-in-string
    { desc: 'markup', kid: '<script>alert(1)</script>' }
  ]
  for (const c of cases) {
    const res = await h.vend(h.token({}, { header: { kid: c.kid } }))
    t.equal(res.statusCode, 401, `${c.desc}: 401`)
  }
  t.ok(jwks.fetches - before <= 1, `${jwks.fetches - before} refetch(es) for ${cases.length} unknown kids`)
  t.equal(h.emulator.callCount, 1)
})
