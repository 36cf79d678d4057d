// POST /uploads/callback over the app: a form signed with a callback, then the callback
// OSS would send, signed the way OSS signs (RSA-MD5 over urldecode(path) + query + "\n" +
// body, the key's URL base64 in x-oss-pub-key-url) with a test key served from an
// allowed prefix. Forged, replayed and out-of-prefix callbacks are refused and never
// forwarded; the forwarded event carries a signature the app can check.
import t from 'tap'
import { createHmac, createSign, generateKeyPairSync } from 'node:crypto'
import { buildE2e, type E2eHarness } from '../../helpers/oss.js'
import { assertContract, exchange } from '../../helpers/contract.js'
import type { Forward } from '../../../src/callback.js'
import { parseConfig } from '../../../src/config/load.js'
import { prepare } from '../../../src/prepare.js'
import { createDevIssuer } from '../../../devkit/dev/issuer.js'
import { baseConfig } from '../../helpers/build.js'

const DIR = 'dir111/dir111_secondline1/'
const SECRET = 'an-upload-webhook-secret-of-32-bytes-or-more'
const KEY_PREFIX = 'https://keys.oss.test/'
const KEY_URL = `${KEY_PREFIX}callback_pub_key_v1.pem`
const oss = generateKeyPairSync('rsa', { modulusLength: 2048 })
const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
const CALLBACK = { url: 'https://sts-vending.example.com/uploads/callback', forwardUrl: 'https://app.internal/uploads/landed', forwardSecretEnv: 'UPLOAD_WEBHOOK_SECRET' }

interface Forwarded { url: string, body: string, headers: Record<string, string> }

async function setup (t: Parameters<typeof buildE2e>[0], answer: (f: Forwarded) => Promise<{ status: number, contentType: string, body: string }> = async () => ({ status: 200, contentType: 'application/json', body: '{"thumbnail":"t.png"}' })) {
  const fetched: string[] = []
  const forwarded: Forwarded[] = []
  const forward: Forward = async (url, body, headers) => {
    const f = { url, body, headers }
    forwarded.push(f)
    return await answer(f)
  }
  const h = await buildE2e(t, {
    env: { UPLOAD_WEBHOOK_SECRET: SECRET },
    config: (base) => ({
      ...base,
      uploads: { callbackKeyUrlPrefixes: [KEY_PREFIX] },
      grants: (base.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, signing: { maxBytes: 64, expiresSeconds: 600, callback: CALLBACK } }))
    }),
    deps: {
      callbacks: {
        fetchKey: async (url) => {
          fetched.push(url)
          return oss.publicKey.export({ type: 'spki', format: 'pem' }).toString()
        },
        forward
      }
    }
  })
  return { h, fetched, forwarded }
}

async function signForm (h: E2eHarness, sub = 'alice'): Promise<{ fields: Record<string, string>, url: string }> {
  const res = await h.app.inject({ method: 'POST', url: '/uploads/form', headers: { authorization: `Bearer ${h.token({ sub })}`, 'content-type': 'application/json' }, payload: { fileName: 'cat.png' } })
  if (res.statusCode !== 200) throw new Error(res.body)
  return res.json()
}

/** OSS's `${name}` callback variable. */
const variable = (name: string): string => '$' + `{${name}}`

/** The body OSS sends for this form: its callbackBody with the variables filled. */
function ossBody (fields: Record<string, string>, object = fields.key as string, size = 5): string {
  const param = JSON.parse(Buffer.from(fields.callback as string, 'base64').toString('utf8'))
  return (param.callbackBody as string)
    .replace(variable('bucket'), JSON.stringify('oss-test'))
    .replace(variable('object'), JSON.stringify(object))
    .replace(variable('size'), String(size))
    .replace(variable('mimeType'), JSON.stringify('image/png'))
    .replace(variable('etag'), JSON.stringify('"5D41402ABC4B2A76B9719D911017C592"'))
}

async function callback (h: E2eHarness, body: string, opts: { key?: typeof oss.privateKey, keyUrl?: string, path?: string, authorization?: string | null } = {}) {
  const path = opts.path ?? '/uploads/callback'
  const signature = createSign('RSA-MD5').update(`${decodeURIComponent(path.split('?')[0] as string)}${path.includes('?') ? path.slice(path.indexOf('?')) : ''}\n${body}`).sign(opts.key ?? oss.privateKey).toString('base64')
  const res = await h.app.inject({
    method: 'POST',
    url: path,
    headers: {
      'content-type': 'application/json',
      ...(opts.authorization === null ? {} : { authorization: opts.authorization ?? signature }),
      'x-oss-pub-key-url': Buffer.from(opts.keyUrl ?? KEY_URL).toString('base64')
    },
    payload: body
  })
  return res
}

