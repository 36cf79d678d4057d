// The signing routes write their 200 bodies directly (bodies.ts, issue 25). They must be
// the bytes Fastify's serialiser compiled from the response schemas would write for the
// same answer, whatever the key, type, callback or URL holds, so the schemas stay the
// contract (and the OpenAPI document, generated from them, tells the truth).
import t from 'tap'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import { formBody, urlBody } from '../../../src/http/uploads/bodies.js'
import { UploadFormResponse, UploadUrlResponse } from '../../../src/http/uploads/schemas.js'
import { signPostForm, presignUrl } from '../../../src/alicloud/oss-signing.js'
import type { SignedFormResult, SignedUrlResult } from '../../../src/sign.js'
import { directoryTarget } from '../../../src/grants/object-keys.js'

const compile = SerializerSelector()({}, {})
const serialiser = (schema: unknown) => compile({ schema: schema as never, method: 'POST', url: '/uploads', httpStatus: '200' }) as (data: unknown) => string
const schemaForm = serialiser(UploadFormResponse)
const schemaUrl = serialiser(UploadUrlResponse)

const credentials = { accessKeyId: 'STS.id', accessKeySecret: 'secret', securityToken: 'CAIS+/=tok"with\\quotes\u2028é' }
const now = Date.UTC(2026, 11, 7, 5, 0, 0, 321)
// Assertion names give a key's index: a U+2028 in a TAP line would end it.
const keys = ['u/alice/0123/upload', 'u/alice/"quoted"\\back.png', 'u/alice/ünï/文件.txt', 'u/alice/line\u2028sep', 'u/alice/\ud800lone']

t.test('formBody is the form schema\'s serialisation, byte for byte', async (t) => {
  for (const key of keys) {
    for (const extra of [{}, { contentType: 'image/png' }, { contentTypes: ['image/png', 'a/b+c'] }, { forbidOverwrite: true, callback: 'eyJjYWxsYmFja1VybCI6Imh0dHBzOi8veCJ9' }]) {
      const signed = signPostForm({ credentials, bucket: 'oss-test', region: 'cn-hangzhou', target: { kind: 'exact', key }, maxBytes: 1024, now, expiresSeconds: 600, ...extra })
      const form: SignedFormResult = { url: 'https://oss-test.oss-cn-hangzhou.aliyuncs.com', fields: signed.fields, fieldsJson: signed.fieldsJson, keyPrefix: key, expiration: signed.expiration, grant: 'g', maxBytes: 1024, fromCache: true }
      const expected = schemaForm({ url: form.url, fields: form.fields, keyPrefix: form.keyPrefix, expiration: '2026-12-07T05:10:00Z' })
      t.equal(formBody(form), expected, `key ${keys.indexOf(key)}, ${JSON.stringify(extra)}`)
    }
  }
  // A directory form (keys: caller): the key names the placeholder, the prefix is the directory.
  const dir = signPostForm({ credentials, bucket: 'b', region: 'cn-hangzhou', target: directoryTarget('u/alice/'), maxBytes: 1, now, expiresSeconds: 60 })
  const form: SignedFormResult = { url: 'http://127.0.0.1:9000/b', fields: dir.fields, fieldsJson: dir.fieldsJson, keyPrefix: 'u/alice/', expiration: dir.expiration, grant: 'g', maxBytes: 1, fromCache: false }
  t.equal(formBody(form), schemaForm({ url: form.url, fields: form.fields, keyPrefix: form.keyPrefix, expiration: '2026-12-07T05:01:00Z' }))
})

t.test('urlBody is the URL schema\'s serialisation, byte for byte', async (t) => {
  // A URL's key is percent-encoded, which a lone surrogate cannot be (the key rules admit
  // neither: grants/object-keys.ts).
  for (const key of keys.filter((k) => !k.includes('\ud800'))) {
    for (const c of [{ method: 'GET' as const }, { method: 'PUT' as const, contentType: 'application/octet-stream' }, { method: 'PUT' as const, contentType: 'image/png', forbidOverwrite: true }, { method: 'PUT' as const, forbidOverwrite: true }]) {
      for (const endpoint of ['https://oss-cn-hangzhou.aliyuncs.com', 'http://127.0.0.1:9000/base/']) {
        const signed = presignUrl({ credentials, bucket: 'oss-test', region: 'cn-hangzhou', endpoint, key, now, expiresSeconds: 600, ...c })
        const url: SignedUrlResult = { url: signed.url, method: c.method, key, headers: signed.headers, expiration: signed.expiration, grant: 'g', fromCache: true }
        t.equal(urlBody(url), schemaUrl({ url: url.url, method: url.method, headers: url.headers, expiration: '2026-12-07T05:10:00Z' }), `key ${keys.indexOf(key)}, ${JSON.stringify(c)}, ${endpoint}`)
      }
    }
  }
})
