// Client compatibility, proven with the real client libraries: ali-oss signs with the
// credentials as returned, the mobile SDKs' "STS app server" shape, and
// @alicloud/credentials' credentials_uri provider through the loopback sidecar.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import OSS from 'ali-oss'
import CredentialModule from '@alicloud/credentials'
import { build } from '../../helpers/build.js'
import { assertContract, exchange } from '../../helpers/contract.js'
import { startSidecar } from '../../../src/cli/commands/sidecar.js'
import { REFRESH_LEAD_SECONDS } from '../../../src/http/credentials/shapes.js'
import { KEEP_BYTES_AFTER } from '../../../src/http/credentials/route.js'

const STS_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/

t.test('ali-oss plugs the JSON in as returned, and refreshes through the service', async (t) => {
  const h = await build(t)
  const token = h.token({ sub: 'alice' })
  const fetchCreds = async (): Promise<any> => (await h.vend(token)).json
  const c = await fetchCreds()
  let refreshed = 0
  const client = new OSS({
    region: c.ossRegion,
    bucket: c.bucket,
    accessKeyId: c.accessKeyId,
    accessKeySecret: c.accessKeySecret,
    stsToken: c.securityToken,
    secure: true,
    refreshSTSToken: async () => {
      refreshed++
      const n = await fetchCreds()
      return { accessKeyId: n.accessKeyId, accessKeySecret: n.accessKeySecret, stsToken: n.securityToken }
    }
  }) as any
  // Capture the request ali-oss signs instead of sending it anywhere.
  let sent: { url: string, params: { headers: Record<string, string> } } | undefined
  client.urllib = { request: async (url: string, params: { headers: Record<string, string> }) => { sent = { url, params }; throw new Error('captured') } }
  await client.put(`${c.prefix}photo.jpg`, Buffer.from('hello')).catch(() => {})
  t.ok(sent !== undefined, 'ali-oss built a request')
  t.equal(new URL(sent!.url).host, `${c.bucket}.oss-cn-hangzhou.aliyuncs.com`, 'region and bucket give the right host')
  t.equal(sent!.params.headers['x-oss-security-token'], c.securityToken, 'the signed request carries the STS token')
  t.match(sent!.params.headers.authorization, new RegExp(`^OSS ${c.accessKeyId.replace('.', '\\.')}:`), 'signed with the STS AccessKeyId')
  t.equal(refreshed, 0, 'fresh credentials: no refresh')
})

t.test('refreshAfterSeconds: the time left less the lead, by the app\'s clock, never negative', async (t) => {
  let clock = Date.now()
  // One clock for the app and the STS emulator (only one AssumeRole, well within its
  // 15-minute date check of the SDK's real-time signature).
  const h = await build(t, {
    deps: { now: () => clock },
    emulatorNow: () => clock,
    config: (c) => ({ ...c, cache: { maxEntries: 100, minRemainingSeconds: 0 }, grants: (c.grants as object[]).map((g) => ({ ...g, durationSeconds: 900 })) })
  })
  const token = h.token({ sub: 'alice' }, { expiresInSeconds: 7200 })
  const first = await h.vend(token)
  t.equal(first.statusCode, 200)
  const left = (Date.parse(first.json.expiration) - clock) / 1000
  t.equal(first.json.refreshAfterSeconds, Math.floor(left) - REFRESH_LEAD_SECONDS, 'time left less the lead')
  t.ok(first.json.refreshAfterSeconds >= 599 && first.json.refreshAfterSeconds <= 600, 'about 900 - 300 for fresh 900-second credentials')
  const rows = [
    { desc: 'the same cached credentials 100 s later', advance: 100, want: (r: number) => r - 100 },
    { desc: 'exactly at the lead: refresh now', advance: 0, at: REFRESH_LEAD_SECONDS, want: () => 0 },
    { desc: 'inside the lead: 0, never negative', advance: 0, at: 60, want: () => 0 }
  ]
  for (const row of rows) {
    const before = first.json.refreshAfterSeconds as number
    clock = row.at !== undefined ? Date.parse(first.json.expiration) - row.at * 1000 : clock + row.advance * 1000
    const res = await h.vend(token)
    t.equal(res.statusCode, 200, row.desc)
    t.equal(res.json.accessKeyId, first.json.accessKeyId, `${row.desc}: from the cache`)
    t.equal(res.json.refreshAfterSeconds, row.want(before), row.desc)
  }
  t.equal(h.emulator.callCount, 1)
})

