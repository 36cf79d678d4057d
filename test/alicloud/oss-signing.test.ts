// The V4 signer against the real client's own implementation (ali-oss's signatureUrlV4
// and signPostObjectPolicyV4). The key rules are tested with the grant rules (test/grants/object-keys.test.ts).
import t from 'tap'
import OSS from 'ali-oss'
import { createHmac, randomBytes } from 'node:crypto'
import { bucketUrl, canonicalRequest, hmacHex, hmacPads, presignUrl, signPostForm, signV4, stringToSignV4, uriEncode, uriEncodePath, v4Date } from '../../src/alicloud/oss-signing.js'
import { FILENAME_PLACEHOLDER as F, directoryTarget } from '../../src/grants/object-keys.js'

const credentials = { accessKeyId: 'STS.NUgYrLnoC37mZZCNnAbez2mqN', accessKeySecret: 'Wq8y7mP9vB1xZ3kL5nR2tF6hJ4gD0sAe', securityToken: 'CAIS8gF1q6Ft5B2yfSjIr5bSEsj2gvVX5rLaNFCAgVsldU5h+/=' }
const DIR = 'users/alice/'

interface Policy { expiration: string, conditions: unknown[] }
/** The policy document a form signs, parsed (a value only: byte equality is tested on policyJson). */
function policyOf (f: { policyJson: string }): Policy {
  return JSON.parse(f.policyJson) as Policy
}

function aliClient (): OSS {
  return new OSS({ ...credentials, stsToken: credentials.securityToken, bucket: 'oss-test', region: 'oss-cn-hangzhou', secure: true, refreshSTSTokenInterval: 24 * 3600 * 1000 } as never)
}

