// GET /grants (issue 24 item 3): what this caller may get, decided exactly as vending
// decides, behind the same guards as /credentials, with no STS call and nothing that a
// request to /credentials would not reveal.
import t from 'tap'
import { build, ROLE_ARN, type Harness } from '../../helpers/build.js'
import { assertContract, exchange } from '../../helpers/contract.js'

const ALLOWED = 'https://app.example.com'

// Five grants: two alice may use (one signs), one whose claim she lacks a usable value
// for, one whose `when` she does not meet, one for another issuer.
function config (c: Record<string, unknown>): Record<string, unknown> {
  const base = (c.grants as Array<Record<string, unknown>>)[0]!
  const issuers = c.issuers as Array<Record<string, unknown>>
  return {
    ...c,
    issuers: [...issuers, { ...issuers[0], name: 'other', issuer: 'https://other.example.com' }],
    cors: { origins: [ALLOWED] },
    rateLimit: { max: 5, timeWindowMs: 60_000 },
    grants: [
      base,
      { name: 'photos', issuers: ['app'], roleArn: ROLE_ARN, bucket: 'photos-bucket', region: 'cn-shanghai', endpoint: 'https://oss.example.com', prefix: 'photos/{sub}/', actions: ['write', 'read'], durationSeconds: 7200, signing: { maxBytes: 1024, expiresSeconds: 300, contentTypes: ['image/png'] } },
      { name: 'by-email', issuers: ['app'], roleArn: ROLE_ARN, bucket: 'secret-bucket', region: 'cn-beijing', prefix: 'mail/{email}/', actions: ['read'], durationSeconds: 3600 },
      { name: 'admins', issuers: ['app'], when: { role: 'admin' }, roleArn: ROLE_ARN, bucket: 'admin-bucket', region: 'cn-hangzhou', prefix: 'admin/', actions: ['list', 'read', 'write', 'delete'], durationSeconds: 3600, shared: true },
      { name: 'elsewhere', issuers: ['other'], roleArn: ROLE_ARN, bucket: 'other-bucket', region: 'cn-hangzhou', prefix: 'o/{sub}/', actions: ['read'], durationSeconds: 3600 }
    ]
  }
}

async function list (h: Harness, token: string | undefined, headers: Record<string, string> = {}, url = '/grants'): Promise<{ statusCode: number, headers: Record<string, unknown>, json: any }> {
  const res = await h.app.inject({ method: 'GET', url, headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...headers } })
  assertContract(t, exchange(res))
  return { statusCode: res.statusCode, headers: res.headers, json: res.json() }
}

const auditLines = (h: Harness, event: string): any[] => h.logs.map((l) => JSON.parse(l)).filter((l) => l.event === event)

t.test('the grants this caller may use, with her directory, ranges and signing limits; no STS call', async (t) => {
  const h = await build(t, { config })
  const res = await list(h, h.token({ sub: 'alice', email: 'not an email/..' }))
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.ok(res.headers['x-ratelimit-limit'] !== undefined, 'rate limited like /credentials')
  t.strictSame(res.json, {
    grants: [
      { name: 'uploads', bucket: 'oss-test', region: 'cn-hangzhou', endpoint: 'https://oss-cn-hangzhou.aliyuncs.com', prefix: 'dir111/dir111_secondline1/alice/', actions: ['list', 'read', 'write'], durationSeconds: { min: 1500, max: 3600 } },
      { name: 'photos', bucket: 'photos-bucket', region: 'cn-shanghai', endpoint: 'https://oss.example.com', prefix: 'photos/alice/', actions: ['read', 'write'], durationSeconds: { min: 1500, max: 7200 }, signing: { maxBytes: 1024, expiresSeconds: 300, contentTypes: ['image/png'] } }
    ],
    // Named with the reason a request for it gets, and nothing else: not its bucket.
    unusable: [{ name: 'by-email', reason: 'the claim "email" is missing or holds characters a directory name cannot (letters, digits, . _ @ - only, at most 128); a grant prefix can use it hashed, as {email:sha256}' }]
  })
  t.notMatch(JSON.stringify(res.json), /secret-bucket|admin|other|role|acs:ram|\{sub\}|not an email/, 'nothing of other grants, no role, no template, no claim value')
  t.equal(h.emulator.callCount, 0, 'no STS call')
  t.strictSame(auditLines(h, 'credentials.issued'), [], 'no credential made')
})

t.test('what it lists is what vending gives, and the edges of each range are exact', async (t) => {
  const h = await build(t, { config: (c) => ({ ...config(c), rateLimit: { max: 1000, timeWindowMs: 60_000 } }) })
  const token = h.token({ sub: 'bob', role: 'admin' })
  const { json } = await list(h, token)
  t.strictSame(json.grants.map((g: any) => g.name), ['uploads', 'photos', 'admins'], 'a `when` that holds adds its grant')
  for (const g of json.grants) {
    const vended = await h.vend(token, { grant: g.name })
    t.equal(vended.statusCode, 200, `${g.name} vends`)
    for (const k of ['bucket', 'region', 'endpoint', 'prefix', 'actions'] as const) t.strictSame(vended.json[k], g[k], `${g.name}: ${k} as listed`)
    t.equal((await h.vend(token, { grant: g.name, durationSeconds: g.durationSeconds.min })).statusCode, 200, `${g.name}: min is allowed`)
    t.equal((await h.vend(token, { grant: g.name, durationSeconds: g.durationSeconds.min - 1 })).json.code, 'STS_VENDING_DURATION_NOT_ALLOWED', `${g.name}: min - 1 is refused`)
    if (g.durationSeconds.max < 43_200) t.equal((await h.vend(token, { grant: g.name, durationSeconds: g.durationSeconds.max + 1 })).json.code, 'STS_VENDING_DURATION_NOT_ALLOWED', `${g.name}: max + 1 is refused`)
  }
  const unusable = await h.vend(token, { grant: 'by-email' })
  t.equal(unusable.json.code, 'STS_VENDING_CLAIM_NOT_USABLE')
  t.match(unusable.json.message, json.unusable[0].reason, 'the listed reason is the refusal\'s')
})

