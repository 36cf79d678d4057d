// The service's promise, end to end with the real ali-oss client: credentials from
// POST /credentials upload into the caller's directory and nowhere else, because the
// OSS emulator evaluates the role's policy AND the session policy STS recorded.
import t from 'tap'
import OSS from 'ali-oss'
import { join } from 'node:path'
import { request } from 'undici'
import { BUCKET, buildE2e, outcome, rolePolicy } from '../../../test/helpers/oss.js'

const DIR = 'dir111/dir111_secondline1/'

t.test('inside the directory: put, get, head, list, multipart all succeed', async (t) => {
  const h = await buildE2e(t)
  const c = await h.credentials('alice')
  t.equal(c.endpoint, h.oss.url, 'the grant hands out the emulator as endpoint')
  const client = h.client(c)

  await client.put(`${DIR}alice/hello.txt`, Buffer.from('hello'))
  t.equal(h.oss.object(`${DIR}alice/hello.txt`)?.body.toString(), 'hello', 'stored under the caller\'s prefix')
  t.equal((await client.get(`${DIR}alice/hello.txt`)).content.toString(), 'hello')
  t.equal((await client.head(`${DIR}alice/hello.txt`)).status, 200)

  const listed = await client.list({ prefix: `${DIR}alice/`, delimiter: '/' })
  t.same(listed.objects?.map((o) => o.name), [`${DIR}alice/hello.txt`])
  const v2 = await client.listV2({ prefix: `${DIR}alice/` })
  t.equal(v2.keyCount, 1)

  const big = Buffer.alloc(300 * 1024, 7)
  big.write('start', 0)
  await client.multipartUpload(`${DIR}alice/big.bin`, big, { partSize: 100 * 1024 })
  const stored = h.oss.object(`${DIR}alice/big.bin`)
  t.equal(stored?.type, 'Multipart')
  t.ok(stored?.body.equals(big), 'the parts were assembled in order')
  t.match(stored?.etag, /^"[0-9A-F]{32}-3"$/, 'three parts')
  t.same(h.oss.requests.filter((r) => r.operation === 'UploadPart').map((r) => r.outcome), ['ok', 'ok', 'ok'])
})

t.test('outside the directory: every attempt is AccessDenied and nothing is stored', async (t) => {
  const h = await buildE2e(t)
  const c = await h.credentials('alice')
  const client = h.client(c)
  await client.put(`${DIR}bob/seed.txt`, Buffer.from('x')).catch(() => {})
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['put into a sibling user\'s directory', () => client.put(`${DIR}bob/evil.txt`, Buffer.from('x'))],
    ['put into a lookalike sibling (alice2/)', () => client.put(`${DIR}alice2/evil.txt`, Buffer.from('x'))],
    ['put into the parent directory', () => client.put(`${DIR}evil.txt`, Buffer.from('x'))],
    ['put at the bucket root', () => client.put('evil.txt', Buffer.from('x'))],
    ['get from a sibling', () => client.get(`${DIR}bob/seed.txt`)],
    ['delete (not granted) inside', () => client.delete(`${DIR}alice/hello.txt`)],
    ['multipart outside', () => client.multipartUpload('evil.bin', Buffer.alloc(300 * 1024), { partSize: 100 * 1024 })],
    ['list the bucket root', () => client.list({ prefix: '', delimiter: '/' })],
    ['list the parent directory', () => client.list({ prefix: DIR })],
    ['list without prefix (v2)', () => client.listV2({})]
  ]
  for (const [name, call] of cases) t.equal(await outcome(call()), 'AccessDenied', name)
  t.same(h.oss.keys(), [], 'nothing was stored')
})

t.test('the role policy still binds: a session policy alone grants nothing outside it', async (t) => {
  // The grant points at other/{sub}/, which the role (dir111/ only) does not cover.
  const h = await buildE2e(t, {
    config: (base) => ({ ...base, grants: (base.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, prefix: 'other/{sub}/' })) })
  })
  const c = await h.credentials('alice')
  t.equal(c.prefix, 'other/alice/')
  t.equal(await outcome(h.client(c).put('other/alice/x.txt', Buffer.from('x'))), 'AccessDenied')
})

