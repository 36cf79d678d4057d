// POST /uploads/form and /uploads/url over the app, with the STS emulator behind it
// (through the real SDK) and the OSS emulator in front of the browser: forms posted with
// Node's fetch + FormData, URLs used with plain fetch. Every answer is contract-checked.
import t from 'tap'
import { buildE2e, type E2eHarness } from '../../helpers/oss.js'
import { assertContract, exchange } from '../../helpers/contract.js'
import { isAllowedByAll } from '../../../devkit/policy/evaluate.js'
import { ROLE_ARN } from '../../helpers/build.js'

const DIR = 'dir111/dir111_secondline1/'
const F = '$' + '{filename}'
// Most tests below are about keys the caller names; `keys: unique` (the default) has its own.
const SIGNING = { maxBytes: 64, expiresSeconds: 600, keys: 'caller' }

type Grant = Record<string, unknown>
const withGrants = (...extra: Grant[]) => (base: Record<string, unknown>) => {
  const [g] = base.grants as Grant[]
  return { ...base, grants: [{ ...g, signing: SIGNING }, ...extra.map((e) => ({ ...g, ...e }))] }
}

interface Answer { statusCode: number, json: any, text: string, headers: Record<string, unknown> }

/** POST an /uploads route; the answer is contract-checked and its token and signature remembered as secrets. */
async function sign (t: { fail: (m: string) => void }, h: E2eHarness, route: 'form' | 'url', token: string | undefined, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await h.app.inject({
    method: 'POST',
    url: `/uploads/${route}`,
    headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body)
  })
  assertContract(t, exchange(res))
  let json: any
  try { json = res.json() } catch { json = undefined }
  if (res.statusCode === 200 && route === 'form') {
    h.secret(json.fields['x-oss-security-token'])
    h.secret(json.fields['x-oss-signature'])
  }
  if (res.statusCode === 200 && route === 'url') {
    const u = new URL(json.url)
    h.secret(u.searchParams.get('x-oss-security-token') as string)
    h.secret(u.searchParams.get('x-oss-signature') as string)
  }
  return { statusCode: res.statusCode, json, text: res.body, headers: res.headers }
}

async function postForm (url: string, fields: Record<string, string>, file: { data: string, name: string, type?: string }): Promise<{ status: number, body: string }> {
  const fd = new FormData()
  for (const [k, v] of Object.entries(fields)) fd.append(k, v)
  fd.append('file', new Blob([file.data], { type: file.type ?? 'application/octet-stream' }), file.name)
  const res = await fetch(url, { method: 'POST', body: fd })
  return { status: res.status, body: await res.text() }
}

