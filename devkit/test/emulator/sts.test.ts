// The emulator against the real SDK over loopback HTTP: what it refuses, what it accepts,
// and each fault kind for N calls then recovery. Tampering cases replay a request the SDK
// really signed (captured on a throwaway server) with one thing changed.
import t from 'tap'
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import StsModule, { AssumeRoleRequest } from '@alicloud/sts20150401'
import { $OpenApiUtil } from '@alicloud/openapi-core'
import { startStsEmulator, type StsEmulator, type StsEmulatorOptions } from '../../emulator/sts.js'
import { createStaticCredential } from '../../../src/alicloud/credentials.js'
import { MAX_POLICY_BYTES } from '../../emulator/policy-grammar.js'

const SdkClient = StsModule.default
const ROLE = 'acs:ram::1234567890123456:role/uploader'
const SHORT_ROLE = 'acs:ram::1234567890123456:role/short'

function testKey (): { id: string, secret: string } {
  return { id: `testkey${randomBytes(8).toString('hex')}`, secret: randomBytes(24).toString('base64url') }
}

const KEY = testKey()

async function emulator (t: { teardown: (fn: () => unknown) => void }, extra: Partial<StsEmulatorOptions> = {}): Promise<StsEmulator> {
  const emu = await startStsEmulator({
    accessKeys: { [KEY.id]: KEY.secret },
    roles: { [ROLE]: { maxSessionDuration: 7200 }, [SHORT_ROLE]: {} },
    ...extra
  })
  t.teardown(() => emu.close())
  return emu
}

/** The raw SDK (not our client), so these tests pin the emulator alone. */
function sdk (endpoint: string, key = KEY): InstanceType<typeof SdkClient> {
  return new SdkClient(new $OpenApiUtil.Config({
    credential: createStaticCredential(key.id, key.secret),
    endpoint: new URL(endpoint).host,
    protocol: 'http',
    readTimeout: 2000,
    connectTimeout: 2000
  }))
}

interface Params { roleArn?: string, roleSessionName?: string, durationSeconds?: number, policy?: string, externalId?: string, sourceIdentity?: string }
const ok: Params = { roleArn: ROLE, roleSessionName: 'alice', durationSeconds: 900 }

/** The upstream code of a refused call, or 'ok'. */
async function outcome (client: InstanceType<typeof SdkClient>, params: Params): Promise<string> {
  try {
    await client.assumeRole(new AssumeRoleRequest(params))
    return 'ok'
  } catch (err) {
    return String((err as { code?: unknown }).code)
  }
}

interface Captured { method: string, url: string, headers: IncomingHttpHeaders }