t.test('the form carries the callback, pinned with eq; the ticket is opaque and names no subject', async (t) => {
  const { h } = await setup(t)
  const form = await signForm(h)
  const policy = JSON.parse(Buffer.from(form.fields.policy as string, 'base64').toString('utf8'))
  t.ok(policy.conditions.some((c: unknown) => JSON.stringify(c) === JSON.stringify(['eq', '$callback', form.fields.callback])), 'callback pinned by eq')
  t.ok(policy.conditions.some((c: unknown) => JSON.stringify(c) === JSON.stringify(['eq', '$x-oss-forbid-overwrite', 'true'])), 'forbid-overwrite pinned')
  const param = JSON.parse(Buffer.from(form.fields.callback as string, 'base64').toString('utf8'))
  t.equal(param.callbackUrl, CALLBACK.url)
  t.equal(param.callbackBodyType, 'application/json')
  t.match(param.callbackBody, /\$\{bucket\}.*\$\{object\}.*\$\{size\}.*\$\{mimeType\}.*\$\{etag\}.*"ticket":"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"/)
  t.notOk(param.callbackBody.includes('alice'), 'the subject is not in the ticket')
})

t.test('a callback signed as OSS signs is answered with the app\'s JSON, forwarded once, signed; a replay is 409', async (t) => {
  const { h, fetched, forwarded } = await setup(t)
  const form = await signForm(h)
  const body = ossBody(form.fields)
  const res = await callback(h, body)
  assertContract(t, exchange(res))
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { thumbnail: 't.png' }, 'the app\'s answer, relayed to OSS (and by OSS to the browser)')
  t.same(fetched, [KEY_URL])
  t.equal(forwarded.length, 1)
  const f = forwarded[0]!
  t.equal(f.url, CALLBACK.forwardUrl)
  const event = JSON.parse(f.body)
  t.match(event, { type: 'upload.completed', grant: 'uploads', bucket: 'oss-test', key: form.fields.key, size: 5, contentType: 'image/png', etag: '5D41402ABC4B2A76B9719D911017C592' })
  t.match(event.caller, /^[0-9a-f]{32}$/)
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(f.headers['x-sts-vending-signature'] ?? '')
  t.ok(m !== null, 'X-Sts-Vending-Signature: t=..,v1=..')
  t.equal(m?.[2], createHmac('sha256', Buffer.from(SECRET)).update(`${m?.[1]}.${f.body}`).digest('hex'), 'v1 is HMAC-SHA256(secret, "<t>.<body>")')
  t.ok(Math.abs(Number(m?.[1]) - Date.now() / 1000) < 60)

  const replay = await callback(h, body)
  assertContract(t, exchange(replay))
  t.equal(replay.statusCode, 409)
  t.equal(replay.json().code, 'STS_VENDING_CALLBACK_REPLAYED')
  t.equal(forwarded.length, 1, 'a replay is not forwarded again')
  t.same(fetched, [KEY_URL], 'the key is cached')

  const audit = h.logs.filter((l) => l.includes('"event":"upload.completed"')).map((l) => JSON.parse(l))
  t.equal(audit.length, 1)
  t.match(audit[0], { grant: 'uploads', caller: event.caller, key: form.fields.key, size: 5, contentType: 'image/png', etag: event.etag, delivered: true })
  const metrics = (await h.app.inject('/metrics')).body
  t.match(metrics, /stsv_upload_callbacks_total\{outcome="delivered"\} 1/)
  t.match(metrics, /stsv_upload_callbacks_total\{outcome="replayed"\} 1/)
})

