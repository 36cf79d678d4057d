// The fleet-wide deny: `sts-vending deny` writes to the fleet's Redis, and within 2 s
// every replica refuses that caller on every route (cached credentials included) while
// others are served; `allow` undoes it; Redis holds no subject in clear.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { startFleet, fleetConfig, KEYS_ENV, type Fleet } from './fleet.js'
import { baseConfig } from '../helpers/build.js'
import { runCli } from '../../src/cli/main.js'

async function cli (args: string[], env: Record<string, string>): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const code = await runCli(args, { stdout: { write: (s: string) => { out += s } }, stderr: { write: (s: string) => { err += s } }, env })
  return { code, out, err }
}

async function within (ms: number, ok: () => Promise<boolean>): Promise<number | undefined> {
  const started = Date.now()
  while (Date.now() - started < ms) {
    if (await ok()) return Date.now() - started
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return undefined
}

function configFile (t: { teardown: (fn: () => unknown) => void }, f: Fleet, redis = true): string {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-deny-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const raw = baseConfig(f.issuer, f.emulator.url)
  writeFileSync(join(dir, 'c.yaml'), stringify(redis ? fleetConfig(raw, f.redis.url) : raw))
  return join(dir, 'c.yaml')
}

/** Three replicas whose grant signs too, the CLI's config file and env, and two callers: one to deny, one to keep. */
async function denyFleet (t: Parameters<typeof startFleet>[0]): Promise<{ f: Fleet, file: string, env: Record<string, string>, bad: string, good: string }> {
  const f = await startFleet(t, { config: (c) => ({ ...c, grants: c.grants.map((g: object) => ({ ...g, signing: { maxBytes: 64, expiresSeconds: 600 } })) }) })
  return { f, file: configFile(t, f), env: { [KEYS_ENV]: f.keys }, bad: f.token({ sub: 'compromised-user' }), good: f.token({ sub: 'innocent-user' }) }
}

t.test('deny stops a cached caller on every replica within 2 s, others are served; allow undoes it', async (t) => {
  const { f, file, env, bad, good } = await denyFleet(t)
  for (const replica of [0, 1, 2]) {
    t.equal((await f.vend(bad, {}, replica)).statusCode, 200)
    t.equal((await f.vend(good, {}, replica)).statusCode, 200)
  }

  const denied = await cli(['deny', '--config', file, '--issuer', 'app', '--subject', 'compromised-user', '--for', '1h', '--reason', 'ticket 42'], env)
  t.equal(denied.code, 0, denied.err)
  t.match(denied.out, /^denied app "compromised-user" on every replica until .*credentials already issued stay valid/)
  const took = await within(2000, async () => {
    const replies = await Promise.all([0, 1, 2].map(async (replica) => await f.vend(bad, {}, replica)))
    return replies.every((r) => r.statusCode === 403 && r.json.code === 'STS_VENDING_CALLER_DENIED')
  })
  t.ok(took !== undefined, `every replica refuses the cached caller within 2 s (${String(took)} ms)`)
  const upload = await f.upload('url', bad, { key: 'users/compromised-user/a.txt', method: 'GET' })
  t.equal(upload.json?.code, 'STS_VENDING_CALLER_DENIED', 'nothing signed for it')
  for (const replica of [0, 1, 2]) t.equal((await f.vend(good, {}, replica)).statusCode, 200, `replica ${replica} serves the others`)
  const audits = f.logs.filter((l) => l.includes('"event":"caller.denied"'))
  t.ok(audits.length >= 1 && audits.length <= 3, `caller.denied once per replica (${audits.length})`)

  const listed = await cli(['deny', '--config', file, '--list'], env)
  t.match(listed.out, /^app "compromised-user" until .* \(ticket 42\)$/m)
  let dump = ''
  for (const key of await f.redis.admin.keys('*')) {
    dump += key
    dump += await f.redis.admin.type(key) === 'hash' ? JSON.stringify(await f.redis.admin.hgetall(key)) : (await f.redis.admin.getBuffer(key))?.toString('latin1') ?? ''
    t.ok(await f.redis.admin.pttl(key) > 0, `${key.slice(0, 12)}: a TTL`)
  }
  t.notMatch(dump, /compromised-user|ticket 42/, 'no subject or reason in clear in Redis')

  const allowed = await cli(['allow', '--config', file, '--issuer', 'app', '--subject', 'compromised-user'], env)
  t.equal(allowed.code, 0)
  const back = await within(2000, async () => (await Promise.all([0, 1, 2].map(async (replica) => await f.vend(bad, {}, replica)))).every((r) => r.statusCode === 200))
  t.ok(back !== undefined, `allow: served again everywhere within 2 s (${String(back)} ms)`)
  t.match((await cli(['deny', '--config', file, '--list'], env)).out, /^no caller is denied$/m)
})

t.test('refused at once: no redis in the config, an unknown issuer, a --for out of range', async (t) => {
  const f = await startFleet(t, { replicas: 0 })
  const env = { [KEYS_ENV]: f.keys }
  const noRedis = await cli(['deny', '--config', configFile(t, f, false), '--issuer', 'app', '--subject', 'x'], env)
  t.equal(noRedis.code, 2)
  t.match(noRedis.err, /a deny needs the fleet's Redis/)
  const file = configFile(t, f)
  const unknown = await cli(['deny', '--config', file, '--issuer', 'nope', '--subject', 'x'], env)
  t.equal(unknown.code, 2)
  t.match(unknown.err, /no issuer named "nope"/)
  for (const d of ['30s', '31d', '12', 'forever']) t.equal((await cli(['deny', '--config', file, '--issuer', 'app', '--subject', 'x', '--for', d], env)).code, 2, `--for ${d}`)
})

t.test('deny drops the caller\'s cached credentials on every replica and in Redis, others\' and signing\'s stay; after allow, one fresh AssumeRole', async (t) => {
  const { f, file, env, bad, good } = await denyFleet(t)
  const dir = 'dir111/dir111_secondline1/innocent-user/'
  const entries = async (): Promise<string[]> => (await f.redis.admin.keys('stsv:c:*')).sort()
  const localSizes = async (): Promise<number[]> => await Promise.all(f.apps.map(async (app) => (await app.metrics.cacheEntries.get()).values[0]?.value ?? -1))

  // In turn, so that each step's new shared entry is known: the caller's, the other's, the grant's signing credential.
  const before: string[] = []
  for (const replica of [0, 1, 2]) {
    const r = await f.vend(bad, {}, replica)
    t.equal(r.statusCode, 200)
    before.push(r.json.accessKeyId)
  }
  t.equal(new Set(before).size, 1, 'one credential for the caller, shared by the fleet')
  const [badEntry] = await entries()
  for (const replica of [0, 1, 2]) t.equal((await f.vend(good, {}, replica)).statusCode, 200)
  const [goodEntry] = (await entries()).filter((k) => k !== badEntry)
  for (const replica of [0, 1, 2]) t.equal((await f.upload('url', good, { key: `${dir}a.txt`, method: 'GET' }, replica)).statusCode, 200)
  const [signingEntry] = (await entries()).filter((k) => k !== badEntry && k !== goodEntry)
  t.ok(badEntry !== undefined && goodEntry !== undefined && signingEntry !== undefined, 'three shared entries')
  t.same(await localSizes(), [3, 3, 3], 'three local entries on each replica')
  const calls = f.emulator.callCount
  t.equal(calls, 3, 'one AssumeRole each')

  const denied = await cli(['deny', '--config', file, '--issuer', 'app', '--subject', 'compromised-user', '--for', '1h'], env)
  t.equal(denied.code, 0, denied.err)
  const took = await within(2000, async () => {
    const sizes = await localSizes()
    return sizes.every((n) => n === 2) && !(await entries()).includes(badEntry as string)
  })
  t.ok(took !== undefined, `every replica dropped the caller's credentials, locally and in Redis, within 2 s (${String(took)} ms)`)
  t.same(await entries(), [goodEntry, signingEntry].sort(), 'Redis keeps the other caller\'s entry and the signing credential')
  for (const replica of [0, 1, 2]) {
    t.equal((await f.vend(bad, {}, replica)).json.code, 'STS_VENDING_CALLER_DENIED')
    t.equal((await f.vend(good, {}, replica)).statusCode, 200)
    t.equal((await f.upload('url', good, { key: `${dir}b.txt`, method: 'GET' }, replica)).statusCode, 200)
  }
  t.equal(f.emulator.callCount, calls, 'the others were served from cache: no AssumeRole')
  t.same(await localSizes(), [2, 2, 2])
  t.ok(f.logs.some((l) => l.includes('"event":"caller.credentials_dropped"')), 'the drop is logged')

  t.equal((await cli(['allow', '--config', file, '--issuer', 'app', '--subject', 'compromised-user'], env)).code, 0)
  const back = await within(2000, async () => (await f.vend(bad, {}, 0)).statusCode === 200)
  t.ok(back !== undefined, `allow: served again within 2 s (${String(back)} ms)`)
  t.equal(f.emulator.callCount, calls + 1, 'one fresh AssumeRole')
  t.match(f.emulator.calls.at(-1)?.roleSessionName, /compromised-user/, 'for that caller')
  const after = await f.vend(bad, {}, 0)
  t.not(after.json.accessKeyId, before[0], 'not the credentials from before the deny')
  for (const replica of [1, 2]) {
    const again = await within(2000, async () => (await f.vend(bad, {}, replica)).statusCode === 200)
    t.ok(again !== undefined)
    t.equal((await f.vend(bad, {}, replica)).json.accessKeyId, after.json.accessKeyId, `replica ${replica}: the new shared credential`)
  }
  t.equal(f.emulator.callCount, calls + 1, 'shared by the fleet: still one call')
})