t.test('a form: the contract, a real multipart upload into the directory, and nowhere else', async (t) => {
  const h = await buildE2e(t, { config: withGrants() })
  const before = Date.now()
  const res = await sign(t, h, 'form', h.token({ sub: 'alice' }), {})
  t.equal(res.statusCode, 200, res.text)
  t.equal(res.headers['cache-control'], 'no-store')
  t.strictSame(Object.keys(res.json), ['url', 'fields', 'keyPrefix', 'expiration'])
  t.equal(res.json.url, `${h.oss.url}/oss-test`, 'path-style off aliyuncs.com')
  t.equal(res.json.keyPrefix, `${DIR}alice/`)
  t.strictSame(Object.keys(res.json.fields), ['key', 'policy', 'x-oss-signature-version', 'x-oss-credential', 'x-oss-date', 'x-oss-security-token', 'success_action_status', 'x-oss-signature'])
  t.equal(res.json.fields.key, `${DIR}alice/${F}`)
  const expiresAt = Date.parse(res.json.expiration)
  t.ok(expiresAt <= Date.now() + 600_000 && expiresAt >= before - 1000 + 600_000, 'expiration is expiresSeconds from now')
  const policy = JSON.parse(Buffer.from(res.json.fields.policy, 'base64').toString('utf8'))
  t.strictSame(policy.conditions.slice(5), [['starts-with', '$key', `${DIR}alice/`], ['content-length-range', 0, 64], ['eq', '$success_action_status', '201']])

  const up = await postForm(res.json.url, res.json.fields, { data: 'hello', name: 'hello.txt' })
  t.equal(up.status, 201, up.body)
  t.equal(h.oss.object(`${DIR}alice/hello.txt`)?.body.toString(), 'hello')
  const outside = await postForm(res.json.url, { ...res.json.fields, key: `${DIR}bob/x.txt` }, { data: 'x', name: 'x.txt' })
  t.equal(outside.status, 403, 'another user\'s directory is refused by OSS')
  const big = await postForm(res.json.url, res.json.fields, { data: 'x'.repeat(65), name: 'big.bin' })
  t.match(big.body, /EntityTooLarge/, 'over the size is refused by OSS')
  t.same(h.oss.keys(), [`${DIR}alice/hello.txt`])

  // The one AssumeRole: the grant's signing credential, covering every caller's directory, signing actions only.
  t.equal(h.emulator.callCount, 1)
  const call = h.emulator.calls[0]!
  t.equal(call.roleArn, ROLE_ARN)
  t.equal(call.roleSessionName, 'sign@uploads')
  const session = JSON.parse(call.policy!)
  t.strictSame(session.Statement, [{ Effect: 'Allow', Action: ['oss:PutObject', 'oss:GetObject'], Resource: [`acs:oss:*:*:oss-test/${DIR}*`] }])
  t.notOk(isAllowedByAll([session], { action: 'oss:DeleteObject', resource: `acs:oss:*:*:oss-test/${DIR}alice/x` }), 'no delete')
  t.notOk(isAllowedByAll([session], { action: 'oss:PutObject', resource: 'acs:oss:*:*:oss-test/other/x' }), 'nothing outside the grant\'s tree')
  const secret = h.emulator.issued(call.outcome === 'ok' ? h.oss.requests.find((r) => r.accessKeyId !== undefined)!.accessKeyId! : '')?.accessKeySecret
  t.ok(secret !== undefined && !res.text.includes(secret), 'the signing secret never reaches the caller')
})

t.test('keys: unique (the default): two forms get two keys, each pinned; a form writes once', async (t) => {
  const h = await buildE2e(t, { config: withGrants({ name: 'once', signing: { maxBytes: 64, expiresSeconds: 600 } }) })
  const token = h.token({ sub: 'alice' })
  const a = await sign(t, h, 'form', token, { grant: 'once', fileName: 'notes.txt' })
  const b = await sign(t, h, 'form', token, { grant: 'once', fileName: 'notes.txt' })
  t.equal(a.statusCode, 200, a.text)
  t.not(a.json.fields.key, b.json.fields.key, 'two forms, two keys')
  for (const f of [a, b]) {
    t.match(f.json.fields.key, new RegExp(`^${DIR}alice/[0-9a-f]{32}/notes\\.txt$`))
    t.equal(f.json.keyPrefix, f.json.fields.key)
    const conditions = JSON.parse(Buffer.from(f.json.fields.policy, 'base64').toString('utf8')).conditions
    t.strictSame(conditions.slice(5), [['eq', '$key', f.json.fields.key], ['content-length-range', 0, 64], ['eq', '$success_action_status', '201'], ['eq', '$x-oss-forbid-overwrite', 'true']])
    t.equal(f.json.fields['x-oss-forbid-overwrite'], 'true')
  }
  t.equal((await postForm(a.json.url, a.json.fields, { data: 'one', name: 'whatever.txt' })).status, 201)
  t.equal(h.oss.object(a.json.fields.key)?.body.toString(), 'one')
  t.equal((await postForm(a.json.url, a.json.fields, { data: 'two', name: 'whatever.txt' })).status, 409, 'the same form again: FileAlreadyExists')
  t.equal((await postForm(a.json.url, { ...a.json.fields, key: `${DIR}alice/other.txt` }, { data: 'x', name: 'x' })).status, 403, 'another key')
  t.equal((await postForm(a.json.url, { ...a.json.fields, 'x-oss-forbid-overwrite': 'false' }, { data: 'x', name: 'x' })).status, 403, 'overwriting cannot be turned back on')
  t.equal(h.oss.object(a.json.fields.key)?.body.toString(), 'one')
  t.equal((await sign(t, h, 'form', token, { grant: 'once', key: `${DIR}alice/x` })).json.code, 'STS_VENDING_KEY_NOT_ALLOWED', 'no caller keys')
  const put = await sign(t, h, 'url', token, { grant: 'once', key: `${DIR}alice/put.txt`, method: 'PUT' })
  t.strictSame(put.json.headers, { 'Content-Type': 'application/octet-stream', 'x-oss-forbid-overwrite': 'true' })
  t.equal((await fetch(put.json.url, { method: 'PUT', headers: put.json.headers, body: 'p' })).status, 200)
  t.equal((await fetch(put.json.url, { method: 'PUT', headers: put.json.headers, body: 'q' })).status, 409, 'a PUT URL cannot overwrite')
})

