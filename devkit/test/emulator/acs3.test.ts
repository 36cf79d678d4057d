// verifyAcs3 against the SDK's own signer (OpenApiUtil.getAuthorization): whatever the SDK
// signs, the verifier accepts; change any signed part and it refuses. Pure, no sockets.
import t from 'tap'
import fc from 'fast-check'
import { stringify } from 'node:querystring'
import { randomBytes } from 'node:crypto'
import { OpenApiUtil } from '@alicloud/openapi-core'
import {
  verifyAcs3, NonceStore, parseQuery, parseAuthorization, acs3Encode, sha256Hex, MAX_CLOCK_SKEW_MS,
  type Acs3Request
} from '../../emulator/acs3.js'

const ID = `testkey${randomBytes(6).toString('hex')}`
const SECRET = randomBytes(24).toString('base64url')
const NOW = Date.UTC(2030, 5, 6, 7, 8, 9)

function acsDate (ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

interface Signed { req: Acs3Request, nonce: string }

/** A request signed by the SDK's signer, shaped the way node:http would hand it over. */
function sdkSigned (query: Record<string, string>, extraHeaders: Record<string, string> = {}, opts: { method?: string, body?: string, secret?: string, date?: number } = {}): Signed {
  const body = Buffer.from(opts.body ?? '')
  const nonce = randomBytes(16).toString('hex')
  const headers: Record<string, string> = {
    host: 'sts.example.test',
    'x-acs-version': '2015-04-01',
    'x-acs-action': 'AssumeRole',
    'user-agent': 'test',
    'x-acs-date': acsDate(opts.date ?? NOW),
    'x-acs-signature-nonce': nonce,
    accept: 'application/json',
    'x-acs-content-sha256': sha256Hex(body),
    ...extraHeaders
  }
  const method = opts.method ?? 'POST'
  const authorization = OpenApiUtil.getAuthorization(
    { method, pathname: '/', query, headers } as unknown as Parameters<typeof OpenApiUtil.getAuthorization>[0],
    'ACS3-HMAC-SHA256', sha256Hex(body), ID, opts.secret ?? SECRET)
  // darabonba's buildURL: querystring.stringify of the query object.
  const qs = stringify(query)
  const distinct: Record<string, string[]> = {}
  for (const [k, v] of Object.entries({ ...headers, authorization })) distinct[k.toLowerCase()] = [v]
  return { req: { method, url: qs === '' ? '/' : `/?${qs}`, headers: distinct, body }, nonce }
}

function verify (req: Acs3Request, nowMs = NOW, nonces = new NonceStore()): ReturnType<typeof verifyAcs3> {
  return verifyAcs3(req, { secretFor: (id) => id === ID ? SECRET : undefined, nowMs, nonces })
}

const key = fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,15}$/)
const value = fc.string({ unit: 'grapheme', maxLength: 40 })
const query = fc.dictionary(key, value, { maxKeys: 6 })
const headerValue = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,30}[\x21-\x7e])?$/)
const extra = fc.dictionary(fc.stringMatching(/^x-acs-[a-z0-9-]{1,12}$/), headerValue, { maxKeys: 3 })

t.test('whatever the SDK signs is accepted, with the query decoded', async (t) => {
  const sorted = (entries: Iterable<[string, string]>): string => JSON.stringify([...entries].sort())
  t.doesNotThrow(() => fc.assert(fc.property(query, extra, (q, h) => {
    const { req } = sdkSigned(q, h)
    const v = verify(req)
    if (!v.ok) throw new Error(`refused: ${v.code} ${v.message}`)
    return v.accessKeyId === ID && sorted(v.params) === sorted(Object.entries(q))
  }), { numRuns: 300 }))
})

t.test('changing any signed part is refused', async (t) => {
  t.doesNotThrow(() => fc.assert(fc.property(fc.dictionary(key, value, { minKeys: 1, maxKeys: 5 }), value, (q, replacement) => {
    const k = Object.keys(q)[0] ?? ''
    fc.pre(q[k] !== replacement)
    const { req } = sdkSigned(q)
    const tampered = { ...req, url: '/?' + stringify({ ...q, [k]: replacement }) }
    const v = verify(tampered)
    return !v.ok && v.code === 'SignatureDoesNotMatch'
  }), { numRuns: 200 }))

  const { req } = sdkSigned({ RoleArn: 'acs:ram::1:role/r' })
  const cases: Array<[string, Acs3Request, string]> = [
    ['method', { ...req, method: 'PUT' }, 'SignatureDoesNotMatch'],
    ['path', { ...req, url: req.url.replace('/?', '/x?') }, 'SignatureDoesNotMatch'],
    ['host', { ...req, headers: { ...req.headers, host: ['evil.example'] } }, 'SignatureDoesNotMatch'],
    ['x-acs-action', { ...req, headers: { ...req.headers, 'x-acs-action': ['GetCallerIdentity'] } }, 'SignatureDoesNotMatch'],
    ['body', { ...req, body: Buffer.from('x') }, 'SignatureDoesNotMatch'],
    ['duplicate header', { ...req, headers: { ...req.headers, 'x-acs-action': ['AssumeRole', 'AssumeRole'] } }, 'IncompleteSignature'],
    ['unsigned content-type', { ...req, headers: { ...req.headers, 'content-type': ['text/plain'] } }, 'IncompleteSignature'],
    ['percent-encoding broken', { ...req, url: req.url + '&a=%E0%A4%A' }, 'InvalidParameter']
  ]
  for (const [name, r, code] of cases) t.match(verify(r), { ok: false, code }, name)
  t.match(verify(req), { ok: true }, 'the original still verifies')
})

