// A flood of bad signatures for a known issuer while the identity provider fails
// (issue: 8,080 such requests caused 365 JWKS fetches in 5 s). In its own file for
// its own time budget: thousands of requests through the whole app take a while.
import t from 'tap'
import { build } from '../helpers/build.js'
import { startJwksServer } from '../helpers/jwks-server.js'
import { createDevIssuer } from '../../devkit/dev/issuer.js'

t.test('garbage signatures for a known iss with an erroring IdP: at most one fetch per interval', async (t) => {
  const jwks = await startJwksServer([])
  t.teardown(() => jwks.close())
  let clock = Date.now()
  const issuer = createDevIssuer()
  jwks.keys.push(issuer.publicJwk)
  const h = await build(t, {
    issuer,
    deps: { now: () => clock },
    config: (c) => ({ ...c, issuers: [{ name: 'app', issuer: issuer.issuer, audience: issuer.audience, jwksUri: jwks.url, algorithms: ['RS256'] }] })
  })
  for (let i = 0; i < 100 && (await h.app.inject('/readyz')).statusCode !== 200; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const good = h.token({}, { expiresInSeconds: 7200 })
  t.equal((await h.vend(good)).statusCode, 200)
  jwks.down = true
  clock += 601_000 // keys are stale: every request could start a refresh
  const before = jwks.fetches
  const [head, payload] = good.split('.') as [string, string, string]
  const garbage = `${head}.${payload}.${Buffer.from('not the signature').toString('base64url')}`
  const statuses = new Map<number, number>()
  for (let i = 0; i < 1500; i++) {
    if (i === 750) clock += 30_000 // half an interval later
    // inject() never leaves the microtask queue: let the JWKS fetch's socket be served, as real traffic would.
    await new Promise((resolve) => setImmediate(resolve))
    const res = await h.app.inject({ method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${garbage}`, 'content-type': 'application/json' }, payload: '{}' })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
  }
  t.same([...statuses], [[401, 1500]], 'every garbage token is a 401')
  t.equal(jwks.fetches - before, 1, `${jwks.fetches - before} JWKS fetch(es) for 1500 requests within one interval`)
  clock += 31_000 // the next interval
  for (let i = 0; i < 500; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    await h.app.inject({ method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${garbage}` }, payload: {} })
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(jwks.fetches - before <= 2, `${jwks.fetches - before} fetches over two intervals`)
  t.equal((await h.vend(good)).statusCode, 200, 'the loaded key keeps verifying')
  const failureLines = h.logs.filter((l) => l.includes('JWKS fetch failed'))
  t.equal(failureLines.length, jwks.fetches - before, 'each failed fetch logged once (they are an interval apart)')
  t.match(failureLines[0], /"cause":"HTTP status 503"/)
})
