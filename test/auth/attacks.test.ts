// Checklist A: every refused token gets its 4xx with our code and makes no STS call.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { build } from '../helpers/build.js'
import { assertContract, exchange } from '../helpers/contract.js'
import { b64, claims, signJws, otherRsaKey } from '../helpers/jwt.js'
import type { TokenRefusalReason } from '../../src/auth/refusal.js'

t.test('hostile and broken tokens are refused before STS', async (t) => {
  // A canary that must never be contacted by the verifier (jku / x5u).
  let canaryHits = 0
  const canary = createServer((_req, res) => { canaryHits++; res.end('{}') })
  await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve))
  const canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}/jwks`
  t.teardown(() => { canary.close() })

  const h = await build(t)
  const { issuer } = h
  const key = issuer.privateKey
  const hdr = { alg: 'RS256', typ: 'JWT', kid: issuer.kid }
  const good = signJws(hdr, claims(issuer), key)
  const [gh, gp, gs] = good.split('.') as [string, string, string]
  const now = Math.floor(Date.now() / 1000)

  const cases: Array<{ desc: string, auth?: string, status: number, code: string, reason?: TokenRefusalReason }> = [
    { desc: 'no Authorization header', status: 401, code: 'STS_VENDING_MISSING_TOKEN', reason: 'malformed' },
    { desc: 'Bearer with two tokens', auth: `Bearer ${good} x`, status: 400, code: 'STS_VENDING_BAD_AUTHORIZATION_HEADER' },
    { desc: 'Bearer with two spaces', auth: `Bearer  ${good}`, status: 400, code: 'STS_VENDING_BAD_AUTHORIZATION_HEADER' },
    { desc: 'Basic scheme', auth: 'Basic YWxpY2U6cHc=', status: 400, code: 'STS_VENDING_BAD_AUTHORIZATION_HEADER' },
    { desc: 'garbage token', auth: 'Bearer not-a-jwt', status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'alg none, empty signature', auth: `Bearer ${b64({ alg: 'none' })}.${gp}.`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'algorithm' },
    { desc: 'alg nOnE with a signature', auth: `Bearer ${b64({ alg: 'nOnE' })}.${gp}.${gs}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'algorithm' },
    { desc: 'HS256 keyed with the SPKI PEM', auth: `Bearer ${signJws({ alg: 'HS256' }, claims(issuer), issuer.publicKeyPem)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'algorithm' },
    { desc: 'HS256 keyed with the PEM without newline', auth: `Bearer ${signJws({ alg: 'HS256' }, claims(issuer), issuer.publicKeyPem.trim())}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'algorithm' },
    { desc: 'HS256 keyed with the JWK JSON', auth: `Bearer ${signJws({ alg: 'HS256' }, claims(issuer), JSON.stringify(issuer.publicJwk))}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'algorithm' },
    { desc: 'HS256 keyed with the JWKS JSON', auth: `Bearer ${signJws({ alg: 'HS256' }, claims(issuer), JSON.stringify({ keys: [issuer.publicJwk] }))}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'algorithm' },
    { desc: 'valid RS384 signature, alg not allowed', auth: `Bearer ${signJws({ alg: 'RS384' }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'algorithm' },
    { desc: 'valid PS256 signature, alg not allowed', auth: `Bearer ${signJws({ alg: 'PS256' }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'algorithm' },
    { desc: 'signed by another key', auth: `Bearer ${signJws(hdr, claims(issuer), otherRsaKey())}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'signature' },
    { desc: 'payload tampered, signature kept', auth: `Bearer ${gh}.${b64(claims(issuer, { sub: 'bob' }))}.${gs}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'signature' },
    { desc: 'padding in base64url', auth: `Bearer ${gh}.${gp}.${gs}==`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: '+ and / in base64url', auth: `Bearer ${gh}.${gp}.${gs.replace(/-/g, '+').replace(/_/g, '/')}${gs.includes('-') || gs.includes('_') ? '' : '+'}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'exp in the past', auth: `Bearer ${signJws(hdr, claims(issuer, { exp: now - 120 }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'expired' },
    { desc: 'missing exp', auth: `Bearer ${signJws(hdr, claims(issuer, { exp: undefined }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'claims' },
    { desc: 'exp as a string', auth: `Bearer ${signJws(hdr, claims(issuer, { exp: String(now + 600) }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'claims' },
    { desc: 'nbf in the future', auth: `Bearer ${signJws(hdr, claims(issuer, { nbf: now + 600 }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'not_yet_valid' },
    { desc: 'iat far in the future', auth: `Bearer ${signJws(hdr, claims(issuer, { iat: now + 600 }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'not_yet_valid' },
    { desc: 'wrong iss', auth: `Bearer ${signJws(hdr, claims(issuer, { iss: 'https://evil.example.com/' }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'issuer' },
    { desc: 'lookalike iss (no trailing slash)', auth: `Bearer ${signJws(hdr, claims(issuer, { iss: issuer.issuer.replace(/\/$/, '') }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'issuer' },
    { desc: 'iss as a number', auth: `Bearer ${signJws(hdr, claims(issuer, { iss: 42 }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'issuer' },
    { desc: 'wrong aud', auth: `Bearer ${signJws(hdr, claims(issuer, { aud: 'someone-else' }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'audience' },
    { desc: 'missing aud', auth: `Bearer ${signJws(hdr, claims(issuer, { aud: undefined }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'audience' },
    { desc: 'unknown crit header', auth: `Bearer ${signJws({ ...hdr, crit: ['exp'] }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'jku aimed at a canary', auth: `Bearer ${signJws({ ...hdr, jku: canaryUrl }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'x5u aimed at a canary', auth: `Bearer ${signJws({ ...hdr, x5u: canaryUrl }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'embedded jwk', auth: `Bearer ${signJws({ ...hdr, jwk: issuer.publicJwk }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'embedded x5c', auth: `Bearer ${signJws({ ...hdr, x5c: ['MIIB'] }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    // A kid may be any printable ASCII (standard base64 included) and is only compared
    // exactly; injection-shaped kids are refused at key lookup (test/auth/jwks.test.ts),
    // since this static-key issuer has no kid to compare. What no kid may hold:
    { desc: 'kid with a control character', auth: `Bearer ${signJws({ ...hdr, kid: 'key\n1' }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'kid with a NUL', auth: `Bearer ${signJws({ ...hdr, kid: 'key\u00001' }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'kid with non-ASCII', auth: `Bearer ${signJws({ ...hdr, kid: 'k\u00e9y' }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'kid over 256 characters', auth: `Bearer ${signJws({ ...hdr, kid: 'k'.repeat(257) }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'empty kid', auth: `Bearer ${signJws({ ...hdr, kid: '' }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'kid as a number', auth: `Bearer ${signJws({ ...hdr, kid: 42 }, claims(issuer), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'sub as an array', auth: `Bearer ${signJws(hdr, claims(issuer, { sub: ['alice'] }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'claims' },
    { desc: 'sub as an object', auth: `Bearer ${signJws(hdr, claims(issuer, { sub: { id: 'alice' } }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'claims' },
    { desc: 'sub as a number', auth: `Bearer ${signJws(hdr, claims(issuer, { sub: 42 }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'claims' },
    { desc: 'missing sub', auth: `Bearer ${signJws(hdr, claims(issuer, { sub: undefined }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'claims' },
    { desc: 'empty sub', auth: `Bearer ${signJws(hdr, claims(issuer, { sub: '' }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'claims' },
    { desc: 'payload is an array', auth: `Bearer ${signJws(hdr, [claims(issuer)], key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'payload is not JSON', auth: `Bearer ${gh}.${b64('not json')}.${gs}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' },
    { desc: 'token over the size cap', auth: `Bearer ${signJws(hdr, claims(issuer, { pad: 'x'.repeat(9000) }), key)}`, status: 401, code: 'STS_VENDING_INVALID_TOKEN', reason: 'malformed' }
  ]

  for (const c of cases) {
    if (c.auth !== undefined) h.secret(c.auth.replace(/^\S+\s+/, '').split(' ')[0] ?? '')
    const res = await h.vend(undefined, {}, c.auth !== undefined ? { authorization: c.auth } : {})
    t.equal(res.statusCode, c.status, `${c.desc}: status`)
    t.equal(res.json?.code, c.code, `${c.desc}: code`)
    t.same(Object.keys(res.json ?? {}).sort(), ['code', 'error', 'message', ...(c.status === 401 ? ['reason'] : []), 'statusCode'], `${c.desc}: error body shape`)
    if (c.reason !== undefined) {
      t.equal(res.json?.reason, c.reason, `${c.desc}: reason`)
      if (c.code === 'STS_VENDING_MISSING_TOKEN') t.equal(res.headers['www-authenticate'], 'Bearer', `${c.desc}: a bare challenge (RFC 6750 §3.1)`)
      else t.match(res.headers['www-authenticate'], /^Bearer error="invalid_token", error_description="[^"]+"$/, `${c.desc}: WWW-Authenticate`)
    }
  }
  t.equal(h.emulator.callCount, 0, 'no STS call for any refused token')
  t.equal(canaryHits, 0, 'key URLs in headers are never followed')

  const ok = await h.vend(good)
  t.equal(ok.statusCode, 200, 'the untampered token works')
  t.equal(h.emulator.callCount, 1)
})

t.test('a token in the query string is refused and its value is not logged', async (t) => {
  const h = await build(t)
  const token = h.token()
  const res = await h.app.inject({ method: 'POST', url: `/credentials?token=${token}`, headers: { authorization: `Bearer ${token}` }, payload: {} })
  assertContract(t, exchange(res))
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'STS_VENDING_TOKEN_IN_QUERY')
  // The request line names the route, never the URL with its query; the token is nowhere.
  t.ok(h.logs.some((l) => l.includes('"route":"/credentials"') && l.includes('"statusCode":400')), 'the refused request is logged')
  t.notOk(h.logs.some((l) => l.includes(token) || l.includes(token.split('.')[2] ?? token)), 'the token is not logged')
  t.equal(h.emulator.callCount, 0)
})

t.test('exp at the clock-tolerance boundary, with a fake clock', async (t) => {
  // The service's clock is fake; the emulator keeps real time (it checks the SDK's signature date).
  const fixed = Math.floor(Date.now() / 1000) * 1000
  let clock = fixed
  const h = await build(t, { deps: { now: () => clock } })
  const exp = Math.floor(fixed / 1000)
  const token = h.secret(signJws({ alg: 'RS256', kid: h.issuer.kid }, claims(h.issuer, { exp, iat: exp - 600 }, fixed), h.issuer.privateKey))
  clock = fixed + 29_000 // 29 s past exp, tolerance is 30 s
  t.equal((await h.vend(token)).statusCode, 200, 'within tolerance: accepted')
  clock = fixed + 30_000
  t.equal((await h.vend(token)).statusCode, 401, 'at the tolerance: refused')
  const early = h.secret(signJws({ alg: 'RS256' }, claims(h.issuer, { nbf: exp + 20, exp: exp + 3600 }, fixed), h.issuer.privateKey))
  clock = fixed
  t.equal((await h.vend(early)).statusCode, 200, 'nbf 20 s ahead is within tolerance')
  const later = h.secret(signJws({ alg: 'RS256' }, claims(h.issuer, { nbf: exp + 40, exp: exp + 3600 }, fixed), h.issuer.privateKey))
  t.equal((await h.vend(later)).statusCode, 401, 'nbf 40 s ahead is refused')
})

t.test('duplicate claims: the last one wins, for verification and for the directory alike', async (t) => {
  const h = await build(t)
  const now = Math.floor(Date.now() / 1000)
  const raw = `{"iss":${JSON.stringify(h.issuer.issuer)},"aud":"sts-vending","sub":"alice","sub":"bob","iat":${now},"exp":${now + 600}}`
  const token = h.secret(signJws({ alg: 'RS256', kid: h.issuer.kid }, raw, h.issuer.privateKey))
  const res = await h.vend(token)
  t.equal(res.statusCode, 200)
  t.equal(res.json.prefix, 'dir111/dir111_secondline1/bob/', 'the prefix is the sub that was validated')
  t.match(h.emulator.calls[0]?.roleSessionName, /bob/)
})

t.test('a required typ refuses other token kinds (an ID token where an access token is expected)', async (t) => {
  const h = await build(t, { config: (c: any) => ({ ...c, issuers: [{ ...c.issuers[0], typ: 'at+jwt' }] }) })
  const idToken = h.secret(signJws({ alg: 'RS256', typ: 'JWT' }, claims(h.issuer), h.issuer.privateKey))
  t.equal((await h.vend(idToken)).statusCode, 401)
  const access = h.secret(signJws({ alg: 'RS256', typ: 'at+jwt' }, claims(h.issuer), h.issuer.privateKey))
  t.equal((await h.vend(access)).statusCode, 200)
})

t.test('a verified header is recalled only by the same exact header; every near copy is parsed and checked afresh', async (t) => {
  const h = await build(t)
  const token = h.token({ sub: 'alice' })
  const as = async (authorization: string): Promise<{ statusCode: number, json: any }> => await h.vend(undefined, {}, { authorization })
  t.equal((await as(`Bearer ${token}`)).statusCode, 200, 'verified, and remembered by its header')
  t.equal((await as(`Bearer ${token}`)).statusCode, 200, 'recalled')
  t.equal((await as(`bearer ${token}`)).statusCode, 200, 'the scheme in another case: verified as the same token')
  t.equal((await as(`Bearer  ${token}`)).json.code, 'STS_VENDING_BAD_AUTHORIZATION_HEADER', 'two spaces: malformed, remembered token or not')
  t.equal((await as(`Bearer ${token}x`)).statusCode, 401, 'one character more: not that token')
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const other = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'mallory' })).toString('base64url')
  t.equal((await as(`Bearer ${header}.${other}.${signature}`)).statusCode, 401, 'its signature on another payload: refused')
  t.match((await as(`Bearer ${token}`)).json.prefix, /\/alice\/$/, 'and the remembered one still answers for alice')
})