t.test('a fixed key, type and smaller size narrow the form; OSS enforces them', async (t) => {
  const h = await buildE2e(t, { config: withGrants() })
  const res = await sign(t, h, 'form', h.token({ sub: 'alice' }), { key: `${DIR}alice/avatar.png`, contentType: 'image/png', maxBytes: 4 })
  t.equal(res.statusCode, 200, res.text)
  t.equal(res.json.fields['Content-Type'], 'image/png')
  t.equal(res.json.fields['x-oss-content-type'], 'image/png')
  t.equal(res.json.keyPrefix, `${DIR}alice/avatar.png`)
  t.equal((await postForm(res.json.url, res.json.fields, { data: 'png!', name: 'whatever.png', type: 'image/png' })).status, 201)
  t.equal(h.oss.object(`${DIR}alice/avatar.png`)?.contentType, 'image/png')
  t.equal((await postForm(res.json.url, { ...res.json.fields, key: `${DIR}alice/other.png` }, { data: 'x', name: 'x' })).status, 403, 'another key')
  t.equal((await postForm(res.json.url, { ...res.json.fields, 'Content-Type': 'text/html' }, { data: 'x', name: 'x' })).status, 403, 'another type')
  t.equal((await postForm(res.json.url, { ...res.json.fields, 'x-oss-content-type': 'text/html' }, { data: 'x', name: 'x' })).status, 403, 'another type in the field OSS stores first')
  t.equal((await postForm(res.json.url, res.json.fields, { data: '12345', name: 'x' })).status, 400, 'over the narrowed size')
})

