// The Redis set-ups that need more than an address: a Sentinel set where the data
// nodes and the Sentinel each ask for a password (with an ACL user on the data nodes),
// and a standalone Redis, a Redis Cluster and a Sentinel set that speak only TLS with
// certificates from a private CA. Each is shared by three replicas like any other
// Redis; a wrong password, a wrong Sentinel password or a CA the replica does not
// trust is one loud error line and a `redis: down (<cause>)` start-up line, never a
// secret in the log, and the replica still serves from its own state.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { startFleet, fleetConfig, sharesOneCache, type Fleet } from './fleet.js'
import { readFileSync } from 'node:fs'
import { cacheKey, startCluster, startRedis, startSentinel } from '../helpers/redis.js'
import { makeCa, type TestCa } from '../helpers/tls.js'
import { baseConfig } from '../helpers/build.js'
import { createDevIssuer } from '../../devkit/dev/issuer.js'
import { parseConfig } from '../../src/config/load.js'
import { prepare } from '../../src/prepare.js'
import { startupFields } from '../../src/observability/startup.js'

type Tap = Pick<typeof t, 'same' | 'equal' | 'ok' | 'match' | 'notOk'>

/** The cause when the server's certificate does not chain to what the replica trusts. */
const CERTIFICATE_NOT_TRUSTED = /TLS failed \(the server certificate is not trusted: check redis\.tlsCaEnv\)/

/**
 * A replica that cannot use Redis: down with the cause, one error line naming it, the
 * start-up line saying so, and still serving (its own AssumeRole, its own cache).
 */