t.test('SignedHeaders must cover host and the x-acs headers, sorted and unique', async (t) => {
  const { req } = sdkSigned({ A: '1' })
  const auth = req.headers.authorization?.[0] ?? ''
  const withSigned = (list: string): Acs3Request => ({ ...req, headers: { ...req.headers, authorization: [auth.replace(/SignedHeaders=[^,]+/, `SignedHeaders=${list}`)] } })
  t.match(verify(withSigned('host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce')), { ok: false, code: 'IncompleteSignature' }, 'version unsigned')
  t.match(verify(withSigned('x-acs-action;host;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version')), { ok: false, code: 'IncompleteSignature' }, 'unsorted')
  t.match(verify(withSigned('host;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version')), { ok: false, code: 'IncompleteSignature' }, 'repeated')
  t.match(verify(withSigned('content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version')), { ok: false, code: 'IncompleteSignature' }, 'signed but absent')
})

t.test('a signed body with content-type verifies', async (t) => {
  const { req } = sdkSigned({}, { 'content-type': 'application/x-www-form-urlencoded' }, { body: 'a=1&b=2' })
  t.match(verify(req), { ok: true })
})

t.test('wrong secret, unknown key, malformed Authorization', async (t) => {
  t.match(verify(sdkSigned({ A: '1' }, {}, { secret: 'other' }).req), { ok: false, status: 400, code: 'SignatureDoesNotMatch' })
  const { req } = sdkSigned({ A: '1' })
  const auth = req.headers.authorization?.[0] ?? ''
  t.match(verify({ ...req, headers: { ...req.headers, authorization: [auth.replace(ID, 'testkeyother')] } }), { ok: false, status: 404, code: 'InvalidAccessKeyId.NotFound' })
  for (const bad of ['', 'Bearer x', auth.replace(',SignedHeaders', ', SignedHeaders'), auth.replace(/Signature=.*/, 'Signature=ABC'), auth.toLowerCase()]) {
    t.match(verify({ ...req, headers: { ...req.headers, authorization: [bad] } }), { ok: false, code: 'IncompleteSignature' }, JSON.stringify(bad.slice(0, 40)))
  }
  const { authorization: _a, ...noAuth } = req.headers
  t.match(verify({ ...req, headers: noAuth }), { ok: false, code: 'IncompleteSignature' })
})

t.test('date window and nonce replay', async (t) => {
  const nonces = new NonceStore()
  t.match(verify(sdkSigned({}, {}, { date: NOW - MAX_CLOCK_SKEW_MS }).req, NOW, nonces), { ok: true }, 'exactly 15 minutes old')
  t.match(verify(sdkSigned({}, {}, { date: NOW - MAX_CLOCK_SKEW_MS - 1000 }).req, NOW, nonces), { ok: false, code: 'InvalidTimeStamp.Expired' })
  t.match(verify(sdkSigned({}, {}, { date: NOW + MAX_CLOCK_SKEW_MS + 1000 }).req, NOW, nonces), { ok: false, code: 'InvalidTimeStamp.Expired' })
  t.match(verify(sdkSigned({}, { 'x-acs-date': '2030-06-06T07:08:09.000Z' }).req, NOW, nonces), { ok: false, code: 'InvalidTimeStamp.Format' })
  const { req } = sdkSigned({})
  t.match(verify(req, NOW, nonces), { ok: true })
  t.match(verify(req, NOW + 1000, nonces), { ok: false, code: 'SignatureNonceUsed' })
  // A forged request carrying someone's nonce does not burn it.
  const victim = sdkSigned({})
  const forged = sdkSigned({}, { 'x-acs-signature-nonce': victim.nonce }, { secret: 'wrong' })
  t.match(verify(forged.req, NOW, nonces), { ok: false, code: 'SignatureDoesNotMatch' })
  t.match(verify(victim.req, NOW, nonces), { ok: true })
})

t.test('helpers', async (t) => {
  t.equal(acs3Encode('a b!\'()*~'), 'a%20b%21%27%28%29%2A~')
  t.same(parseQuery('a=1&b=&c&d=x%20y+z'), new Map([['a', '1'], ['b', ''], ['c', ''], ['d', 'x y z']]))
  t.equal(parseQuery('a=1&a=2'), undefined)
  t.equal(parseQuery('=1'), undefined)
  t.equal(parseAuthorization('ACS3-HMAC-SHA256 Credential=id,SignedHeaders=host,Signature=' + 'a'.repeat(63)), undefined)
  t.same(parseAuthorization('ACS3-HMAC-SHA256 Credential=id,SignedHeaders=a;b,Signature=' + 'a'.repeat(64)), { accessKeyId: 'id', signedHeaders: ['a', 'b'], signature: 'a'.repeat(64) })
})
