// createStsClient against the emulator over real HTTP with the real SDK: credentials,
// error classification, one request per call, the hard timeout, and that nothing secret
// (the AccessKey secret, a signature) ever rides along on an StsError.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { startStsEmulator, type StsEmulator, type Fault } from '../../devkit/emulator/sts.js'
import { createStsClient, StsError, type StsClient } from '../../src/alicloud/sts-client.js'
import { type AssumeRoleInput } from '../../src/alicloud/sts-types.js'
import { type CredentialLike } from '../../src/alicloud/sdk-base.js'
import { createStaticCredential, createUpstreamCredential } from '../../src/alicloud/credentials.js'
import { stsFailure } from '../helpers/sts.js'

const ROLE = 'acs:ram::1234567890123456:role/uploader'
const KEY_ID = `testkey${randomBytes(8).toString('hex')}`
const SECRET = randomBytes(24).toString('base64url')
const input: AssumeRoleInput = { roleArn: ROLE, roleSessionName: 'alice', durationSeconds: 900 }
const POLICY = JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: ['oss:PutObject'], Resource: ['acs:oss:*:*:bucket/users/alice/*'] }] })

interface Teardown { teardown: (fn: () => unknown) => void }

async function setup (t: Teardown, timeoutMs = 2000, now?: () => number): Promise<{ emu: StsEmulator, client: StsClient }> {
  const credential = createStaticCredential(KEY_ID, SECRET)
  const emu = await startStsEmulator({ accessKeys: { [KEY_ID]: SECRET }, roles: { [ROLE]: { maxSessionDuration: 3600 } }, ...(now !== undefined ? { now } : {}) })
  t.teardown(() => emu.close())
  return { emu, client: createStsClient({ endpoint: emu.url, timeoutMs, credential }) }
}

/** Nothing secret or signed may appear in anything a log line could print of the error. */
function assertSafe (t: { notOk: (v: unknown, m: string) => unknown }, err: StsError, secrets: string[] = [SECRET]): void {
  const surfaces = [JSON.stringify(err), String(err.stack), err.message, JSON.stringify(Object.getOwnPropertyNames(err).map((k) => (err as unknown as Record<string, unknown>)[k]))]
  for (const s of surfaces) {
    t.notOk(secrets.some((secret) => s.includes(secret)), 'no secret')
    t.notOk(/Signature=|ACS3-HMAC|Credential=|x-acs-/i.test(s), 'no signature material')
  }
  t.notOk('cause' in err, 'no SDK error attached')
}

t.test('gets credentials', async (t) => {
  // A frozen emulator clock pins Expiration exactly. (The SDK dates requests with the
  // real clock, so the frozen one must stay within the 15-minute window.)
  const frozen = Date.now()
  const { emu, client } = await setup(t, 2000, () => frozen)
  const creds = await client.assumeRole({ ...input, durationSeconds: 1800, policy: POLICY, externalId: 'ext-1', sourceIdentity: 'alice' })
  t.match(creds.accessKeyId, /^STS\./)
  t.type(creds.expiration, Date)
  t.equal(creds.expiration.getTime(), Math.floor(frozen / 1000) * 1000 + 1800_000, 'Expiration parsed')
  const issued = emu.issued(creds.accessKeyId)
  t.equal(issued?.accessKeySecret, creds.accessKeySecret)
  t.equal(issued?.securityToken, creds.securityToken)
  t.same(issued?.policy, JSON.parse(POLICY))
  t.match(emu.calls, [{ roleArn: ROLE, roleSessionName: 'alice', durationSeconds: 1800, policy: POLICY, externalId: 'ext-1', sourceIdentity: 'alice', outcome: 'ok' }])
  t.same(Object.keys(creds).sort(), ['accessKeyId', 'accessKeySecret', 'expiration', 'securityToken'])
})

t.test('optional parameters are not sent when absent', async (t) => {
  const { emu, client } = await setup(t)
  await client.assumeRole(input)
  t.match(emu.calls[0], { policy: undefined, externalId: undefined, sourceIdentity: undefined })
})