t.test('after the credentials expire, an upload fails (fake clock on OSS)', async (t) => {
  // The shortest credentials STS issues (900 s), so the OSS emulator's clock can reach
  // their last seconds without tripping its request-date check (15 min skew); expiry
  // is checked before the date, as OSS does.
  const h = await buildE2e(t, {
    config: (base) => ({
      ...base,
      cache: { maxEntries: 1000, minRemainingSeconds: 0 },
      grants: (base.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, durationSeconds: 900 }))
    })
  })
  const c = await h.credentials('alice')
  const client = h.client(c)
  const expiresIn = Date.parse(c.expiration) - Date.now()
  t.ok(expiresIn > 890_000 && expiresIn <= 900_000, 'credentials for 900 s')
  t.equal(await outcome(client.put(`${DIR}alice/before.txt`, Buffer.from('x'))), 'ok')
  h.advanceOssClock(expiresIn - 5000)
  t.equal(await outcome(client.put(`${DIR}alice/last-seconds.txt`, Buffer.from('x'))), 'ok', 'still valid 5 s before Expiration')
  h.advanceOssClock(6000)
  t.equal(await outcome(client.put(`${DIR}alice/after.txt`, Buffer.from('x'))), 'SecurityTokenExpired', 'refused once expired')
  t.equal(await outcome(client.list({ prefix: `${DIR}alice/` })), 'SecurityTokenExpired', 'listing too')
  t.notOk(h.oss.object(`${DIR}alice/after.txt`))
  t.ok(h.oss.object(`${DIR}alice/last-seconds.txt`))
})

t.test('authentication failures carry OSS\'s codes', async (t) => {
  const h = await buildE2e(t)
  const c = await h.credentials('alice')
  const key = `${DIR}alice/x.txt`
  const rows: Array<{ desc: string, opts: Partial<ConstructorParameters<typeof OSS>[0]>, code: string }> = [
    { desc: 'unknown AccessKeyId', opts: { accessKeyId: 'STS.unknownunknownunknown0000' }, code: 'InvalidAccessKeyId' },
    { desc: 'wrong security token', opts: { stsToken: c.securityToken.slice(0, -4) + 'AAAA' }, code: 'InvalidSecurityToken' },
    { desc: 'no security token', opts: { stsToken: '' }, code: 'InvalidSecurityToken' },
    { desc: 'wrong secret (bad signature)', opts: { accessKeySecret: 'x'.repeat(44) }, code: 'SignatureDoesNotMatch' }
  ]
  for (const row of rows) {
    const client = new OSS({ accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, stsToken: c.securityToken, bucket: BUCKET, region: `oss-${c.region}`, endpoint: c.endpoint, refreshSTSTokenInterval: 1e9, ...row.opts })
    t.equal(await outcome(client.put(key, Buffer.from('x'))), row.code, row.desc)
  }
  t.equal(await outcome(h.client({ ...c, bucket: 'another-bucket' }).put(key, Buffer.from('x'))), 'NoSuchBucket', 'another bucket')

  const anonymous = await request(`${h.oss.url}/${key}`, { method: 'PUT', body: 'x', headers: { host: `${BUCKET}.oss-cn-hangzhou.aliyuncs.com` } })
  const text = await anonymous.body.text()
  t.equal(anonymous.statusCode, 403)
  t.match(text, /<Error><Code>AccessDenied<\/Code><Message>[^<]+<\/Message><RequestId>[0-9A-F]{24}<\/RequestId><HostId>[^<]+<\/HostId><\/Error>/, 'OSS\'s error document')
  t.equal(anonymous.headers['x-oss-request-id'], text.match(/<RequestId>(\w+)</)?.[1])
  t.same(h.oss.keys(), [])
})

t.test('a stale request date is RequestTimeTooSkewed; a tampered body is InvalidDigest', async (t) => {
  const h = await buildE2e(t)
  const c = await h.credentials('alice')
  h.advanceOssClock(16 * 60 * 1000)
  t.equal(await outcome(h.client(c).put(`${DIR}alice/x.txt`, Buffer.from('x'))), 'RequestTimeTooSkewed')
  h.advanceOssClock(-16 * 60 * 1000)
  t.equal(await outcome(h.client(c).put(`${DIR}alice/x.txt`, Buffer.from('x'), { headers: { 'Content-MD5': '1B2M2Y8AsgTpgAmY7PhCfg==' } })), 'InvalidDigest')
})