t.test('a grant type allow-list: `in` for forms, required and signed for PUT URLs', async (t) => {
  const h = await buildE2e(t, { config: (base) => ({ ...base, grants: (base.grants as Grant[]).map((g) => ({ ...g, signing: { ...SIGNING, contentTypes: ['image/png', 'image/jpeg'] } })) }) })
  const token = h.token({ sub: 'alice' })
  const form = await sign(t, h, 'form', token, {})
  const policy = JSON.parse(Buffer.from(form.json.fields.policy, 'base64').toString('utf8'))
  t.strictSame(policy.conditions.slice(-2), [['in', '$content-type', ['image/png', 'image/jpeg']], ['in', '$x-oss-content-type', ['image/png', 'image/jpeg']]])
  const typed = (type: string) => ({ ...form.json.fields, 'Content-Type': type, 'x-oss-content-type': type })
  t.equal((await postForm(form.json.url, typed('image/jpeg'), { data: 'jpg', name: 'a.jpg', type: 'text/html' })).status, 201)
  t.equal(h.oss.object(`${DIR}alice/a.jpg`)?.contentType, 'image/jpeg', 'stored as signed, whatever the file part says')
  t.equal((await postForm(form.json.url, typed('image/gif'), { data: 'gif', name: 'a.gif' })).status, 403)
  t.equal((await postForm(form.json.url, { ...typed('image/png'), 'x-oss-content-type': 'text/html' }, { data: 'h', name: 'a.html' })).status, 403, 'text/html through x-oss-content-type')
  t.equal((await postForm(form.json.url, { ...form.json.fields, 'Content-Type': 'image/png' }, { data: 'h', name: 'b.html', type: 'text/html' })).status, 403, 'without x-oss-content-type the file part could choose: refused')
  t.equal((await postForm(form.json.url, { ...typed('image/png'), 'x-oss-object-acl': 'public-read' }, { data: 'p', name: 'c.png' })).status, 403, 'an unnamed ACL field needs oss:PutObjectAcl, which signing lacks')
  t.equal((await postForm(form.json.url, { ...typed('image/png'), 'x-oss-meta-note': 'hi' }, { data: 'p', name: 'd.png' })).status, 201, 'other unnamed fields are accepted, as OSS does')
  t.same(h.oss.keys(), [`${DIR}alice/a.jpg`, `${DIR}alice/d.png`])

  t.equal((await sign(t, h, 'url', token, { key: `${DIR}alice/a.png`, method: 'PUT' })).json.code, 'STS_VENDING_CONTENT_TYPE_NOT_ALLOWED', 'PUT needs a type')
  t.equal((await sign(t, h, 'url', token, { key: `${DIR}alice/a.gif`, method: 'PUT', contentType: 'image/gif' })).json.code, 'STS_VENDING_CONTENT_TYPE_NOT_ALLOWED')
  t.equal((await sign(t, h, 'form', token, { contentType: 'image/gif' })).json.code, 'STS_VENDING_CONTENT_TYPE_NOT_ALLOWED')
  const put = await sign(t, h, 'url', token, { key: `${DIR}alice/a.png`, method: 'PUT', contentType: 'image/png' })
  t.strictSame(put.json.headers, { 'Content-Type': 'image/png' })
  t.equal((await fetch(put.json.url, { method: 'PUT', headers: put.json.headers, body: 'png' })).status, 200, 'sent with the headers as returned')
  t.equal((await fetch(put.json.url, { method: 'PUT', headers: { 'Content-Type': 'image/gif' }, body: 'gif' })).status, 403, 'another type breaks the signature')
})

t.test('URLs: PUT then GET with plain fetch; another method or key is refused by OSS', async (t) => {
  const h = await buildE2e(t, { config: withGrants() })
  const token = h.token({ sub: 'alice' })
  const put = await sign(t, h, 'url', token, { key: `${DIR}alice/doc.txt`, method: 'PUT' })
  t.equal(put.statusCode, 200, put.text)
  t.strictSame(Object.keys(put.json), ['url', 'method', 'headers', 'expiration'])
  t.equal(put.json.method, 'PUT')
  t.strictSame(put.json.headers, { 'Content-Type': 'application/octet-stream' }, 'a type is always signed for PUT, so a browser cannot add its own')
  const u = new URL(put.json.url)
  t.equal(u.pathname, `/oss-test/${DIR}alice/doc.txt`)
  t.equal(u.searchParams.get('x-oss-expires'), '600')
  t.equal((await fetch(put.json.url, { method: 'PUT', headers: put.json.headers, body: 'the doc' })).status, 200)
  const get = await sign(t, h, 'url', token, { key: `${DIR}alice/doc.txt`, method: 'GET' })
  t.strictSame(get.json.headers, {})
  t.equal(await (await fetch(get.json.url)).text(), 'the doc')
  t.equal((await fetch(get.json.url, { method: 'DELETE' })).status, 403, 'another method')
  t.equal((await fetch(put.json.url.replace('/alice/doc.txt', '/bob/doc.txt'), { method: 'PUT', headers: put.json.headers, body: 'x' })).status, 403, 'another key')
  t.equal(h.emulator.callCount, 1, 'one signing credential for both')
})