t.test('forged, foreign-key, out-of-prefix, mismatched and malformed callbacks are refused and never forwarded', async (t) => {
  const { h, fetched, forwarded } = await setup(t)
  const form = await signForm(h)
  const body = ossBody(form.fields)
  const otherForm = await signForm(h, 'bob')
  const cases: Array<{ desc: string, body: string, opts?: Parameters<typeof callback>[2], status: number, code: string }> = [
    { desc: 'signed by another key', body, opts: { key: other.privateKey }, status: 403, code: 'STS_VENDING_CALLBACK_NOT_VERIFIED' },
    { desc: 'a key URL outside the allowed prefixes', body, opts: { keyUrl: 'https://evil.example.com/key.pem' }, status: 403, code: 'STS_VENDING_CALLBACK_NOT_VERIFIED' },
    { desc: 'a key URL that only starts like the prefix', body, opts: { keyUrl: 'https://keys.oss.test.evil.example.com/key.pem' }, status: 403, code: 'STS_VENDING_CALLBACK_NOT_VERIFIED' },
    { desc: 'no authorization', body, opts: { authorization: null }, status: 403, code: 'STS_VENDING_CALLBACK_NOT_VERIFIED' },
    { desc: 'a malformed authorization', body, opts: { authorization: 'not base64!' }, status: 403, code: 'STS_VENDING_CALLBACK_NOT_VERIFIED' },
    { desc: 'signed for another path', body, opts: { path: '/uploads/callback?x=1' }, status: 403, code: 'STS_VENDING_CALLBACK_NOT_VERIFIED' },
    { desc: 'another object than the ticket\'s', body: ossBody(form.fields, `${DIR}alice/other.png`), status: 403, code: 'STS_VENDING_CALLBACK_NOT_VERIFIED' },
    { desc: 'bob\'s object with alice\'s ticket', body: ossBody(form.fields, otherForm.fields.key), status: 403, code: 'STS_VENDING_CALLBACK_NOT_VERIFIED' },
    { desc: 'a tampered ticket', body: body.replace(/"ticket":"([^.]+)\./, (_m, p: string) => `"ticket":"${p.slice(0, -2)}AA.`), status: 403, code: 'STS_VENDING_CALLBACK_NOT_VERIFIED' },
    { desc: 'not the body this service asked for', body: '{"hello":1}', status: 400, code: 'STS_VENDING_BAD_REQUEST' }
  ]
  for (const c of cases) {
    const path = c.opts?.path
    // "signed for another path": signed over one path, sent to the real one.
    const res = path !== undefined
      ? await h.app.inject({ method: 'POST', url: '/uploads/callback', headers: { 'content-type': 'application/json', authorization: createSign('RSA-MD5').update(`${path}\n${c.body}`).sign(oss.privateKey).toString('base64'), 'x-oss-pub-key-url': Buffer.from(KEY_URL).toString('base64') }, payload: c.body })
      : await callback(h, c.body, c.opts)
    assertContract(t, exchange(res))
    t.same({ status: res.statusCode, code: res.json().code }, { status: c.status, code: c.code }, c.desc)
  }
  t.equal(forwarded.length, 0, 'nothing was forwarded')
  t.notOk(fetched.some((u) => !u.startsWith(KEY_PREFIX)), 'no URL outside the prefixes was fetched')
  const big = await h.app.inject({ method: 'POST', url: '/uploads/callback', headers: { 'content-type': 'application/json' }, payload: 'x'.repeat(65 * 1024) })
  t.equal(big.statusCode, 413, 'over 64 KiB')
  const refusedLines = h.logs.filter((l) => l.includes('upload.callback_refused'))
  t.ok(refusedLines.length >= cases.length, 'one log line each')
  t.notOk(h.logs.some((l) => l.includes(SECRET)), 'the secret is never logged')
})

t.test('a forward that fails or times out: OSS gets a 200 saying so, the audit line and the metric still count it', async (t) => {
  const { h, forwarded } = await setup(t, async () => { throw new Error('timeout') })
  const form = await signForm(h)
  const res = await callback(h, ossBody(form.fields))
  t.equal(res.statusCode, 200)
  t.match(res.json(), { ok: false, key: form.fields.key })
  t.equal(forwarded.length, 1)
  t.ok(h.logs.some((l) => l.includes('"event":"upload.completed"') && l.includes('"delivered":false')))
  t.match((await h.app.inject('/metrics')).body, /stsv_upload_callbacks_total\{outcome="undelivered"\} 1/)
})

t.test('an app answering without JSON: OSS gets {"ok":true,"key":…}', async (t) => {
  const { h } = await setup(t, async () => ({ status: 204, contentType: '', body: '' }))
  const form = await signForm(h)
  const res = await callback(h, ossBody(form.fields))
  t.same(res.json(), { ok: true, key: form.fields.key })
})

t.test('a callback grant without its secret, or with a plain-http url off loopback, is refused at load', async (t) => {
  const issuer = createDevIssuer()
  const base = baseConfig(issuer, 'http://127.0.0.1:1')
  const withCallback = (callback: unknown, extra: Record<string, unknown> = {}) =>
    parseConfig({ ...base, ...extra, grants: (base.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, signing: { callback } })) })
  t.throws(() => prepare(withCallback(CALLBACK), {}), /UPLOAD_WEBHOOK_SECRET must hold at least 32 bytes \(it is not set\)/)
  t.throws(() => prepare(withCallback(CALLBACK), { UPLOAD_WEBHOOK_SECRET: 'short' }), /at least 32 bytes/)
  t.throws(() => prepare(withCallback({ ...CALLBACK, url: 'http://sts.example.com/uploads/callback' }), { UPLOAD_WEBHOOK_SECRET: SECRET }), /signing\.callback\.url: must be https/)
  t.throws(() => prepare(withCallback({ ...CALLBACK, forwardUrl: 'http://app.internal/x' }), { UPLOAD_WEBHOOK_SECRET: SECRET }), /signing\.callback\.forwardUrl: must be https/)
  t.throws(() => prepare(withCallback(CALLBACK, { uploads: { callbackKeyUrlPrefixes: ['http://keys.example.com/'] } }), { UPLOAD_WEBHOOK_SECRET: SECRET }), /callbackKeyUrlPrefixes\[0\]: must be https/)
  t.throws(() => parseConfig({ ...base, grants: (base.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, signing: { callback: { url: CALLBACK.url, forwardUrl: CALLBACK.forwardUrl } } })) }), /forwardSecretEnv/)
  t.doesNotThrow(() => prepare(withCallback({ ...CALLBACK, url: 'http://127.0.0.1:8080/uploads/callback', forwardUrl: 'http://localhost:3000/landed' }), { UPLOAD_WEBHOOK_SECRET: SECRET }), 'plain http on loopback, for development')
})