t.test('multipart: unknown parts and small parts are refused like OSS', async (t) => {
  const h = await buildE2e(t)
  const c = await h.credentials('alice', { actions: ['write'] })
  const client = h.client(c)
  const key = `${DIR}alice/parts.bin`
  const dir = t.testdir({ 'part.bin': Buffer.alloc(150 * 1024, 1) })
  const file = join(dir, 'part.bin')
  const { uploadId } = await client.initMultipartUpload(key)
  const small = await client.uploadPart(key, uploadId, 1, file, 0, 10 * 1024)
  const last = await client.uploadPart(key, uploadId, 2, file, 0, 150 * 1024)
  const rows: Array<[string, Array<{ number: number, etag: string }>, string]> = [
    ['a part below 100 KB that is not the last', [{ number: 1, etag: small.etag }, { number: 2, etag: last.etag }], 'EntityTooSmall'],
    ['an ETag that was never uploaded', [{ number: 1, etag: '"00000000000000000000000000000000"' }], 'InvalidPart']
  ]
  for (const [desc, parts, code] of rows) t.equal(await outcome(client.completeMultipartUpload(key, uploadId, parts)), code, desc)
  t.equal(await outcome(client.completeMultipartUpload(key, uploadId, [{ number: 2, etag: last.etag }])), 'ok', 'the last part alone may be small')
  t.equal(h.oss.object(key)?.body.length, 150 * 1024)
  t.equal(await outcome(client.abortMultipartUpload(key, uploadId)), 'NoSuchUpload', 'a completed upload is gone')
  const again = await client.initMultipartUpload(key)
  t.equal(await outcome(client.abortMultipartUpload(key, again.uploadId)), 'ok', 'abort (oss:AbortMultipartUpload granted by write)')
})

t.test('CORS: the preflight is answered for an allowed origin only, and errors carry CORS headers', async (t) => {
  const h = await buildE2e(t)
  h.oss.allowOrigin('http://127.0.0.1:3000')
  const preflight = async (origin: string, headers: string): Promise<{ status: number, h: Record<string, unknown> }> => {
    const r = await request(`${h.oss.url}/${DIR}alice/x.txt`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': headers } })
    await r.body.dump()
    return { status: r.statusCode, h: r.headers }
  }
  const ok = await preflight('http://127.0.0.1:3000', 'authorization,content-type,content-md5,x-oss-date,x-oss-security-token,x-oss-user-agent')
  t.equal(ok.status, 200)
  t.equal(ok.h['access-control-allow-origin'], 'http://127.0.0.1:3000')
  t.match(ok.h['access-control-allow-methods'], /PUT/)
  t.match(ok.h['access-control-allow-headers'], /authorization.*x-oss-security-token/)
  t.match(ok.h['access-control-expose-headers'], /ETag.*x-oss-request-id/)
  t.equal((await preflight('http://evil.example', 'authorization')).status, 403, 'another origin')
  t.equal((await preflight('http://127.0.0.1:3000', 'x-secret-thing')).status, 403, 'a header outside the rule')

  const denied = await request(`${h.oss.url}/x.txt`, { method: 'PUT', body: 'x', headers: { origin: 'http://127.0.0.1:3000' } })
  await denied.body.dump()
  t.equal(denied.statusCode, 403)
  t.equal(denied.headers['access-control-allow-origin'], 'http://127.0.0.1:3000', 'a page can read the denial')
})

t.test('listing pages with a delimiter, marker and max-keys', async (t) => {
  const h = await buildE2e(t, { rolePolicy: rolePolicy() })
  const c = await h.credentials('alice')
  const client = h.client(c)
  const base = `${DIR}alice/`
  for (const k of ['a.txt', 'b/1.txt', 'b/2.txt', 'c.txt', 'd/1.txt']) await client.put(base + k, Buffer.from(k))
  const page1 = await client.list({ prefix: base, delimiter: '/', 'max-keys': 2 })
  t.same(page1.objects?.map((o) => o.name), [`${base}a.txt`])
  t.same(page1.prefixes, [`${base}b/`])
  t.equal(page1.isTruncated, true)
  const page2 = await client.list({ prefix: base, delimiter: '/', 'max-keys': 2, marker: `${base}b/` })
  t.same(page2.objects?.map((o) => o.name), [`${base}c.txt`])
  t.same(page2.prefixes, [`${base}d/`])
  t.equal(page2.isTruncated, false)
})