t.test('the same request within one second is answered with the same bytes; the next second is signed afresh, and both work', async (t) => {
  let clock = Date.now()
  const h = await buildE2e(t, { config: withGrants(), deps: { now: () => clock } })
  const token = h.token({ sub: 'alice' })
  const ask = async () => await sign(t, h, 'url', token, { key: `${DIR}alice/same.txt`, method: 'PUT' })
  const first = await ask()
  t.equal(first.statusCode, 200, first.text)
  const again = await ask()
  t.equal(again.text, first.text, 'signed again, byte for byte')
  t.equal((await ask()).text, first.text, 'the kept answer\'s kept bytes')
  clock += 1000
  const later = await ask()
  t.equal(later.statusCode, 200)
  t.not(later.text, first.text, 'a second later: another signature')
  t.equal(Date.parse(later.json.expiration) - Date.parse(first.json.expiration), 1000)
  for (const a of [again, later]) t.equal((await fetch(a.json.url, { method: 'PUT', headers: a.json.headers, body: 'x' })).status, 200, 'OSS takes it')
})

t.test('1,000 distinct callers of one grant cost one AssumeRole', async (t) => {
  const h = await buildE2e(t, { config: withGrants() })
  const tokens = Array.from({ length: 1000 }, (_v, i) => h.issuer.mint({ sub: `user${i}` }))
  const answers = await Promise.all(tokens.map(async (token, i) => {
    const res = await h.app.inject({ method: 'POST', url: i % 2 === 0 ? '/uploads/form' : '/uploads/url', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: i % 2 === 0 ? '{}' : JSON.stringify({ key: `${DIR}user${i}/f.bin`, method: 'PUT' }) })
    return { i, status: res.statusCode, body: res.json() }
  }))
  t.equal(answers.filter((a) => a.status === 200).length, 1000, 'all signed')
  t.ok(answers.every((a) => a.i % 2 === 1 || a.body.keyPrefix === `${DIR}user${a.i}/`), 'each in its own directory')
  t.equal(h.emulator.callCount, 1, 'exactly one AssumeRole')
  const metrics = await h.app.inject('/metrics')
  t.match(metrics.body, /stsv_uploads_signed_total\{grant="uploads",kind="form"\} 500/)
  t.match(metrics.body, /stsv_uploads_signed_total\{grant="uploads",kind="put_url"\} 500/)
})