t.test('classification, one HTTP request per call, nothing secret on the error', async (t) => {
  const { emu, client } = await setup(t)
  const cases: Array<[string, Fault | undefined, AssumeRoleInput, Partial<StsError>]> = [
    ['throttled', { kind: 'throttle', count: 1 }, input, { kind: 'throttled', code: 'Throttling.User', status: 400, timedOut: false }],
    ['throttled with a hint', { kind: 'throttle', count: 1, retryAfterSeconds: 3 }, input, { kind: 'throttled', code: 'Throttling.User', retryAfterMs: 3000 }],
    ['500', { kind: 'server-error', count: 1 }, input, { kind: 'unavailable', code: 'InternalError', status: 500 }],
    ['502', { kind: 'server-error', count: 1, status: 502 }, input, { kind: 'unavailable', code: 'ServiceUnavailable', status: 502 }],
    ['503', { kind: 'server-error', count: 1, status: 503 }, input, { kind: 'unavailable', code: 'ServiceUnavailable', status: 503 }],
    ['throttling code on a 503', { kind: 'reject', code: 'Throttling', status: 503, count: 1 }, input, { kind: 'throttled', code: 'Throttling', status: 503 }],
    ['NoPermission', { kind: 'reject', code: 'NoPermission', status: 403, count: 1 }, input, { kind: 'rejected', code: 'NoPermission', status: 403 }],
    ['PolicyGrammar (injected)', { kind: 'reject', code: 'InvalidParameter.PolicyGrammar', count: 1 }, input, { kind: 'rejected', code: 'InvalidParameter.PolicyGrammar', status: 400 }],
    ['PolicyGrammar (real check)', undefined, { ...input, policy: '{"Version":"1"}' }, { kind: 'rejected', code: 'InvalidParameter.PolicyGrammar', status: 400 }],
    ['session name', undefined, { ...input, roleSessionName: 'a b' }, { kind: 'rejected', code: 'InvalidParameter.RoleSessionName', status: 400 }],
    ['unknown role', undefined, { ...input, roleArn: 'acs:ram::1:role/none' }, { kind: 'rejected', code: 'EntityNotExist.Role', status: 404 }]
  ]
  for (const [name, fault, call, expected] of cases) {
    t.test(name, async (t) => {
      if (fault !== undefined) emu.inject(fault)
      const before = emu.callCount
      const err = await stsFailure(client.assumeRole(call))
      t.match(err, expected)
      t.equal(err.name, 'StsError')
      t.match(err.requestId, /^[0-9A-F-]{36}$/)
      t.equal(emu.callCount - before, 1, 'exactly one HTTP request (no SDK retry)')
      assertSafe(t, err)
    })
  }
})

t.test('signature refusals are rejected, and say nothing secret', async (t) => {
  const { emu } = await setup(t)
  const wrongSecret = randomBytes(24).toString('base64url')
  const client = createStsClient({ endpoint: emu.url, timeoutMs: 2000, credential: createStaticCredential(KEY_ID, wrongSecret) })
  const err = await stsFailure(client.assumeRole(input))
  t.match(err, { kind: 'rejected', code: 'SignatureDoesNotMatch', status: 400 })
  assertSafe(t, err, [SECRET, wrongSecret])
  const unknown = createStsClient({ endpoint: emu.url, timeoutMs: 2000, credential: createStaticCredential('testkeyunknown', wrongSecret) })
  t.match(await stsFailure(unknown.assumeRole(input)), { kind: 'rejected', code: 'InvalidAccessKeyId.NotFound', status: 404 })
})

t.test('an upstream message is trimmed and redacted', async (t) => {
  const { emu, client } = await setup(t)
  emu.inject({ kind: 'reject', code: 'NoPermission', status: 403, count: 1, message: `You are not authorized. Authorization: ACS3-HMAC-SHA256 Credential=${KEY_ID},SignedHeaders=host,Signature=${'ab'.repeat(32)} x${'y'.repeat(300)}` })
  const err = await stsFailure(client.assumeRole(input))
  t.match(err.message, /^STS AssumeRole rejected: NoPermission \(HTTP 403\) request [0-9A-F-]+ - You are not authorized\./)
  t.ok(err.message.length < 300, 'bounded')
  assertSafe(t, err)
})