t.test('presigned URLs equal ali-oss signatureUrlV4 (same date, method, key, headers)', async (t) => {
  const client = aliClient() as unknown as { signatureUrlV4: (m: string, e: number, r: unknown, k: string) => Promise<string> }
  const cases: Array<{ method: 'GET' | 'PUT', key: string, contentType?: string }> = [
    { method: 'PUT', key: `${DIR}photo.jpg`, contentType: 'image/jpeg' },
    { method: 'PUT', key: `${DIR}a/b/c.bin`, contentType: 'application/octet-stream' },
    { method: 'GET', key: `${DIR}photo.jpg` },
    { method: 'GET', key: `${DIR}with space+plus*(star)!'.txt` },
    { method: 'GET', key: `${DIR}ünïcødé/文件.txt` }
  ]
  for (const c of cases) {
    const theirs = new URL(await client.signatureUrlV4(c.method, 600, { headers: c.contentType !== undefined ? { 'Content-Type': c.contentType } : {} }, c.key))
    const date = theirs.searchParams.get('x-oss-date') as string
    const at = Date.parse(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`)
    const ours = new URL(presignUrl({ credentials, bucket: 'oss-test', region: 'cn-hangzhou', endpoint: 'https://oss-cn-hangzhou.aliyuncs.com', key: c.key, method: c.method, contentType: c.contentType, now: at + 999, expiresSeconds: 600 }).url)
    t.equal(ours.origin + decodeURIComponent(ours.pathname), theirs.origin + decodeURIComponent(theirs.pathname), `${c.method} ${c.key}: same address`)
    t.strictSame(Object.fromEntries([...ours.searchParams].sort()), Object.fromEntries([...theirs.searchParams].sort()), `${c.method} ${c.key}: same query, signature included`)
  }
})

t.test('the presigned URL carries what the contract names', async (t) => {
  const now = Date.UTC(2026, 10, 30, 6, 0, 0, 500)
  const s = presignUrl({ credentials, bucket: 'oss-test', region: 'cn-hangzhou', endpoint: 'http://127.0.0.1:9000', key: `${DIR}x.png`, method: 'PUT', contentType: 'image/png', now, expiresSeconds: 600 })
  const u = new URL(s.url)
  t.equal(u.origin + u.pathname, 'http://127.0.0.1:9000/oss-test/users/alice/x.png', 'path-style off aliyuncs.com')
  t.equal(u.searchParams.get('x-oss-signature-version'), 'OSS4-HMAC-SHA256')
  t.equal(u.searchParams.get('x-oss-credential'), `${credentials.accessKeyId}/20261130/cn-hangzhou/oss/aliyun_v4_request`)
  t.equal(u.searchParams.get('x-oss-date'), '20261130T060000Z')
  t.equal(u.searchParams.get('x-oss-expires'), '600', 'a duration in seconds')
  t.equal(u.searchParams.get('x-oss-security-token'), credentials.securityToken)
  t.match(u.searchParams.get('x-oss-signature'), /^[0-9a-f]{64}$/)
  t.notOk(s.url.includes(credentials.accessKeySecret), 'never the secret')
  t.strictSame(s.headers, { 'Content-Type': 'image/png' })
  t.equal(s.expiration.toISOString(), '2026-11-30T06:10:00.000Z')
  t.match(canonicalRequest('PUT', 'oss-test', `${DIR}x.png`, [['x-oss-date', '1']], { 'Content-Type': ' image/png ' }), /^PUT\n\/oss-test\/users\/alice\/x\.png\nx-oss-date=1\ncontent-type:image\/png\n\n\nUNSIGNED-PAYLOAD$/)
})

t.test('form signatures equal ali-oss signPostObjectPolicyV4', async (t) => {
  const client = aliClient() as unknown as { signPostObjectPolicyV4: (p: unknown, d: Date) => string }
  const now = Date.UTC(2026, 10, 30, 23, 59, 59)
  for (const target of [directoryTarget(DIR), { kind: 'exact' as const, key: `${DIR}a.png` }]) {
    const f = signPostForm({ credentials, bucket: 'oss-test', region: 'cn-hangzhou', target, maxBytes: 1024, contentTypes: ['image/png', 'image/jpeg'], now, expiresSeconds: 600 })
    t.equal(f.fields['x-oss-signature'], client.signPostObjectPolicyV4(policyOf(f), new Date(now)), `${target.kind} target`)
    t.equal(Buffer.from(f.fields.policy as string, 'base64').toString('utf8'), f.policyJson, 'the policy field is the base64 policy')
    t.equal(f.fieldsJson, JSON.stringify(f.fields), 'the fields\' JSON is JSON.stringify\'s')
  }
})

t.test('the form: fields and policy conditions', async (t) => {
  const now = Date.UTC(2026, 10, 30, 6, 0, 0, 250)
  const f = signPostForm({ credentials, bucket: 'oss-test', region: 'cn-hangzhou', target: directoryTarget(DIR), maxBytes: 1000, contentType: 'image/png', contentTypes: ['image/png'], now, expiresSeconds: 300 })
  t.strictSame(Object.keys(f.fields), ['key', 'policy', 'x-oss-signature-version', 'x-oss-credential', 'x-oss-date', 'x-oss-security-token', 'success_action_status', 'x-oss-signature', 'Content-Type', 'x-oss-content-type'])
  t.equal(f.fields['x-oss-content-type'], 'image/png', 'every field that sets the stored type, with the one type')
  t.equal(f.fields.key, `${DIR}${F}`)
  t.strictSame(policyOf(f), {
    expiration: '2026-11-30T06:05:00.000Z',
    conditions: [
      { bucket: 'oss-test' },
      { 'x-oss-signature-version': 'OSS4-HMAC-SHA256' },
      { 'x-oss-credential': `${credentials.accessKeyId}/20261130/cn-hangzhou/oss/aliyun_v4_request` },
      { 'x-oss-date': '20261130T060000Z' },
      { 'x-oss-security-token': credentials.securityToken },
      ['starts-with', '$key', DIR],
      ['content-length-range', 0, 1000],
      ['eq', '$success_action_status', '201'],
      ['eq', '$content-type', 'image/png'],
      ['eq', '$x-oss-content-type', 'image/png']
    ]
  })
  t.equal(f.fields['x-oss-signature'], signV4(credentials.accessKeySecret, '20261130T060000Z', 'cn-hangzhou', f.fields.policy as string))
  const list = signPostForm({ credentials, bucket: 'oss-test', region: 'cn-hangzhou', target: { kind: 'exact', key: `${DIR}a` }, maxBytes: 1, contentTypes: ['image/png', 'image/gif'], now, expiresSeconds: 60 })
  t.strictSame(policyOf(list).conditions.slice(5), [['eq', '$key', `${DIR}a`], ['content-length-range', 0, 1], ['eq', '$success_action_status', '201'],
    ['in', '$content-type', ['image/png', 'image/gif']], ['in', '$x-oss-content-type', ['image/png', 'image/gif']]])
  t.notOk('Content-Type' in list.fields, 'no Content-Type field when none was fixed')

  const once = signPostForm({ credentials, bucket: 'oss-test', region: 'cn-hangzhou', target: { kind: 'exact', key: `${DIR}a` }, maxBytes: 1, forbidOverwrite: true, callback: 'eyJ9', now, expiresSeconds: 60 })
  t.strictSame(policyOf(once).conditions.slice(8), [['eq', '$x-oss-forbid-overwrite', 'true'], ['eq', '$callback', 'eyJ9']], 'forbid-overwrite and the callback pinned with eq')
  t.equal(once.fields['x-oss-forbid-overwrite'], 'true')
  t.equal(once.fields.callback, 'eyJ9')
  t.strictSame(Object.keys(once.fields).slice(-3), ['x-oss-signature', 'x-oss-forbid-overwrite', 'callback'], 'the fixed fields, then what the form pins')
})

t.test('addresses and dates', async (t) => {
  t.equal(bucketUrl('https://oss-cn-hangzhou.aliyuncs.com', 'b-1'), 'https://b-1.oss-cn-hangzhou.aliyuncs.com')
  t.equal(bucketUrl('https://oss-cn-hangzhou-internal.aliyuncs.com/', 'b-1'), 'https://b-1.oss-cn-hangzhou-internal.aliyuncs.com')
  t.equal(bucketUrl('http://127.0.0.1:9000', 'b-1'), 'http://127.0.0.1:9000/b-1')
  t.equal(bucketUrl('https://oss.example.com/base/', 'b-1'), 'https://oss.example.com/base/b-1')
  t.equal(v4Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '20260102T030405Z')
})

t.test('the callback string to sign: the path decoded, the query raw', async (t) => {
  const { callbackStringToSign } = await import('../../src/alicloud/oss-callback.js')
  t.equal(callbackStringToSign('/uploads/call%20back?a=b%20c', '{"x":1}'), '/uploads/call back?a=b%20c\n{"x":1}')
  t.equal(callbackStringToSign('/uploads/callback', ''), '/uploads/callback\n')
})

// Issue 25: the signing key kept with the credential and the policy written from a template
// must be byte-equal to deriving and serialising afresh, whatever the day, region, bucket,
// key, type or credential.
t.test('the kept signing key and the policy template equal a fresh derivation and JSON.stringify', async (t) => {
  const other = { accessKeyId: 'STS.other', accessKeySecret: 'another-secret', securityToken: 'tok"with\\quotes/é' }
  const cases = [
    { c: credentials, region: 'cn-hangzhou', bucket: 'oss-test', now: Date.UTC(2026, 10, 30, 23, 59, 59), target: directoryTarget(DIR), contentType: undefined, contentTypes: undefined },
    { c: credentials, region: 'cn-hangzhou', bucket: 'oss-test', now: Date.UTC(2026, 11, 1, 0, 0, 1), target: { kind: 'exact' as const, key: `${DIR}"quoted"\\ünï.png` }, contentType: 'image/png', contentTypes: undefined },
    { c: credentials, region: 'cn-shanghai', bucket: 'other-bucket', now: Date.UTC(2026, 11, 1, 0, 0, 1), target: directoryTarget(DIR), contentType: undefined, contentTypes: ['a/b', 'c/d+e'] },
    { c: other, region: 'cn-hangzhou', bucket: 'oss-test', now: Date.UTC(2026, 11, 1, 0, 0, 1), target: directoryTarget(DIR), contentType: undefined, contentTypes: undefined }
  ]
  for (const [i, x] of [...cases, ...cases].entries()) {
    const f = signPostForm({ credentials: x.c, bucket: x.bucket, region: x.region, target: x.target, maxBytes: 1024 + i, contentType: x.contentType, contentTypes: x.contentTypes, now: x.now, expiresSeconds: 600 })
    const date = v4Date(Math.floor(x.now / 1000) * 1000)
    t.equal(f.fields.policy, Buffer.from(JSON.stringify(policyOf(f)), 'utf8').toString('base64'), `case ${i}: the policy is JSON.stringify's bytes`)
    t.equal(f.fieldsJson, JSON.stringify(f.fields), `case ${i}: the fields' JSON is JSON.stringify's bytes`)
    t.equal(f.fields['x-oss-signature'], signV4(x.c.accessKeySecret, date, x.region, f.fields.policy as string), `case ${i}: the signature of a fresh key`)
    t.equal(f.fields['x-oss-credential'], `${x.c.accessKeyId}/${date.slice(0, 8)}/${x.region}/oss/aliyun_v4_request`, `case ${i}: the day's scope`)
  }
  // A credential object whose secret changed in place is not signed with the old key.
  const mutable = { ...other }
  const at = Date.UTC(2026, 11, 1, 0, 0, 1)
  signPostForm({ credentials: mutable, bucket: 'b', region: 'cn-hangzhou', target: directoryTarget(DIR), maxBytes: 1, now: at, expiresSeconds: 60 })
  mutable.accessKeySecret = 'rotated'
  const f = signPostForm({ credentials: mutable, bucket: 'b', region: 'cn-hangzhou', target: directoryTarget(DIR), maxBytes: 1, now: at, expiresSeconds: 60 })
  t.equal(f.fields['x-oss-signature'], signV4('rotated', v4Date(at), 'cn-hangzhou', f.fields.policy as string), 'the new secret signs')
  const u = new URL(presignUrl({ credentials: mutable, bucket: 'b', region: 'cn-hangzhou', endpoint: 'http://127.0.0.1:9', key: `${DIR}x`, method: 'GET', now: at, expiresSeconds: 60 }).url)
  t.equal(u.searchParams.get('x-oss-date'), v4Date(at))
  // What a form pins beyond the fixed conditions (forbid-overwrite, the callback, both
  // content-type fields) is written by the template in the policy's own order too.
  const pinned = signPostForm({ credentials, bucket: 'oss-test', region: 'cn-hangzhou', target: { kind: 'exact', key: `${DIR}k.png` }, maxBytes: 9, contentTypes: ['image/png'], forbidOverwrite: true, callback: 'eyJjYWxsYmFja1VybCI6Imh0dHBzOi8veCJ9', now: at, expiresSeconds: 60 })
  t.equal(pinned.fields.policy, Buffer.from(JSON.stringify(policyOf(pinned)), 'utf8').toString('base64'), 'extra conditions: the policy is JSON.stringify\'s bytes')
  t.equal(pinned.fieldsJson, JSON.stringify(pinned.fields), 'extra fields: the fields\' JSON is JSON.stringify\'s bytes')
  const typed = signPostForm({ credentials: other, bucket: 'oss-test', region: 'cn-hangzhou', target: { kind: 'exact', key: `${DIR}"q"\\\u2028.png` }, maxBytes: 9, contentType: 'image/png', forbidOverwrite: true, callback: 'eyJ9', now: at, expiresSeconds: 60 })
  t.equal(typed.fieldsJson, JSON.stringify(typed.fields), 'a fixed type, a key to escape: the fields\' JSON is JSON.stringify\'s bytes')
  t.equal(typed.policyJson, JSON.stringify(policyOf(typed)), 'and the policy too')
  t.equal(pinned.fields['x-oss-signature'], signV4(credentials.accessKeySecret, v4Date(at), 'cn-hangzhou', pinned.fields.policy as string))
})

// Issue 25: a form policy's prefix (up to the key condition) is base64-encoded once per
// second and expiry and kept after the HMAC's inner pad, and each form continues from it.
// Whatever the prefix's length modulo 3 (so 0, 1 or 2 of its bytes are encoded with the
// form's own part), a multi-byte token, forms of the same second with other keys, the
// next second, another expiry and other credentials in between: the policy is
// JSON.stringify's bytes of the document built here from this form's own inputs, and the
// signature a fresh key's over all of it.
t.test('forms continue from the second\'s kept policy prefix', async (t) => {
  const at = Date.UTC(2026, 11, 1, 12, 0, 0, 100)
  const lengths = new Set<number>()
  const signers = ['b', 'bb', 'bbb'].flatMap((bucket) => ['plain-token', 'tok"é文"'].map((token) =>
    ({ bucket, token, c: { accessKeyId: 'STS.prefix', accessKeySecret: `secret-${bucket}`, securityToken: token } })))
  const times: Array<[number, number]> = [[at, 600], [at + 500, 600], [at + 899, 600], [at + 1000, 600], [at + 1000, 601]]
  // Each step signs for every credential in turn: the same second and expiry, other credentials between.
  for (const [i, [now, expiresSeconds]] of times.entries()) {
    for (const { bucket, token, c } of signers) {
      // Form 2's own part is longer than the room kept after the prefix, so the block grows.
      const key = `${DIR}${'k'.repeat(i === 2 ? 900 : i)}é-${i}.bin`
      const f = signPostForm({ credentials: c, bucket, region: 'cn-hangzhou', target: { kind: 'exact', key }, maxBytes: 10 + i, forbidOverwrite: i % 2 === 0, now, expiresSeconds })
      const prefixBytes = Buffer.byteLength(f.policyJson.slice(0, f.policyJson.indexOf('["eq","$key"')))
      lengths.add(prefixBytes % 3)
      const second = Math.floor(now / 1000) * 1000
      const expected = {
        expiration: new Date(second + expiresSeconds * 1000).toISOString(),
        conditions: [
          { bucket },
          { 'x-oss-signature-version': 'OSS4-HMAC-SHA256' },
          { 'x-oss-credential': `${c.accessKeyId}/20261201/cn-hangzhou/oss/aliyun_v4_request` },
          { 'x-oss-date': v4Date(second) },
          { 'x-oss-security-token': token },
          ['eq', '$key', key],
          ['content-length-range', 0, 10 + i],
          ['eq', '$success_action_status', '201'],
          ...(i % 2 === 0 ? [['eq', '$x-oss-forbid-overwrite', 'true']] : [])
        ]
      }
      t.equal(f.policyJson, JSON.stringify(expected), `${bucket}, ${token}, form ${i}: the policy is JSON.stringify's of this form's document`)
      t.equal(f.fields.policy, Buffer.from(f.policyJson, 'utf8').toString('base64'), `${bucket}, ${token}, form ${i}: the policy field is its base64`)
      t.equal(f.fields['x-oss-signature'], signV4(c.accessKeySecret, v4Date(second), 'cn-hangzhou', f.fields.policy as string), `${bucket}, ${token}, form ${i}: signed over all of it`)
    }
  }
  t.strictSame([...lengths].sort(), [0, 1, 2], 'prefixes of every length modulo 3 were signed')
})

t.test('a key\'s path: encoded as uriEncode does, its slashes kept', async (t) => {
  for (const key of ['users/alice/x.png', 'a-b_c.d~e/f', 'users/alice/a b+c', 'ü/文件', '%2F/x', "!'()*", '', 'a//b', 'x?y#z&=;:@$,']) {
    t.equal(uriEncodePath(key), uriEncode(key).replace(/%2F/g, '/'), JSON.stringify(key))
  }
})

// Issue 25: a presigned URL is written from the credential's kept, pre-encoded query parts.
// It must be what the plain derivation (canonicalRequest, stringToSignV4, signV4) makes of
// the same query and headers, whatever the key, type, credential, day or region.
t.test('the presigned URL written from kept parts equals the plain derivation', async (t) => {
  const odd = { accessKeyId: 'STS.odd+id', accessKeySecret: 'odd/secret=', securityToken: 'tok+/=with spaces&amp;"é"' }
  const cases = [
    { c: credentials, region: 'cn-hangzhou', bucket: 'oss-test', key: `${DIR}x.png`, method: 'PUT' as const, contentType: ' image/png ', forbidOverwrite: true },
    { c: credentials, region: 'cn-shanghai', bucket: 'other-1', key: `${DIR}a b/c+d*(e)!'.txt`, method: 'GET' as const, contentType: undefined, forbidOverwrite: false },
    { c: odd, region: 'cn-hangzhou', bucket: 'oss-test', key: `${DIR}ünï/文件.bin`, method: 'PUT' as const, contentType: 'application/octet-stream', forbidOverwrite: false },
    { c: odd, region: 'ap-southeast-1', bucket: 'b', key: `${DIR}%2F/x`, method: 'PUT' as const, contentType: undefined, forbidOverwrite: true }
  ]
  for (const [i, x] of [...cases, ...cases].entries()) {
    const now = Date.UTC(2026, 11, 1 + (i % 2), 23, 59, 59, 900)
    const s = presignUrl({ credentials: x.c, bucket: x.bucket, region: x.region, endpoint: 'https://oss-cn-hangzhou.aliyuncs.com', key: x.key, method: x.method, contentType: x.contentType, forbidOverwrite: x.forbidOverwrite, now, expiresSeconds: 600 + i })
    const u = new URL(s.url)
    const date = v4Date(Math.floor(now / 1000) * 1000)
    const query = [...u.searchParams].filter(([k]) => k !== 'x-oss-signature')
    t.strictSame(query.map(([k]) => k), ['x-oss-credential', 'x-oss-date', 'x-oss-expires', 'x-oss-security-token', 'x-oss-signature-version'], `case ${i}: the query's names, signature last`)
    t.strictSame(Object.fromEntries(query), { 'x-oss-credential': `${x.c.accessKeyId}/${date.slice(0, 8)}/${x.region}/oss/aliyun_v4_request`, 'x-oss-date': date, 'x-oss-expires': String(600 + i), 'x-oss-security-token': x.c.securityToken, 'x-oss-signature-version': 'OSS4-HMAC-SHA256' }, `case ${i}: the query's values`)
    t.equal(decodeURIComponent(u.pathname), `/${x.key}`, `case ${i}: the key`)
    const plain = signV4(x.c.accessKeySecret, date, x.region, stringToSignV4(date, x.region, canonicalRequest(x.method, x.bucket, x.key, query, s.headers)))
    t.equal(u.searchParams.get('x-oss-signature'), plain, `case ${i}: the signature of the plain derivation`)
  }
})

// Issue 25: the HMAC is two one-shot hashes over kept pads (RFC 2104), not an Hmac object.
// It must be createHmac's answer for every key length a pad admits and every message:
// empty, ASCII, multi-byte UTF-8 and lone surrogates, and longer than the scratch buffer.
t.test('the kept-pad HMAC equals createHmac', async (t) => {
  const messages = ['', 'a', 'OSS4-HMAC-SHA256\n20261201T000000Z\nscope\nabc', 'é文件\u2028😀', '\ud800 lone', 'x'.repeat(9000), 'é'.repeat(5000), randomBytes(3000).toString('base64')]
  for (const length of [0, 1, 32, 63, 64]) {
    const key = randomBytes(length)
    const pads = hmacPads(key)
    for (const m of messages) t.equal(hmacHex(pads, m), createHmac('sha256', key).update(m, 'utf8').digest('hex'), `key of ${length} bytes, message of ${m.length} code units`)
  }
  // After the scratch buffer grew, a short message still hashes only its own bytes.
  const pads = hmacPads(Buffer.from('k'))
  t.equal(hmacHex(pads, 'short'), createHmac('sha256', 'k').update('short').digest('hex'), 'no bytes of a longer message before it')
  t.throws(() => hmacPads(randomBytes(65)), RangeError, 'a key longer than a block is refused, not silently mis-signed')
})

// The uploads route writes a presigned URL into its body without JSON-escaping it
// (http/uploads/bodies.ts): whatever the key, every character of the URL is one JSON
// leaves as it is.
t.test('a presigned URL needs no JSON escaping, whatever the key', async (t) => {
  for (const key of [`${DIR}"q"\\\u2028\u0001é文件.png`, `${DIR}a b/c+d*(e)!'.txt`, `${DIR}${'\u007f'}x`]) {
    const { url } = presignUrl({ credentials: { ...credentials, securityToken: 'tok"\\é' }, bucket: 'oss-test', region: 'cn-hangzhou', endpoint: 'https://oss-cn-hangzhou.aliyuncs.com', key, method: 'PUT', contentType: 'a/"b"', now: Date.UTC(2026, 11, 1), expiresSeconds: 60 })
    t.equal(JSON.stringify(url), `"${url}"`, JSON.stringify(key))
    t.match(url, /^[\x21-\x7e]+$/, 'printable ASCII only')
  }
})