t.test('refusals: clear 4xx codes, and none reaches STS', async (t) => {
  const h = await buildE2e(t, { config: withGrants({ name: 'plain' }, { name: 'readonly', actions: ['read'], signing: SIGNING }, { name: 'writeonly', actions: ['write'], signing: SIGNING }) })
  const token = h.token({ sub: 'alice' })
  const cases: Array<{ desc: string, route: 'form' | 'url', body: unknown, token?: string | null, status: number, code: string }> = [
    { desc: 'no token', route: 'form', body: { grant: 'uploads' }, token: null, status: 401, code: 'STS_VENDING_MISSING_TOKEN' },
    { desc: 'a bad token', route: 'url', body: { grant: 'uploads', key: `${DIR}alice/a`, method: 'GET' }, token: token.slice(0, -4) + 'AAAA', status: 401, code: 'STS_VENDING_INVALID_TOKEN' },
    { desc: 'a grant without signing', route: 'form', body: { grant: 'plain' }, status: 403, code: 'STS_VENDING_SIGNING_NOT_ENABLED' },
    { desc: 'an unknown grant', route: 'form', body: { grant: 'nope' }, status: 403, code: 'STS_VENDING_GRANT_NOT_ALLOWED' },
    { desc: 'several grants, none named', route: 'form', body: {}, status: 403, code: 'STS_VENDING_GRANT_AMBIGUOUS' },
    { desc: 'a key in another user\'s directory', route: 'form', body: { grant: 'uploads', key: `${DIR}bob/x` }, status: 403, code: 'STS_VENDING_KEY_NOT_ALLOWED' },
    { desc: 'a key in a lookalike sibling', route: 'url', body: { grant: 'uploads', key: `${DIR}alice2/x`, method: 'PUT' }, status: 403, code: 'STS_VENDING_KEY_NOT_ALLOWED' },
    { desc: '..', route: 'form', body: { grant: 'uploads', key: `${DIR}alice/../bob/x` }, status: 403, code: 'STS_VENDING_KEY_NOT_ALLOWED' },
    { desc: '//', route: 'url', body: { grant: 'uploads', key: `${DIR}alice//x`, method: 'GET' }, status: 403, code: 'STS_VENDING_KEY_NOT_ALLOWED' },
    { desc: 'a wildcard', route: 'url', body: { grant: 'uploads', key: `${DIR}alice/*`, method: 'GET' }, status: 403, code: 'STS_VENDING_KEY_NOT_ALLOWED' },
    { desc: 'another placeholder', route: 'form', body: { grant: 'uploads', key: `${DIR}alice/$` + '{x}' }, status: 403, code: 'STS_VENDING_KEY_NOT_ALLOWED' },
    { desc: 'the file-name placeholder in a URL', route: 'url', body: { grant: 'uploads', key: `${DIR}alice/${F}`, method: 'PUT' }, status: 403, code: 'STS_VENDING_KEY_NOT_ALLOWED' },
    { desc: 'a control character', route: 'form', body: { grant: 'uploads', key: `${DIR}alice/a\u0007b` }, status: 403, code: 'STS_VENDING_KEY_NOT_ALLOWED' },
    { desc: 'an over-long key', route: 'form', body: { grant: 'uploads', key: `${DIR}alice/` + 'a'.repeat(1100) }, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'a wider size', route: 'form', body: { grant: 'uploads', maxBytes: 65 }, status: 403, code: 'STS_VENDING_SIZE_NOT_ALLOWED' },
    { desc: 'a size of 0', route: 'form', body: { grant: 'uploads', maxBytes: 0 }, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'a malformed content type', route: 'form', body: { grant: 'uploads', contentType: 'text/html; charset=utf-8' }, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'an unknown field', route: 'form', body: { grant: 'uploads', acl: 'public-read' }, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'another method', route: 'url', body: { grant: 'uploads', key: `${DIR}alice/a`, method: 'DELETE' }, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'a URL without key', route: 'url', body: { grant: 'uploads', method: 'GET' }, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'a content type on GET', route: 'url', body: { grant: 'uploads', key: `${DIR}alice/a`, method: 'GET', contentType: 'text/plain' }, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'PUT without write', route: 'url', body: { grant: 'readonly', key: `${DIR}alice/a`, method: 'PUT' }, status: 403, code: 'STS_VENDING_ACTIONS_NOT_ALLOWED' },
    { desc: 'a form without write', route: 'form', body: { grant: 'readonly' }, status: 403, code: 'STS_VENDING_ACTIONS_NOT_ALLOWED' },
    { desc: 'GET without read', route: 'url', body: { grant: 'writeonly', key: `${DIR}alice/a`, method: 'GET' }, status: 403, code: 'STS_VENDING_ACTIONS_NOT_ALLOWED' },
    { desc: 'not JSON', route: 'form', body: '{"grant":', status: 400, code: 'STS_VENDING_BAD_REQUEST' }
  ]
  for (const c of cases) {
    const res = await sign(t, h, c.route, c.token === null ? undefined : (c.token ?? token), c.body)
    t.same({ status: res.statusCode, code: res.json?.code }, { status: c.status, code: c.code }, c.desc)
  }
  t.equal(h.emulator.callCount, 0, 'no refusal reached STS')
  t.ok(h.logs.some((l) => l.includes('"event":"upload.refused"') && l.includes('STS_VENDING_KEY_NOT_ALLOWED')), 'refusals are audited')
})

