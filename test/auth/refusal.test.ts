// Issue 24: a refused token explains itself. Each row gives a 401 whose reason is
// distinct and the same in the body, in RFC 6750's WWW-Authenticate, in exactly one log
// line (with the request id and the issuer's configured name when known, no stack, no
// token) and in the metric's label.
import t from 'tap'
import { build } from '../helpers/build.js'
import { b64, claims, otherRsaKey, signJws } from '../helpers/jwt.js'
import { bearerChallenge, describeRefusal, TOKEN_REFUSAL_REASONS, type TokenRefusalReason } from '../../src/auth/refusal.js'

t.test('each refused token says why, once, in every place', async (t) => {
  const h = await build(t)
  const { issuer } = h
  const hdr = { alg: 'RS256', typ: 'JWT', kid: issuer.kid }
  const now = Math.floor(Date.now() / 1000)
  const good = signJws(hdr, claims(issuer), issuer.privateKey)
  const [gh, gp] = good.split('.') as [string, string, string]
  const rows: Array<{ desc: string, token: string, reason: TokenRefusalReason, words: RegExp, issuer?: string }> = [
    { desc: 'wrong aud', token: h.token({ aud: 'someone-else' }), reason: 'audience', words: /the token's audience is not sts-vending/, issuer: 'app' },
    { desc: 'wrong iss', token: h.token({ iss: 'https://evil.example.com/' }), reason: 'issuer', words: /issuer \(iss\) is not a configured issuer/ },
    { desc: 'expired exp', token: h.token({ iat: now - 7200, exp: now - 3600 }), reason: 'expired', words: /the token has expired/, issuer: 'app' },
    { desc: 'broken signature', token: signJws(hdr, claims(issuer), otherRsaKey()), reason: 'signature', words: /signature does not verify/, issuer: 'app' },
    { desc: 'alg none', token: `${b64({ alg: 'none', typ: 'JWT' })}.${gp}.`, reason: 'algorithm', words: /unsigned or its algorithm is not accepted/ },
    { desc: 'garbage', token: 'garbage', reason: 'malformed', words: /not a well-formed JWT/ },
    { desc: 'a pinned algorithm it is not', token: signJws({ alg: 'HS256' }, claims(issuer), 'x'.repeat(32)), reason: 'algorithm', words: /algorithm is not one of RS256/, issuer: 'app' },
    { desc: 'nbf in the future', token: h.token({ nbf: now + 600 }), reason: 'not_yet_valid', words: /not valid yet/, issuer: 'app' },
    { desc: 'no sub', token: signJws(hdr, claims(issuer, { sub: undefined }), issuer.privateKey), reason: 'claims', words: /required claim/, issuer: 'app' }
  ]
  t.ok(gh.length > 0)
  const seen = new Set<string>()
  for (const [i, row] of rows.entries()) {
    const reqId = `refusal-${i}`
    h.secret(row.token)
    const before = h.logs.length
    const res = await h.vend(row.token, {}, { 'x-request-id': reqId })
    t.equal(res.statusCode, 401, `${row.desc}: 401`)
    t.equal(res.json.code, 'STS_VENDING_INVALID_TOKEN', `${row.desc}: code`)
    t.equal(res.json.reason, row.reason, `${row.desc}: reason in the body`)
    t.match(res.json.message, row.words, `${row.desc}: the message says it in words`)
    const challenge = String(res.headers['www-authenticate'])
    t.match(challenge, /^Bearer error="invalid_token", error_description="[^"]+"$/, `${row.desc}: RFC 6750 challenge`)
    t.match(challenge, row.words, `${row.desc}: the challenge says it in words`)
    seen.add(`${row.reason}|${challenge}`)
    const lines = h.logs.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>)
    const withReason = lines.filter((l) => 'reason' in l)
    t.equal(withReason.length, 1, `${row.desc}: exactly one log line carries the reason`)
    t.match(withReason[0], { level: 30, reqId, reason: row.reason, code: 'STS_VENDING_INVALID_TOKEN' }, `${row.desc}: at info, with the request id`)
    t.equal(withReason[0]?.issuer, row.issuer, `${row.desc}: the issuer's configured name when known`)
    for (const l of lines) {
      t.notMatch(JSON.stringify(l), /"stack"|\n\s+at /, `${row.desc}: no stack in "${String(l.msg)}"`)
      t.notOk(JSON.stringify(l).includes(row.token), `${row.desc}: no token`)
    }
  }
  t.equal(seen.size, rows.length, 'no two rows answer alike')

  const metrics = (await h.app.inject('/metrics')).body
  for (const reason of new Set(rows.map((r) => r.reason))) {
    t.match(metrics, new RegExp(`stsv_jwt_failures_total\\{reason="${reason}"\\} [1-9]`), `metric label ${reason}`)
  }
  for (const m of metrics.matchAll(/stsv_jwt_failures_total\{reason="([^"]+)"\}/g)) {
    t.ok((TOKEN_REFUSAL_REASONS as readonly string[]).includes(m[1] ?? ''), `label ${m[1] ?? ''} is from the fixed list`)
  }
})

t.test('no token: a bare Bearer challenge (RFC 6750 §3.1), reason malformed, one line', async (t) => {
  const h = await build(t)
  const res = await h.vend(undefined, {}, { 'x-request-id': 'no-token' })
  t.equal(res.statusCode, 401)
  t.equal(res.json.code, 'STS_VENDING_MISSING_TOKEN')
  t.equal(res.json.reason, 'malformed')
  t.equal(res.headers['www-authenticate'], 'Bearer')
  const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => 'reason' in l)
  t.match(lines, [{ reqId: 'no-token', reason: 'malformed', level: 30 }])
  t.equal(lines.length, 1)
})

t.test('the challenge never carries a character RFC 6750 forbids', async (t) => {
  t.equal(bearerChallenge(undefined), 'Bearer')
  t.equal(bearerChallenge({ reason: 'audience', description: 'the token\'s audience is not "a\\b"\u00e9' }),
    'Bearer error="invalid_token", error_description="the token\'s audience is not ?a?b??"')
  for (const reason of TOKEN_REFUSAL_REASONS) {
    t.match(describeRefusal(reason), /^[\x20-\x7e]+$/, `${reason}: plain words without an issuer`)
  }
})

t.test('other refusals are one line without a stack', async (t) => {
  const h = await build(t)
  const before = h.logs.length
  const res = await h.vend(h.token(), { prefix: 'elsewhere/' }, { 'x-request-id': 'forbidden' })
  t.equal(res.statusCode, 403)
  t.equal(res.json.message, 'The requested prefix is outside the directory of this grant; your directory is dir111/dir111_secondline1/alice/', 'names the caller\'s directory')
  t.notOk('reason' in res.json, 'reason is for refused tokens only')
  t.notOk('www-authenticate' in res.headers)
  const lines = h.logs.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>)
  const refused = lines.filter((l) => l.msg === 'request refused')
  t.equal(refused.length, 1)
  t.match(refused[0], { level: 30, reqId: 'forbidden', statusCode: 403, code: 'STS_VENDING_PREFIX_NOT_ALLOWED' })
  for (const l of lines) t.notMatch(JSON.stringify(l), /"stack"/, `no stack in "${String(l.msg)}"`)
})