t.test('a busy caller\'s answers: bytes kept for a second are the answer of that second, and only of that second', async (t) => {
  let clock = Date.now()
  const h = await build(t, {
    deps: { now: () => clock },
    emulatorNow: () => clock,
    config: (c) => ({ ...c, cache: { maxEntries: 100, minRemainingSeconds: 0 }, rateLimit: { max: 1000, timeWindowMs: 60_000 } })
  })
  const token = h.token({ sub: 'alice' }, { expiresInSeconds: 7200 })
  const raw = async (): Promise<string> => {
    const res = await h.app.inject({ method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${token}` } })
    t.equal(res.statusCode, 200)
    h.secret(res.json().accessKeySecret)
    return res.payload
  }
  const first = JSON.parse(await raw())
  const expected = (r: number): string => JSON.stringify({ ...first, refreshAfterSeconds: r })
  const r0 = first.refreshAfterSeconds as number
  // The issuance's first second: joined answers, more of them than the count, so the
  // seconds after it are answered from kept bytes while they stay busy; then a quiet
  // second (still kept: the second before it was busy) and another (joined again).
  for (let i = 0; i < KEEP_BYTES_AFTER + 1; i++) t.equal(await raw(), expected(r0), 'the first second, joined')
  let elapsed = 0
  for (const [step, asks] of [[1, KEEP_BYTES_AFTER + 2], [1, KEEP_BYTES_AFTER + 2], [5, KEEP_BYTES_AFTER + 2], [1, 3], [1, 2], [1, 2]] as const) {
    clock += step * 1000
    elapsed += step
    for (let i = 0; i < asks; i++) t.equal(await raw(), expected(r0 - elapsed), `${elapsed} s later: every answer of the second carries its own number, byte for byte`)
  }
  t.equal(h.emulator.callCount, 1, 'one AssumeRole: every answer was a hit')
})

t.test('OSS mobile SDK format: success and error shapes, by query or Accept', async (t) => {
  const h = await build(t)
  const token = h.token({ sub: 'alice' })
  const ok = await h.app.inject({ method: 'POST', url: '/credentials?format=oss-app-server', headers: { authorization: `Bearer ${token}` } })
  assertContract(t, exchange(ok))
  t.equal(ok.statusCode, 200)
  const body = ok.json()
  h.secret(body.AccessKeySecret)
  h.secret(body.SecurityToken)
  t.same(Object.keys(body), ['StatusCode', 'AccessKeyId', 'AccessKeySecret', 'SecurityToken', 'Expiration', 'Bucket', 'Region', 'Endpoint', 'Prefix'])
  t.equal(body.StatusCode, 200)
  t.same({ Bucket: body.Bucket, Region: body.Region, Endpoint: body.Endpoint, Prefix: body.Prefix },
    { Bucket: 'oss-test', Region: 'cn-hangzhou', Endpoint: 'https://oss-cn-hangzhou.aliyuncs.com', Prefix: 'dir111/dir111_secondline1/alice/' },
    'what the grant decided, so the app hard-codes none of it')
  t.match(body.AccessKeyId, /^STS\./)
  t.match(body.Expiration, STS_TIME)
  t.equal(ok.headers['cache-control'], 'no-store')

  const viaAccept = await h.app.inject({ method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.sts-vending.oss-app-server+json' } })
  assertContract(t, exchange(viaAccept, 'oss-app-server'))
  t.equal(viaAccept.json().StatusCode, 200, 'Accept media type selects it too')
  h.secret(viaAccept.json().AccessKeySecret)

  const denied = await h.app.inject({ method: 'POST', url: '/credentials?format=oss-app-server', headers: { authorization: 'Bearer nope' } })
  assertContract(t, exchange(denied))
  t.equal(denied.statusCode, 401)
  t.same(denied.json(), { StatusCode: 401, ErrorCode: 'STS_VENDING_INVALID_TOKEN', ErrorMessage: 'The token is not valid: the token is not a well-formed JWT' })
  const forbidden = await h.app.inject({ method: 'POST', url: '/credentials?format=oss-app-server', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: { prefix: 'x/' } })
  assertContract(t, exchange(forbidden))
  t.same(Object.keys(forbidden.json()), ['StatusCode', 'ErrorCode', 'ErrorMessage'])
  t.equal(forbidden.json().StatusCode, 403)

  const unknown = await h.app.inject({ method: 'POST', url: '/credentials?format=xml', headers: { authorization: `Bearer ${token}` } })
  assertContract(t, exchange(unknown))
  t.equal(unknown.statusCode, 400)
  t.equal(unknown.json().code, 'STS_VENDING_UNKNOWN_FORMAT')
  t.equal(h.emulator.callCount, 1, 'one STS call for all of it')
})

t.test('credentials_uri shape, and the real @alicloud/credentials client through the sidecar', async (t) => {
  const h = await build(t)
  const json = await h.app.inject({ method: 'POST', url: '/credentials?format=credentials-uri', headers: { authorization: `Bearer ${h.token()}` } })
  assertContract(t, exchange(json))
  const shape = json.json()
  h.secret(shape.AccessKeySecret)
  h.secret(shape.SecurityToken)
  t.same(Object.keys(shape), ['Code', 'AccessKeyId', 'AccessKeySecret', 'SecurityToken', 'Expiration'])
  t.equal(shape.Code, 'Success')
  t.match(shape.Expiration, STS_TIME)

  const served = (): number => h.logs.filter((l) => l.includes('"msg":"request completed"') && l.includes('"statusCode":200')).length
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = h.app.server.address() as AddressInfo
  const dir = mkdtempSync(join(tmpdir(), 'stsv-sidecar-'))
  const tokenFile = join(dir, 'token')
  writeFileSync(tokenFile, h.token({ sub: 'system-serviceaccount-payments-api' }))
  const sidecar = await startSidecar({ serviceUrl: `http://127.0.0.1:${port}/credentials`, tokenFile, port: 0 })
  t.teardown(() => sidecar.close())

  const Credential = (CredentialModule as any).default ?? CredentialModule
  const Config = (CredentialModule as any).Config
  const client = new Credential(new Config({ type: 'credentials_uri', credentialsURI: sidecar.url }))
  const first = await client.getCredential()
  h.secret(first.accessKeySecret)
  h.secret(first.securityToken)
  t.match(first.accessKeyId, /^STS\./)
  t.equal(first.type, 'credentials_uri')
  const again = await client.getCredential()
  t.equal(again.accessKeyId, first.accessKeyId, 'fresh credentials are reused by the client')
  const callsBefore = served()

  // Age them: 50 minutes later the client considers them stale (15 min before expiry) and asks again.
  const realNow = Date.now
  Date.now = () => realNow() + 50 * 60_000
  try {
    const later = await client.getCredential()
    h.secret(later.accessKeySecret)
    h.secret(later.securityToken)
    t.ok(served() > callsBefore, 'the client went back to the service when they aged')
  } finally {
    Date.now = realNow
  }

  writeFileSync(tokenFile, 'garbage')
  const broken = new Credential(new Config({ type: 'credentials_uri', credentialsURI: sidecar.url }))
  await t.rejects(broken.getCredential(), /401/, 'an unauthenticated call is refused')
  t.rejects(startSidecar({ serviceUrl: 'http://x/credentials', tokenFile, host: '0.0.0.0', port: 0 }), /loopback only/, 'the sidecar never listens beyond loopback')
})

t.test('CORS: the allow-list, preflight, and no wildcard', async (t) => {
  const h = await build(t, { config: (c) => ({ ...c, cors: { origins: ['https://app.example.com'] } }) })
  const pre = await h.app.inject({ method: 'OPTIONS', url: '/credentials', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } })
  assertContract(t, exchange(pre))
  t.equal(pre.statusCode, 204)
  t.equal(pre.headers['access-control-allow-origin'], 'https://app.example.com')
  t.match(String(pre.headers['access-control-allow-headers']), /authorization/)
  t.not(pre.headers['access-control-allow-credentials'], 'true')
  const ok = await h.vend(h.token(), {}, { origin: 'https://app.example.com' })
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com')

  const evil = await h.app.inject({ method: 'OPTIONS', url: '/credentials', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' } })
  assertContract(t, exchange(evil))
  t.equal(evil.statusCode, 403, 'a preflight from an unlisted origin is refused')
  t.equal(evil.headers['access-control-allow-origin'], undefined)
  const evilPost = await h.vend(h.token(), {}, { origin: 'https://evil.example.com' })
  t.equal(evilPost.statusCode, 403)
  t.equal(evilPost.json.code, 'STS_VENDING_ORIGIN_NOT_ALLOWED')
  t.equal(h.emulator.callCount, 1, 'no STS call for the refused origin')
})