t.test('the audit line says what was signed, never the signature, policy or token', async (t) => {
  const h = await buildE2e(t, { config: withGrants() })
  const token = h.token({ sub: 'alice' })
  const form = await sign(t, h, 'form', token, { maxBytes: 10 })
  const url = await sign(t, h, 'url', token, { key: `${DIR}alice/a.txt`, method: 'GET' })
  const audit = h.logs.filter((l) => l.includes('"event":"upload.signed"')).map((l) => JSON.parse(l))
  t.equal(audit.length, 2)
  t.match(audit[0], { log: 'audit', event: 'upload.signed', subject: 'alice', grant: 'uploads', kind: 'form', method: 'POST', keyPrefix: `${DIR}alice/`, maxBytes: 10, expiration: form.json.expiration })
  t.match(audit[1], { event: 'upload.signed', kind: 'url', method: 'GET', key: `${DIR}alice/a.txt`, expiration: url.json.expiration })
  for (const l of h.logs) {
    t.notOk(l.includes(form.json.fields.policy.slice(0, 40)), 'no policy in logs')
    t.notOk(l.includes(new URL(url.json.url).searchParams.get('x-oss-signature')!), 'no URL signature in logs')
  }
})

t.test('the per-caller rate limit applies to signing', async (t) => {
  const h = await buildE2e(t, { config: (base) => ({ ...withGrants()(base), rateLimit: { max: 2, timeWindowMs: 60_000 } }) })
  const alice = h.token({ sub: 'alice' })
  t.equal((await sign(t, h, 'form', alice, {})).statusCode, 200)
  t.equal((await sign(t, h, 'form', alice, {})).statusCode, 200)
  const third = await sign(t, h, 'form', alice, {})
  t.equal(third.statusCode, 429)
  t.equal(third.json.code, 'STS_VENDING_RATE_LIMITED')
  t.equal((await sign(t, h, 'form', h.token({ sub: 'bob' }), {})).statusCode, 200, 'another caller is not affected')
})

t.test('browsers: the preflight and the answer carry CORS for configured origins only', async (t) => {
  const h = await buildE2e(t, { config: (base) => ({ ...withGrants()(base), cors: { origins: ['https://app.example.com'] } }) })
  const preflight = (origin: string) => h.app.inject({ method: 'OPTIONS', url: '/uploads/form', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } })
  const ok = await preflight('https://app.example.com')
  assertContract(t, exchange(ok))
  t.equal(ok.statusCode, 204)
  t.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com')
  const evil = await preflight('https://evil.example.com')
  assertContract(t, exchange(evil))
  t.equal(evil.statusCode, 403)
  const res = await sign(t, h, 'form', h.token({ sub: 'alice' }), {}, { origin: 'https://app.example.com' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['access-control-allow-origin'], 'https://app.example.com')
  const refused = await sign(t, h, 'url', h.token({ sub: 'alice' }), { key: `${DIR}alice/a`, method: 'GET' }, { origin: 'https://evil.example.com' })
  t.equal(refused.json.code, 'STS_VENDING_ORIGIN_NOT_ALLOWED')
  t.equal(h.emulator.callCount, 1, 'the refused origin never reached STS')
  // A refusal to an allowed origin is readable by the page: code and Retry-After.
  const unauthenticated = await h.app.inject({ method: 'POST', url: '/uploads/form', headers: { origin: 'https://app.example.com', 'content-type': 'application/json' }, payload: {} })
  assertContract(t, exchange(unauthenticated))
  t.equal(unauthenticated.statusCode, 401)
  t.equal(unauthenticated.headers['access-control-allow-origin'], 'https://app.example.com', 'a 401 carries CORS')
  t.match(String(unauthenticated.headers['access-control-expose-headers']), /retry-after/)
})
