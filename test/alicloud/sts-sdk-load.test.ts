// The STS SDK is loaded on first use (sts-client.ts), not at start: the load happens once,
// is warmed as soon as the server listens (http/warm-up.ts) and not before, /readyz waits
// for it (ready means warm, issue 25) while /healthz does not, and a
// load that fails answers like an unreachable STS (503, the registry's code, no STS
// call) and is tried again by the next call rather than kept broken.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import type { FastifyInstance } from 'fastify'
import { startStsEmulator } from '../../devkit/emulator/sts.js'
import { createDevIssuer } from '../../devkit/dev/issuer.js'
import { createStsClient, StsError, type StsClient, type StsClientOptions } from '../../src/alicloud/sts-client.js'
import { type AssumeRoleInput } from '../../src/alicloud/sts-types.js'
import { createStaticCredential } from '../../src/alicloud/credentials.js'
import { buildApp } from '../../src/app.js'
import { prepare } from '../../src/prepare.js'
import { parseConfig } from '../../src/config/load.js'
import { baseConfig, build } from '../helpers/build.js'
import { stsFailure } from '../helpers/sts.js'

const ROLE = 'acs:ram::1234567890123456:role/uploader'
const KEY_ID = `testkey${randomBytes(8).toString('hex')}`
const SECRET = randomBytes(24).toString('base64url')
const input: AssumeRoleInput = { roleArn: ROLE, roleSessionName: 'alice', durationSeconds: 900 }

type Loader = NonNullable<StsClientOptions['loadSdk']>
const realSdk: Loader = async () => await import('../../src/alicloud/sts-sdk.js')
const brokenSdk: Loader = async () => { throw new Error(`Cannot find package '@alicloud/sts20150401' (${SECRET})`) }

async function emulator (t: { teardown: (fn: () => unknown) => void }): Promise<Awaited<ReturnType<typeof startStsEmulator>>> {
  const emu = await startStsEmulator({ accessKeys: { [KEY_ID]: SECRET }, roles: { [ROLE]: { maxSessionDuration: 3600 } } })
  t.teardown(() => emu.close())
  return emu
}

t.test('the SDK loads on first use, once, and warmUp loads it ahead of the first call', async (t) => {
  const emu = await emulator(t)
  let loads = 0
  const client = createStsClient({ endpoint: emu.url, timeoutMs: 5000, credential: createStaticCredential(KEY_ID, SECRET), loadSdk: async () => { loads++; return await realSdk() } })
  t.equal(loads, 0, 'nothing loaded when the client is made')
  await client.warmUp?.()
  t.equal(loads, 1, 'warmUp loads the SDK')
  const first = await client.assumeRole(input)
  const second = await client.assumeRole(input)
  t.match(first, { accessKeyId: String, securityToken: String })
  t.ok(second.expiration instanceof Date)
  t.equal(loads, 1, 'calls reuse the loaded SDK')
  t.equal(emu.callCount, 2)
})

t.test('a load that fails is an unavailable StsError, tried again by the next call', async (t) => {
  const emu = await emulator(t)
  let loader: Loader = brokenSdk
  let loads = 0
  const client = createStsClient({ endpoint: emu.url, timeoutMs: 5000, credential: createStaticCredential(KEY_ID, SECRET), loadSdk: async () => { loads++; return await loader() } })

  await t.rejects(client.warmUp?.() ?? Promise.resolve(), { name: 'StsError', kind: 'unavailable', code: 'SdkUnavailable' }, 'warmUp rejects with an StsError')
  const err = await stsFailure(client.assumeRole(input))
  t.match(err, { kind: 'unavailable', code: 'SdkUnavailable', timedOut: false })
  t.notOk(JSON.stringify(err).includes(SECRET) || String(err.stack).includes(SECRET) || 'cause' in err, 'the load error is not carried along')
  t.equal(loads, 2, 'the failed load was not kept: the call tried again')
  t.equal(emu.callCount, 0, 'no STS call')

  loader = realSdk
  t.match(await client.assumeRole(input), { accessKeyId: String }, 'once the SDK loads, calls go through')
  t.equal(loads, 3)
  t.equal(emu.callCount, 1)
})

t.test('an SDK client that cannot be made is the same unavailable StsError', async (t) => {
  const client = createStsClient({ endpoint: 'http://127.0.0.1:9', timeoutMs: 1000, loadSdk: async () => ({ createSdkAssumeRole: () => { throw new TypeError(`bad config ${SECRET}`) } }) })
  const err = await stsFailure(client.assumeRole(input))
  t.match(err, { kind: 'unavailable', code: 'SdkUnavailable' })
  t.notOk(err.message.includes(SECRET))
})