t.test('retry hint only when the upstream sends one', async (t) => {
  const { emu, client } = await setup(t)
  emu.inject({ kind: 'throttle', count: 1 })
  const err = await stsFailure(client.assumeRole(input))
  t.equal(err.retryAfterMs, undefined)
  t.notOk('retryAfterMs' in err)
})

t.test('hang: rejects at the timeout and the socket is really closed', async (t) => {
  const { emu, client } = await setup(t, 300)
  emu.inject({ kind: 'hang', count: 1 })
  const started = performance.now()
  const err = await stsFailure(client.assumeRole(input))
  const elapsed = performance.now() - started
  t.match(err, { kind: 'unavailable', code: 'TIMEOUT', timedOut: true })
  t.ok(elapsed >= 290 && elapsed < 300 + 250, `rejected after ${Math.round(elapsed)} ms`)
  t.equal(emu.callCount, 1, 'one attempt')
  assertSafe(t, err)
  // The SDK's own timers destroy the socket right after our deadline.
  const waitStart = performance.now()
  while (emu.openConnections > 0 && performance.now() - waitStart < 500) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(emu.openConnections, 0, 'the emulator saw the connection close')
  // And the next call works (a fresh socket, no poisoned keep-alive state).
  t.match(await client.assumeRole(input), { accessKeyId: /^STS\./ })
})

t.test('slow beyond the timeout is a timeout; slow within it is fine', async (t) => {
  const { emu, client } = await setup(t, 300)
  emu.inject({ kind: 'slow', delayMs: 100, count: 1 })
  t.match(await client.assumeRole(input), { accessKeyId: /^STS\./ })
  emu.inject({ kind: 'slow', delayMs: 1000, count: 1 })
  t.match(await stsFailure(client.assumeRole(input)), { kind: 'unavailable', timedOut: true })
  t.match(await client.assumeRole(input), { accessKeyId: /^STS\./ }, 'recovers')
})

t.test('a hung call on a reused keep-alive socket still ends at the timeout', async (t) => {
  // httpx leaves its read timer armed after a success; when the socket is reused before
  // that timer fires, it clears the next request's read timer. Our deadline and the
  // socket idle timeout (connectTimeout) must still end the call and the socket.
  const { emu, client } = await setup(t, 250)
  await client.assumeRole(input)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(emu.openConnections, 1, 'one kept-alive socket')
  emu.inject({ kind: 'hang', count: 1 })
  const started = performance.now()
  t.match(await stsFailure(client.assumeRole(input)), { kind: 'unavailable', timedOut: true })
  t.ok(performance.now() - started < 250 + 250, 'rejected in time')
  while (emu.openConnections > 0 && performance.now() - started < 1000) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(emu.openConnections, 0, 'and the socket was closed')
})

t.test('connection refused', async (t) => {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  const client = createStsClient({ endpoint: `http://127.0.0.1:${port}`, timeoutMs: 1000, credential: createStaticCredential(KEY_ID, SECRET) })
  const err = await stsFailure(client.assumeRole(input))
  t.match(err, { kind: 'unavailable', code: 'ECONNREFUSED', timedOut: false })
  t.equal(err.status, undefined)
  assertSafe(t, err)
})

t.test('connection reset mid-call', async (t) => {
  let hits = 0
  const server = createServer((req) => { hits++; req.socket.destroy() })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const { port } = server.address() as AddressInfo
  const client = createStsClient({ endpoint: `http://127.0.0.1:${port}`, timeoutMs: 1000, credential: createStaticCredential(KEY_ID, SECRET) })
  t.match(await stsFailure(client.assumeRole(input)), { kind: 'unavailable', code: 'ECONNRESET' })
  t.equal(hits, 1, 'no retry')
})