/** Lets the SDK sign a request against a throwaway server and returns it as sent. */
async function captureSigned (params: Params): Promise<Captured> {
  let captured: Captured | undefined
  const server = createServer((req, res) => {
    captured = { method: req.method ?? '', url: req.url ?? '', headers: req.headers }
    res.writeHead(500, { 'content-type': 'application/json' }).end('{"Code":"Captured"}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await outcome(sdk(`http://127.0.0.1:${port}`), params)
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  if (captured === undefined) throw new Error('nothing captured')
  return captured
}

/** Sends a captured request (possibly altered) to the emulator; returns status and Code. */
async function replay (emu: StsEmulator, c: Captured, body = ''): Promise<{ status: number, code: string | undefined }> {
  const { port } = new URL(emu.url)
  return await new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = {}
    for (const [k, v] of Object.entries(c.headers)) if (v !== undefined) headers[k] = v
    if (body !== '') headers['content-length'] = String(Buffer.byteLength(body))
    const req = httpRequest({ host: '127.0.0.1', port, method: c.method, path: c.url, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        const parsed = text === '' ? {} : JSON.parse(text) as { Code?: string }
        resolve({ status: res.statusCode ?? 0, code: parsed.Code })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

function policyOfSize (bytes: number): string {
  const base = { Version: '1', Statement: [{ Effect: 'Allow', Action: ['oss:GetObject'], Resource: ['acs:oss:*:*:bucket/users/x'] }] }
  const skeleton = JSON.stringify(base)
  const pad = bytes - skeleton.length
  if (pad < 0) throw new Error('too small')
  base.Statement[0]!.Resource[0] = 'acs:oss:*:*:bucket/users/x' + 'a'.repeat(pad)
  const text = JSON.stringify(base)
  if (Buffer.byteLength(text) !== bytes) throw new Error('size arithmetic')
  return text
}

t.test('a valid call gets STS-shaped credentials and is recorded', async (t) => {
  const emu = await emulator(t)
  const client = sdk(emu.url)
  const res = await client.assumeRole(new AssumeRoleRequest({ ...ok, durationSeconds: 3600, externalId: 'ext-1', sourceIdentity: 'alice@idp' }))
  const c = res.body?.credentials
  t.equal(res.statusCode, 200)
  t.match(c?.accessKeyId, /^STS\.[A-Za-z0-9]{24,}$/)
  t.equal(c?.accessKeySecret?.length, 44)
  t.match(c?.securityToken, /^CAIS[A-Za-z0-9+/=]{600,}$/)
  t.match(c?.expiration, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
  t.equal(res.body?.assumedRoleUser?.arn, `${ROLE}/alice`)
  t.equal(res.body?.sourceIdentity, 'alice@idp', 'the SourceIdentity set is echoed')
  t.equal(emu.callCount, 1)
  const call = emu.calls[0]
  t.match(call, { caller: KEY.id, roleArn: ROLE, roleSessionName: 'alice', durationSeconds: 3600, policy: undefined, externalId: 'ext-1', sourceIdentity: 'alice@idp', outcome: 'ok' })
  const issued = emu.issued(c?.accessKeyId ?? '')
  t.equal(issued?.accessKeySecret, c?.accessKeySecret)
  t.equal(issued?.securityToken, c?.securityToken)
  t.equal(issued?.roleArn, ROLE)
  t.equal(issued?.policy, undefined)
  t.equal(issued?.expiration.toISOString().replace('.000Z', 'Z'), c?.expiration)
  t.equal(emu.issued('STS.nope'), undefined)
})

t.test('Expiration is emulator-clock now + DurationSeconds', async (t) => {
  let clock = Date.now()
  const emu = await emulator(t, { now: () => clock })
  clock = Math.floor(Date.now() / 1000) * 1000 + 500
  const res = await sdk(emu.url).assumeRole(new AssumeRoleRequest({ ...ok, durationSeconds: 1800 }))
  t.equal(res.body?.credentials?.expiration, new Date(clock - 500 + 1800_000).toISOString().replace('.000Z', 'Z'))
})

t.test('authentication refusals', async (t) => {
  const emu = await emulator(t)
  t.equal(await outcome(sdk(emu.url, { id: KEY.id, secret: testKey().secret }), ok), 'SignatureDoesNotMatch', 'wrong secret')
  t.equal(await outcome(sdk(emu.url, testKey()), ok), 'InvalidAccessKeyId.NotFound', 'unknown AccessKey id')
  t.equal(emu.callCount, 0, 'refused before it counts as an AssumeRole')

  const signed = await captureSigned(ok)
  t.match(signed.headers.authorization, /^ACS3-HMAC-SHA256 Credential=/)
  const cases: Array<[string, Captured, string, number, string?]> = [
    ['tampered query (RoleSessionName)', { ...signed, url: signed.url.replace('RoleSessionName=alice', 'RoleSessionName=mallory') }, 'SignatureDoesNotMatch', 400],
    ['tampered query (DurationSeconds)', { ...signed, url: signed.url.replace('DurationSeconds=900', 'DurationSeconds=3600') }, 'SignatureDoesNotMatch', 400],
    ['added parameter', { ...signed, url: signed.url + '&Policy=x' }, 'SignatureDoesNotMatch', 400],
    ['repeated parameter', { ...signed, url: signed.url + '&RoleSessionName=alice' }, 'InvalidParameter', 400],
    ['tampered signed header', { ...signed, headers: { ...signed.headers, 'x-acs-version': '2015-04-02' } }, 'SignatureDoesNotMatch', 400],
    ['unsigned x-acs header added', { ...signed, headers: { ...signed.headers, 'x-acs-extra': '1' } }, 'IncompleteSignature', 400],
    ['method changed', { ...signed, method: 'GET' }, 'SignatureDoesNotMatch', 400],
    ['no Authorization', { ...signed, headers: { ...signed.headers, authorization: undefined } }, 'IncompleteSignature', 400],
    ['garbled Authorization', { ...signed, headers: { ...signed.headers, authorization: 'ACS3-HMAC-SHA256 Credential=x' } }, 'IncompleteSignature', 400],
    ['other algorithm', { ...signed, headers: { ...signed.headers, authorization: String(signed.headers.authorization).replace('ACS3-HMAC-SHA256', 'ACS3-HMAC-SM3') } }, 'IncompleteSignature', 400],
    ['signature flipped', { ...signed, headers: { ...signed.headers, authorization: String(signed.headers.authorization).replace(/Signature=(.)/, (_m, c: string) => `Signature=${c === '0' ? '1' : '0'}`) } }, 'SignatureDoesNotMatch', 400]
  ]
  for (const [name, req, code, status] of cases) {
    t.match(await replay(emu, req), { status, code }, name)
  }
  t.match(await replay(emu, signed, 'x=1'), { status: 400, code: 'SignatureDoesNotMatch' }, 'body does not match x-acs-content-sha256')
  t.equal(emu.callCount, 0)

  t.match(await replay(emu, signed), { status: 200 }, 'the untouched capture is accepted')
  t.match(await replay(emu, signed), { status: 400, code: 'SignatureNonceUsed' }, 'and cannot be replayed')
  t.equal(emu.callCount, 1)
})

t.test('x-acs-date more than 15 minutes from the emulator clock', async (t) => {
  let skew = 0
  const emu = await emulator(t, { now: () => Date.now() + skew })
  const client = sdk(emu.url)
  skew = 14 * 60_000
  t.equal(await outcome(client, ok), 'ok', '14 minutes ahead is fine')
  skew = 16 * 60_000
  t.equal(await outcome(client, ok), 'InvalidTimeStamp.Expired', 'request 16 minutes old')
  skew = -16 * 60_000
  t.equal(await outcome(client, ok), 'InvalidTimeStamp.Expired', 'request 16 minutes in the future')
})

t.test('wrong action or version', async (t) => {
  const emu = await emulator(t)
  // A correctly signed call of another STS action.
  const err = await sdk(emu.url).getCallerIdentity().catch((e: unknown) => e)
  t.match(err, { statusCode: 404, code: 'InvalidAction.NotFound' })
  t.equal(emu.callCount, 0)
})

t.test('parameter validation', async (t) => {
  const emu = await emulator(t)
  const client = sdk(emu.url)
  const cases: Array<[string, Params, string]> = [
    ['session name 1 char', { ...ok, roleSessionName: 'a' }, 'InvalidParameter.RoleSessionName'],
    ['session name 65 chars', { ...ok, roleSessionName: 'a'.repeat(65) }, 'InvalidParameter.RoleSessionName'],
    ['session name with a space', { ...ok, roleSessionName: 'a b' }, 'InvalidParameter.RoleSessionName'],
    ['session name with *', { ...ok, roleSessionName: 'a*' }, 'InvalidParameter.RoleSessionName'],
    ['session name with /', { ...ok, roleSessionName: 'a/b' }, 'InvalidParameter.RoleSessionName'],
    ['session name missing', { roleArn: ROLE, durationSeconds: 900 }, 'MissingParameter.RoleSessionName'],
    ['duration 899', { ...ok, durationSeconds: 899 }, 'InvalidParameter.DurationSeconds'],
    ['duration over the role maximum', { ...ok, durationSeconds: 7201 }, 'InvalidParameter.DurationSeconds'],
    ['duration over the default maximum (3600)', { ...ok, roleArn: SHORT_ROLE, durationSeconds: 3601 }, 'InvalidParameter.DurationSeconds'],
    ['duration not an integer', { ...ok, durationSeconds: 1000.5 }, 'InvalidParameter.DurationSeconds'],
    ['RoleArn malformed', { ...ok, roleArn: 'acs:ram::123:user/uploader' }, 'InvalidParameter.RoleArn'],
    ['RoleArn with a wildcard', { ...ok, roleArn: 'acs:ram::123:role/*' }, 'InvalidParameter.RoleArn'],
    ['RoleArn missing', { roleSessionName: 'alice', durationSeconds: 900 }, 'MissingParameter.RoleArn'],
    ['unknown role', { ...ok, roleArn: 'acs:ram::1234567890123456:role/other' }, 'EntityNotExist.Role'],
    ['ExternalId too short', { ...ok, externalId: 'x' }, 'InvalidParameter.ExternalId'],
    ['SourceIdentity with a space', { ...ok, sourceIdentity: 'a b' }, 'InvalidParameter.SourceIdentity'],
    ['2049-byte policy', { ...ok, policy: policyOfSize(MAX_POLICY_BYTES + 1) }, 'InvalidParameter.PolicySize'],
    ['policy not JSON', { ...ok, policy: '{"Version":"1",' }, 'InvalidParameter.PolicyGrammar'],
    ['policy missing Version', { ...ok, policy: '{"Statement":[{"Effect":"Allow","Action":"oss:GetObject","Resource":"*"}]}' }, 'InvalidParameter.PolicyGrammar'],
    ['policy with empty Statement', { ...ok, policy: '{"Version":"1","Statement":[]}' }, 'InvalidParameter.PolicyGrammar'],
    ['policy with bad Effect', { ...ok, policy: '{"Version":"1","Statement":[{"Effect":"allow","Action":"oss:GetObject","Resource":"*"}]}' }, 'InvalidParameter.PolicyGrammar'],
    ['policy with an unknown key', { ...ok, policy: '{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject","Resource":"*","Sid":"x"}]}' }, 'InvalidParameter.PolicyGrammar'],
    ['empty policy', { ...ok, policy: '' }, 'InvalidParameter.PolicyGrammar']
  ]
  for (const [name, params, code] of cases) {
    t.equal(await outcome(client, params), code, name)
  }
  t.equal(emu.callCount, cases.length, 'refused parameters still count as calls')
  t.same(emu.calls.map((c) => c.outcome), cases.map(([, , code]) => code))
  t.equal(await outcome(client, { ...ok, durationSeconds: 7200 }), 'ok', 'the role maximum itself is fine')
  t.equal(await outcome(client, { roleArn: ROLE, roleSessionName: 'alice' }), 'ok', 'DurationSeconds is optional')
  t.equal(emu.calls.at(-1)?.durationSeconds, undefined)
})

t.test('a 2048-byte valid policy is accepted and kept with the credential', async (t) => {
  const emu = await emulator(t)
  const policy = policyOfSize(MAX_POLICY_BYTES)
  const res = await sdk(emu.url).assumeRole(new AssumeRoleRequest({ ...ok, policy }))
  t.equal(emu.calls[0]?.policy, policy)
  t.same(emu.issued(res.body?.credentials?.accessKeyId ?? '')?.policy, JSON.parse(policy))
})

t.test('without roles, any well-formed RoleArn is accepted', async (t) => {
  const emu = await startStsEmulator({ accessKeys: { [KEY.id]: KEY.secret } })
  t.teardown(() => emu.close())
  t.equal(await outcome(sdk(emu.url), { ...ok, roleArn: 'acs:ram::42:role/anything' }), 'ok')
  t.equal(await outcome(sdk(emu.url), { ...ok, roleArn: 'acs:ram::42:role/anything', durationSeconds: 3601 }), 'InvalidParameter.DurationSeconds')
})

t.test('faults apply to N calls, in order, then the emulator recovers', async (t) => {
  const emu = await emulator(t)
  const client = sdk(emu.url)
  emu.inject({ kind: 'throttle', count: 2 })
  emu.inject({ kind: 'server-error', count: 1 })
  emu.inject({ kind: 'server-error', status: 503, count: 1 })
  emu.inject({ kind: 'reject', code: 'NoPermission', status: 403, count: 1 })
  const got = []
  for (let i = 0; i < 6; i++) got.push(await outcome(client, ok))
  t.same(got, ['Throttling.User', 'Throttling.User', 'InternalError', 'ServiceUnavailable', 'NoPermission', 'ok'])
  t.same(emu.calls.map((c) => c.outcome), got, 'faulted calls are recorded')
})

t.test('throttle: HTTP 400 Throttling.User and the SDK sees the retry hint', async (t) => {
  const emu = await emulator(t)
  emu.inject({ kind: 'throttle', retryAfterSeconds: 2 })
  const err = await sdk(emu.url).assumeRole(new AssumeRoleRequest(ok)).catch((e: unknown) => e) as Record<string, unknown>
  t.match(err, { name: 'ThrottlingError', statusCode: 400, code: 'Throttling.User', retryAfter: 2000 })
  t.equal(await outcome(sdk(emu.url), ok), 'Throttling.User', 'no count: lasts until cleared')
  emu.clearFaults()
  t.equal(await outcome(sdk(emu.url), ok), 'ok')
})

t.test('server-error 502, reject with a custom status', async (t) => {
  const emu = await emulator(t)
  emu.inject({ kind: 'server-error', status: 502, count: 1 })
  emu.inject({ kind: 'reject', code: 'InvalidParameter.PolicyGrammar', count: 1 })
  const e1 = await sdk(emu.url).assumeRole(new AssumeRoleRequest(ok)).catch((e: unknown) => e)
  t.match(e1, { name: 'ServerError', statusCode: 502, code: 'ServiceUnavailable' })
  const e2 = await sdk(emu.url).assumeRole(new AssumeRoleRequest(ok)).catch((e: unknown) => e)
  t.match(e2, { name: 'ClientError', statusCode: 400, code: 'InvalidParameter.PolicyGrammar' })
})

t.test('slow answers correctly after the delay', async (t) => {
  const emu = await emulator(t)
  emu.inject({ kind: 'slow', delayMs: 300, count: 1 })
  const client = sdk(emu.url)
  let started = performance.now()
  t.equal(await outcome(client, ok), 'ok')
  t.ok(performance.now() - started >= 290, 'delayed')
  started = performance.now()
  t.equal(await outcome(client, ok), 'ok')
  t.ok(performance.now() - started < 290, 'then fast again')
})

t.test('latencyMs is added to every call', async (t) => {
  const emu = await emulator(t, { latencyMs: 80 })
  const started = performance.now()
  t.equal(await outcome(sdk(emu.url), { ...ok, roleSessionName: 'x' }), 'InvalidParameter.RoleSessionName')
  t.ok(performance.now() - started >= 75)
})

t.test('hang never answers; close() ends the hung sockets', async (t) => {
  const emu = await startStsEmulator({ accessKeys: { [KEY.id]: KEY.secret } })
  emu.inject({ kind: 'hang', count: 1 })
  const client = new SdkClient(new $OpenApiUtil.Config({
    credential: createStaticCredential(KEY.id, KEY.secret),
    endpoint: new URL(emu.url).host,
    protocol: 'http',
    readTimeout: 10_000,
    connectTimeout: 10_000
  }))
  const pending = client.assumeRole(new AssumeRoleRequest(ok)).then(() => 'answered', () => 'failed')
  const started = performance.now()
  while (emu.callCount === 0 && performance.now() - started < 2000) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(emu.calls[0]?.outcome, 'hang')
  t.equal(emu.openConnections, 1)
  const closed = performance.now()
  await emu.close()
  t.equal(await pending, 'failed', 'the caller sees the connection end')
  t.ok(performance.now() - closed < 1000, 'close() did not wait for the hung call')
  t.equal(emu.openConnections, 0)
})

t.test('slow call cut short by close()', async (t) => {
  const emu = await startStsEmulator({ accessKeys: { [KEY.id]: KEY.secret } })
  emu.inject({ kind: 'slow', delayMs: 60_000 })
  const pending = sdk(emu.url).assumeRole(new AssumeRoleRequest(ok)).then(() => 'answered', () => 'failed')
  const started = performance.now()
  while (emu.callCount === 0 && performance.now() - started < 2000) await new Promise((resolve) => setTimeout(resolve, 5))
  await emu.close()
  t.equal(await pending, 'failed')
  t.ok(performance.now() - started < 2000)
  t.equal(emu.calls[0]?.outcome, 'aborted')
})

t.test('reset() forgets calls, faults and issued credentials', async (t) => {
  const emu = await emulator(t)
  const res = await sdk(emu.url).assumeRole(new AssumeRoleRequest(ok))
  emu.inject({ kind: 'throttle' })
  emu.reset()
  t.equal(emu.callCount, 0)
  t.equal(emu.issued(res.body?.credentials?.accessKeyId ?? ''), undefined)
  t.equal(await outcome(sdk(emu.url), ok), 'ok')
})

t.test('listens on loopback only; count must be positive', async (t) => {
  const emu = await emulator(t)
  t.match(emu.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal(emu.endpoint, emu.url)
  t.throws(() => emu.inject({ kind: 'hang', count: 0 }), RangeError)
})