async function failsLoudlyAndServes (t: Tap, f: Fleet, app: FastifyInstance, redis: Record<string, unknown>, logsFrom: number, cause: RegExp, label: string): Promise<void> {
  const status = app.redisStatus()
  t.equal(status?.up, false, `${label}: Redis down on that replica`)
  t.match(status?.cause, cause, `${label}: the cause (${String(status?.cause)})`)
  const errors = f.logs.slice(logsFrom).map((l) => JSON.parse(l)).filter((l) => l.level === 50)
  t.ok(errors.length >= 1 && errors.every((l) => /^redis down \(/.test(l.msg)), `${label}: an error line (${errors.length})`)
  t.match(errors[0]?.msg, cause, `${label}: the error line names the cause`)
  const config = parseConfig({ ...fleetConfig(baseConfig(f.issuer, f.emulator.url), 'redis://unused'), redis })
  const line = startupFields({ version: 'test', address: 'http://127.0.0.1:0', config, upstreamCredential: 'injected', redis: status })
  t.match(line.cache, { mode: 'memory', redis: /^down \(/ }, `${label}: the start-up line says redis: down (<cause>)`)
  t.match((line.cache as { redis: string }).redis, cause)
  const i = f.apps.indexOf(app)
  const before = f.emulator.callCount
  const tok = f.token({ sub: `${label.replace(/[^a-z]+/g, '-')}-alone` })
  const replies = [await f.vend(tok, {}, i), await f.vend(tok, {}, i)]
  t.same(replies.map((r) => r.statusCode), [200, 200], `${label}: still serves`)
  t.equal(f.emulator.callCount - before, 1, `${label}: from its own cache`)
}

/** No password (right or wrong) and no CA key material in any replica's log line. */
function noSecretInLogs (t: Tap, f: Fleet, secrets: string[], label: string): void {
  t.notOk(f.logs.some((l) => secrets.some((s) => l.includes(s))), `${label}: no password in ${f.logs.length} log lines`)
}

t.test('Sentinel with passwords: data nodes (requirepass, an ACL user), the Sentinel its own', async (t) => {
  const started = Date.now()
  const pw = { master: 'master-pass-3f9a1c', acl: 'acl-pass-7d2e4b', sentinel: 'sentinel-pass-5c8e0a', wrong: 'wrong-pass-1b6d9f' }
  const set = await startSentinel(t, { password: pw.master, sentinelPassword: pw.sentinel, aclUser: { name: 'sts-app', password: pw.acl } })
  const redis = { sentinels: set.sentinels, sentinelName: set.name, usernameEnv: 'STS_VENDING_REDIS_USER', passwordEnv: 'STS_VENDING_REDIS_PASSWORD', sentinelPasswordEnv: 'STS_VENDING_SENTINEL_PASSWORD', commandTimeoutMs: 2000 }
  const env = { STS_VENDING_REDIS_USER: 'sts-app', STS_VENDING_REDIS_PASSWORD: pw.acl, STS_VENDING_SENTINEL_PASSWORD: pw.sentinel }
  const f = await startFleet(t, { env, config: (c) => ({ ...c, sts: { ...c.sts, maxCallsPerSecond: 100 }, redis }) })
  t.same(f.apps.map((a) => a.redisStatus()?.up), [true, true, true], 'the three replicas reached the master through the Sentinel')
  await sharesOneCache(t, f, 'sentinel-auth')
  const clients = String(await set.admin.call('CLIENT', 'LIST'))
  t.ok(clients.split('\n').filter((l) => / user=sts-app /.test(l)).length >= 3, 'the replicas are connected to the master as the ACL user')
  t.ok((await set.admin.keys('stsv:*')).length >= 25, 'the entries are in the master')

  const wrongs = [
    { label: 'a wrong password', env: { ...env, STS_VENDING_REDIS_PASSWORD: pw.wrong }, cause: /authentication failed \(check redis\.usernameEnv and redis\.passwordEnv\)/ },
    { label: 'a wrong Sentinel password', env: { ...env, STS_VENDING_SENTINEL_PASSWORD: pw.wrong }, cause: /Sentinel authentication failed \(check redis\.sentinelPasswordEnv/ }
  ]
  for (const w of wrongs) {
    const from = f.logs.length
    const app = await f.addReplica({ env: w.env })
    await failsLoudlyAndServes(t, f, app, redis, from, w.cause, w.label)
  }
  noSecretInLogs(t, f, Object.values(pw), 'sentinel-auth')
  t.ok(true, `took ${Date.now() - started} ms`)
})

t.test('TLS only (rediss://), a private CA given in tlsCaEnv', async (t) => {
  const started = Date.now()
  const ca = makeCa(t)
  const server = await startRedis(t, { tls: ca })
  const redis = { url: server.url, tlsCaEnv: 'STS_VENDING_REDIS_CA', commandTimeoutMs: 2000 }
  const f = await startFleet(t, { redis: server, env: { STS_VENDING_REDIS_CA: ca.caPem }, config: (c) => ({ ...c, redis }) })
  t.same(f.apps.map((a) => a.redisStatus()?.up), [true, true, true], 'the three replicas connected over TLS')
  await sharesOneCache(t, f, 'tls')
  t.ok((await server.admin.keys('stsv:*')).length >= 25, 'the entries are in Redis')

  const other = makeCa(t)
  const distrusting: Array<{ label: string, config: (c: Record<string, any>) => Record<string, any>, env: Record<string, string> }> = [
    { label: 'another CA', config: (c: Record<string, any>) => ({ ...c, redis }), env: { STS_VENDING_REDIS_CA: other.caPem } },
    { label: 'the public roots only', config: (c: Record<string, any>) => ({ ...c, redis: { url: server.url, commandTimeoutMs: 2000 } }), env: {} }
  ]
  for (const d of distrusting) {
    const from = f.logs.length
    const app = await f.addReplica({ config: d.config, env: d.env })
    await failsLoudlyAndServes(t, f, app, d.label === 'another CA' ? redis : { url: server.url }, from, CERTIFICATE_NOT_TRUSTED, `a replica trusting ${d.label}`)
  }
  t.ok(true, `took ${Date.now() - started} ms`)
})

// The two topologies that reach several servers over TLS: every node the client
// learns of (the cluster's slot map, the master a Sentinel names) must be reached
// with the same CA, and a replica without it must say so and keep serving.
const topologies = [
  {
    label: 'cluster-tls',
    title: 'Redis Cluster, TLS only (the bus too), a private CA given in tlsCaEnv',
    start: async (t: Parameters<typeof startFleet>[0], ca: TestCa) => {
      const cluster = await startCluster(t, { tls: ca })
      return { redis: { clusterNodes: cluster.nodes, tls: true }, keys: async () => await cluster.keys() }
    }
  },
  {
    label: 'sentinel-tls',
    title: 'Sentinel, TLS only (data nodes, replication and the Sentinel), a private CA given in tlsCaEnv',
    start: async (t: Parameters<typeof startFleet>[0], ca: TestCa) => {
      const set = await startSentinel(t, { tls: ca })
      return { redis: { sentinels: set.sentinels, sentinelName: set.name, tls: true }, keys: async () => await set.admin.keys('stsv:*') }
    }
  }
]
for (const topology of topologies) {
  t.test(topology.title, async (t) => {
    const started = Date.now()
    const ca = makeCa(t)
    const { redis: where, keys } = await topology.start(t, ca)
    const redis = { ...where, tlsCaEnv: 'STS_VENDING_REDIS_CA', commandTimeoutMs: 2000 }
    const f = await startFleet(t, { env: { STS_VENDING_REDIS_CA: ca.caPem }, config: (c) => ({ ...c, sts: { ...c.sts, maxCallsPerSecond: 100 }, redis }) })
    // Start-up waits 2 s for the first connection, then serves from local state and
    // keeps connecting; on a busy machine a cluster's slot map can take longer. What is
    // asserted is that each replica gets there, not how fast.
    for (const deadline = Date.now() + 15_000; Date.now() < deadline && !f.apps.every((a) => a.redisStatus()?.up === true);) await new Promise((resolve) => setTimeout(resolve, 100))
    const statuses = f.apps.map((a) => a.redisStatus())
    t.same(statuses.map((s) => s?.up), [true, true, true], `${topology.label}: the three replicas connected over TLS (${statuses.map((s) => s?.cause ?? 'up').join(', ')})`)
    await sharesOneCache(t, f, topology.label)
    t.ok((await keys()).length >= 25, `${topology.label}: the entries are in Redis`)

    const from = f.logs.length
    const publicRoots = { ...where, commandTimeoutMs: 2000 }
    const app = await f.addReplica({ config: (c) => ({ ...c, redis: publicRoots }), env: {} })
    await failsLoudlyAndServes(t, f, app, publicRoots, from, CERTIFICATE_NOT_TRUSTED, `${topology.label}: a replica trusting the public roots only`)
    const privateKey = readFileSync(ca.keyFile, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('-----'))
    noSecretInLogs(t, f, privateKey, topology.label)
    t.ok(true, `took ${Date.now() - started} ms`)
  })
}

t.test('tlsCaEnv: a value that is not a PEM certificate, or TLS not asked for, stops the start with one line', async (t) => {
  const issuer = createDevIssuer()
  const ca = makeCa(t)
  const base = fleetConfig(baseConfig(issuer, 'http://127.0.0.1:1'), 'rediss://127.0.0.1:6380/0')
  const config = parseConfig({ ...base, redis: { ...base.redis, tlsCaEnv: 'STS_VENDING_REDIS_CA' } })
  const env = { STS_VENDING_CACHE_KEYS: cacheKey() }
  const truncated = ca.caPem.slice(0, ca.caPem.length - 200) + '\n-----END CERTIFICATE-----\n'
  const rows = [
    { description: 'unset', value: undefined, want: /^config: redis\.tlsCaEnv: STS_VENDING_REDIS_CA is not set$/ },
    { description: 'a file path instead of the PEM', value: '/etc/ssl/redis-ca.pem', want: /^config: redis\.tlsCaEnv: STS_VENDING_REDIS_CA holds no valid PEM certificate/ },
    { description: 'a truncated certificate', value: truncated, want: /^config: redis\.tlsCaEnv: STS_VENDING_REDIS_CA holds no valid PEM certificate/ }
  ]
  for (const row of rows) {
    t.throws(() => prepare(config, { ...env, ...(row.value !== undefined ? { STS_VENDING_REDIS_CA: row.value } : {}) }), row.want, row.description)
  }
  t.ok(prepare(config, { ...env, STS_VENDING_REDIS_CA: ca.caPem }).fleet?.tlsCa?.includes('BEGIN CERTIFICATE'), 'a real CA certificate is taken')
  t.throws(() => parseConfig({ ...base, redis: { url: 'redis://127.0.0.1:6379/0', tlsCaEnv: 'STS_VENDING_REDIS_CA' } }), /redis\.tlsCaEnv: only with TLS/, 'with redis:// (no TLS): refused')
})