t.test('bad responses', async (t) => {
  const bodies: Array<[string, number, string, string]> = [
    ['no Credentials', 200, JSON.stringify({ RequestId: 'R1' }), 'MissingCredentials'],
    ['empty secret', 200, JSON.stringify({ RequestId: 'R1', Credentials: { AccessKeyId: 'STS.x', AccessKeySecret: '', SecurityToken: 'CAIS', Expiration: '2030-01-01T00:00:00Z' } }), 'MissingCredentials'],
    ['unparseable Expiration', 200, JSON.stringify({ RequestId: 'R1', Credentials: { AccessKeyId: 'STS.x', AccessKeySecret: 's', SecurityToken: 'CAIS', Expiration: 'tomorrow' } }), 'InvalidExpiration'],
    ['impossible Expiration', 200, JSON.stringify({ RequestId: 'R1', Credentials: { AccessKeyId: 'STS.x', AccessKeySecret: 's', SecurityToken: 'CAIS', Expiration: '2030-13-45T99:00:00Z' } }), 'InvalidExpiration'],
    ['not JSON', 200, '<html>hello</html>', 'InvalidJSON']
  ]
  let next: [number, string] = [200, '']
  const server = createServer((_req, res) => { res.writeHead(next[0], { 'content-type': 'application/json' }).end(next[1]) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); return new Promise((resolve) => server.close(resolve)) })
  const { port } = server.address() as AddressInfo
  const client = createStsClient({ endpoint: `http://127.0.0.1:${port}`, timeoutMs: 1000, credential: createStaticCredential(KEY_ID, SECRET) })
  for (const [name, status, body, code] of bodies) {
    next = [status, body]
    const err = await stsFailure(client.assumeRole(input))
    t.match(err, { kind: 'bad_response', code }, name)
    t.notOk(JSON.stringify(err).includes('STS.x'), `${name}: nothing of the body copied`)
  }
})

t.test('credential chain failures are unavailable, without the provider text', async (t) => {
  const { emu } = await setup(t)
  const broken: CredentialLike = { getCredential: async () => { throw new Error(`provider exploded with ${SECRET}`) } }
  const client = createStsClient({ endpoint: emu.url, timeoutMs: 1000, credential: broken })
  const err = await stsFailure(client.assumeRole(input))
  t.match(err, { kind: 'unavailable', code: 'CredentialUnavailable' })
  assertSafe(t, err)
  t.equal(emu.callCount, 0)
})

t.test('the default chain reads ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET', async (t) => {
  const { emu } = await setup(t)
  const saved = { id: process.env.ALIBABA_CLOUD_ACCESS_KEY_ID, secret: process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET }
  process.env.ALIBABA_CLOUD_ACCESS_KEY_ID = KEY_ID
  process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET = SECRET
  t.teardown(() => {
    for (const [k, v] of [['ALIBABA_CLOUD_ACCESS_KEY_ID', saved.id], ['ALIBABA_CLOUD_ACCESS_KEY_SECRET', saved.secret]] as const) {
      if (v === undefined) Reflect.deleteProperty(process.env, k)
      else process.env[k] = v
    }
  })
  const client = createStsClient({ endpoint: emu.url, timeoutMs: 2000, credential: createUpstreamCredential() })
  t.match(await client.assumeRole(input), { accessKeyId: /^STS\./ })
  t.equal(emu.calls[0]?.caller, KEY_ID)
})

t.test('createStaticCredential refuses empty values', async (t) => {
  t.throws(() => createStaticCredential('', 'x'), TypeError)
  t.throws(() => createStaticCredential('x', ''), TypeError)
})

t.test('endpoint and timeout are validated', async (t) => {
  const credential = createStaticCredential(KEY_ID, SECRET)
  for (const endpoint of ['sts.aliyuncs.com', 'ftp://sts.aliyuncs.com', 'https://sts.aliyuncs.com/path', 'https://u:p@sts.aliyuncs.com', 'https://sts.aliyuncs.com/?a=1']) {
    t.throws(() => createStsClient({ endpoint, timeoutMs: 1000, credential }), TypeError, endpoint)
  }
  t.doesNotThrow(() => createStsClient({ endpoint: 'https://sts.aliyuncs.com/', timeoutMs: 1000, credential }))
  t.throws(() => createStsClient({ endpoint: 'https://sts.aliyuncs.com', timeoutMs: 0, credential }), TypeError)
})