t.test('the call deadline covers loading the SDK', async (t) => {
  const client = createStsClient({ endpoint: 'http://127.0.0.1:9', timeoutMs: 100, loadSdk: async () => await new Promise<never>(() => {}) })
  t.match(await stsFailure(client.assumeRole(input)), { kind: 'unavailable', code: 'TIMEOUT', timedOut: true })
})

t.test('a bad endpoint is still refused when the client is made, before any load', async (t) => {
  let loads = 0
  t.throws(() => createStsClient({ endpoint: 'ftp://sts.aliyuncs.com', timeoutMs: 1000, loadSdk: async () => { loads++; return await realSdk() } }), TypeError)
  t.equal(loads, 0)
})

t.test('through the service: a failed load answers 503 STS_VENDING_UPSTREAM_UNAVAILABLE, readiness holds, no STS call', async (t) => {
  const h = await build(t, {
    deps: { stsClient: createStsClient({ endpoint: 'http://127.0.0.1:9', timeoutMs: 1000, credential: createStaticCredential(KEY_ID, SECRET), loadSdk: brokenSdk }) }
  })
  const res = await h.vend(h.token({ sub: 'alice' }))
  t.equal(res.statusCode, 503)
  t.equal(res.json.code, 'STS_VENDING_UPSTREAM_UNAVAILABLE')
  t.ok(Number(res.headers['retry-after']) > 0, 'Retry-After, as for an unreachable STS')
  t.equal(h.emulator.callCount, 0)
  t.equal((await h.app.inject('/readyz')).statusCode, 200, 'readiness does not depend on the SDK')
  t.notOk(h.logs.some((l) => l.includes(SECRET)), 'the load error text is not logged')
})

/** An app on an STS client whose warmUp is recorded; `settle` decides how warmUp ends. */
async function appWithWarmUp (t: { teardown: (fn: () => unknown) => void }, settle: () => Promise<void>) {
  const issuer = createDevIssuer()
  const config = parseConfig(baseConfig(issuer, 'http://127.0.0.1:9'))
  const logs: string[] = []
  const warmUps: boolean[] = []
  const client: StsClient = {
    assumeRole: async () => { throw new Error('not called') },
    warmUp: async () => {
      warmUps.push(app.server.listening)
      await settle()
    }
  }
  const app = await buildApp(prepare(config, {}), { logger: pino({ level: 'info' }, { write: (l: string) => { logs.push(l) } }), stsClient: client, defaultMetrics: false })
  t.teardown(() => app.close())
  return { app, warmUps, logs }
}

const tick = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

async function probe (app: FastifyInstance, path: string): Promise<{ status: number, body: unknown }> {
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const res = await fetch(`http://127.0.0.1:${port}${path}`)
  return { status: res.status, body: await res.json() }
}

async function readyWithin (app: FastifyInstance, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((resolve) => setTimeout(resolve, 10))) {
    if ((await probe(app, '/readyz')).status === 200) return true
  }
  return false
}

t.test('the warm-up starts when the server listens, not before; /readyz waits for it, /healthz does not', async (t) => {
  let finish = (): void => {}
  const { app, warmUps } = await appWithWarmUp(t, async () => { await new Promise<void>((resolve) => { finish = resolve }) })
  await app.ready()
  t.equal((await app.inject('/readyz')).statusCode, 200, 'an app that never listens has no warm-up to wait for')
  await tick()
  t.same(warmUps, [], 'not warmed by ready() or inject()')
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.same(warmUps, [true], 'warmed once, started as the server listens')
  t.same(await probe(app, '/healthz'), { status: 200, body: { status: 'ok' } }, 'live at once')
  t.same(await probe(app, '/readyz'), { status: 503, body: { status: 'not ready', failing: ['warm-up'] } }, 'not ready while the SDK is still loading')
  finish()
  t.ok(await readyWithin(app, 10_000), 'ready once the warm-up is done')
  t.same(warmUps, [true], 'and never warmed again')
})

t.test('a warm-up that fails is one warning, not a crash, and still ends in ready', async (t) => {
  const { app, warmUps, logs } = await appWithWarmUp(t, async () => { throw new StsError('unavailable', 'STS AssumeRole unavailable: SdkUnavailable', { code: 'SdkUnavailable' }) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.ok(await readyWithin(app, 10_000), 'ready: the SDK is loaded again by the first call')
  t.same(warmUps, [true])
  const lines = logs.map((l) => JSON.parse(l) as { level: number, msg: string, code?: string }).filter((l) => /STS SDK/.test(l.msg))
  t.match(lines, [{ level: 40, msg: 'the STS SDK did not load: AssumeRole fails until it does', code: 'SdkUnavailable' }])
})