t.test('a caller with no grant gets an empty list, not a refusal', async (t) => {
  const h = await build(t, { config: (c) => ({ ...config(c), grants: [{ ...(config(c).grants as any[])[4] }] }) })
  const res = await list(h, h.token({ sub: 'alice' }))
  t.equal(res.statusCode, 200)
  t.strictSame(res.json, { grants: [], unusable: [] })
})

t.test('the same refusals as /credentials, each audited as grants.refused', async (t) => {
  const h = await build(t, { config })
  const rows: Array<{ desc: string, token?: string, headers?: Record<string, string>, url?: string, status: number, code: string }> = [
    { desc: 'no token', status: 401, code: 'STS_VENDING_MISSING_TOKEN' },
    { desc: 'an expired token', token: h.token({ sub: 'alice' }, { expiresInSeconds: -120 }), status: 401, code: 'STS_VENDING_INVALID_TOKEN' },
    { desc: 'a malformed Authorization header', token: 'a b', status: 400, code: 'STS_VENDING_BAD_AUTHORIZATION_HEADER' },
    { desc: 'a token in the query', url: `/grants?access_token=${h.token({ sub: 'alice' })}`, status: 400, code: 'STS_VENDING_TOKEN_IN_QUERY' },
    { desc: 'another origin', token: h.token({ sub: 'alice' }), headers: { origin: 'https://evil.example.com' }, status: 403, code: 'STS_VENDING_ORIGIN_NOT_ALLOWED' }
  ]
  for (const row of rows) {
    const res = await list(h, row.token, row.headers, row.url)
    t.equal(res.statusCode, row.status, `${row.desc}: ${row.status}`)
    t.equal(res.json.code, row.code, `${row.desc}: ${row.code}`)
  }
  const expired = await list(h, h.token({ sub: 'alice' }, { expiresInSeconds: -120 }))
  t.match(expired.headers['www-authenticate'], /^Bearer error="invalid_token"/, 'RFC 6750 challenge')
  t.equal(expired.json.reason, 'expired')
  const refused = auditLines(h, 'grants.refused')
  t.strictSame(refused.map((l) => [l.statusCode, l.code]), [[401, 'STS_VENDING_MISSING_TOKEN'], [401, 'STS_VENDING_INVALID_TOKEN'], [403, 'STS_VENDING_ORIGIN_NOT_ALLOWED'], [401, 'STS_VENDING_INVALID_TOKEN']], 'one grants.refused line per 401/403')
  t.strictSame(auditLines(h, 'credentials.refused'), [], 'not recorded as a /credentials refusal')
})

t.test('its own per-caller count: listing does not spend the /credentials budget', async (t) => {
  const h = await build(t, { config })
  const token = h.token({ sub: 'alice' })
  for (let i = 0; i < 5; i++) t.equal((await list(h, token)).statusCode, 200)
  const limited = await list(h, token)
  t.equal(limited.statusCode, 429)
  t.equal(limited.json.code, 'STS_VENDING_RATE_LIMITED')
  t.equal((await h.vend(token, { grant: 'uploads' })).statusCode, 200, '/credentials still answers')
  t.equal(auditLines(h, 'grants.refused').at(-1)?.statusCode, 429)
})

t.test('CORS: a GET preflight from an allowed origin, the headers on the answer', async (t) => {
  const h = await build(t, { config })
  const pre = await h.app.inject({ method: 'OPTIONS', url: '/grants', headers: { origin: ALLOWED, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } })
  assertContract(t, exchange(pre))
  t.equal(pre.statusCode, 204)
  t.equal(pre.headers['access-control-allow-origin'], ALLOWED)
  t.equal(pre.headers['access-control-allow-methods'], 'GET')
  const credentialsPre = await h.app.inject({ method: 'OPTIONS', url: '/credentials', headers: { origin: ALLOWED, 'access-control-request-method': 'POST' } })
  t.equal(credentialsPre.headers['access-control-allow-methods'], 'POST', '/credentials still allows POST only')
  const other = await h.app.inject({ method: 'OPTIONS', url: '/grants', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'GET' } })
  assertContract(t, exchange(other))
  t.equal(other.statusCode, 403)
  const res = await list(h, h.token({ sub: 'alice' }), { origin: ALLOWED })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['access-control-allow-origin'], ALLOWED)
  const refused = await list(h, undefined, { origin: ALLOWED })
  t.equal(refused.headers['access-control-allow-origin'], ALLOWED, 'a refusal is readable too')
})
