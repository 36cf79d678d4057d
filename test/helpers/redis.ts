// A real redis-server for tests: on a free loopback port, in a temp dir, with no
// persistence (--save '' --appendonly no), stopped in teardown. kill() and restart()
// rehearse a Redis that dies and comes back empty on the same address.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import type { SharedStateSettings } from '../../src/redis/settings.js'
import type { TestCa } from './tls.js'

type Tap = { teardown: (fn: () => unknown) => void }

export interface TestRedis {
  url: string
  port: number
  /** A plain client (no key prefix) for inspecting and vandalising what the service stored. */
  admin: Redis
  /** SIGKILL: every connection drops at once, as when a pod or node dies. */
  kill (): Promise<void>
  /** Start again on the same port, empty. */
  restart (): Promise<void>
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      s.close(() => { resolve(typeof addr === 'object' && addr !== null ? addr.port : 0) })
    })
  })
}

/** Base64 32-byte keys for cache.encryptionKeysEnv. */
export function cacheKey (): string {
  return randomBytes(32).toString('base64')
}

/** One redis-server (or Sentinel) process on loopback, resolved once it accepts connections. */
async function spawnRedis (args: string[], ready = 'Ready to accept connections'): Promise<ChildProcess> {
  const c = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000)
    c.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes(ready)) { clearTimeout(timer); resolve() }
    })
    c.on('error', (err) => { clearTimeout(timer); reject(err) })
    c.on('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited ${code}: ${out}`)) })
  })
  c.stdout?.resume()
  c.removeAllListeners('exit')
  return c
}

async function stop (c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return
  await new Promise<void>((resolve) => {
    c.once('exit', () => resolve())
    c.kill('SIGKILL')
  })
}

async function until (what: () => Promise<boolean>, withinMs: number, message: string): Promise<void> {
  const end = Date.now() + withinMs
  while (Date.now() < end) {
    if (await what().catch(() => false)) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(message)
}

const NO_PERSISTENCE = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']

/**
 * Listen on `port` only: plain, or TLS only (no plain port) with the CA's server
 * certificate, TLS between servers too (replication, cluster bus), and clients not
 * asked for a certificate (the service sends none).
 */
function listenOn (port: number, tls: TestCa | undefined): string[] {
  if (tls === undefined) return ['--port', String(port)]
  return ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no', '--tls-replication', 'yes', '--tls-cluster', 'yes']
}

/** ioredis options for a test's own clients of a server started with listenOn. */
function clientTls (tls: TestCa | undefined): { tls?: { ca: string } } {
  return tls === undefined ? {} : { tls: { ca: tls.caPem } }
}

export interface TestCluster {
  /** host:port of every node (the masters, then any replicas), for redis.clusterNodes. */
  nodes: string[]
  /** A cluster client without key prefix, for inspecting what the service stored. */
  admin: Cluster
  /** Every key on every master. */
  keys (): Promise<string[]>
  /**
   * With replicas: CLUSTER FAILOVER on the replica of the first master (a coordinated
   * failover, as an operator runs before maintenance); resolves once every node sees
   * the cluster whole again with the replica as master, and answers its port.
   */
  failover (): Promise<number>
}

/**
 * A three-master Redis Cluster on loopback, each node in its own temp dir without
 * persistence, joined by `redis-cli --cluster create`; with `replicas: 1`, one replica
 * per master (six nodes). With `tls`: TLS only, the cluster bus too.
 */
export async function startCluster (t: Tap, opts: { tls?: TestCa, replicas?: 0 | 1 } = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-cluster-'))
  const children: ChildProcess[] = []
  const ports: number[] = []
  t.teardown(async () => {
    for (const c of children) await stop(c)
    rmSync(dir, { recursive: true, force: true })
  })
  const replicas = opts.replicas ?? 0
  for (let i = 0; i < 3 * (1 + replicas); i++) {
    const port = await freePort()
    const bus = await freePort()
    ports.push(port)
    children.push(await spawnRedis([...listenOn(port, opts.tls), '--cluster-port', String(bus), '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000', '--dir', dir, ...NO_PERSISTENCE]))
  }
  const nodes = ports.map((p) => `127.0.0.1:${p}`)
  await new Promise<void>((resolve, reject) => {
    const tls = opts.tls !== undefined ? ['--tls', '--cacert', opts.tls.caFile] : []
    execFile('redis-cli', [...tls, '--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30_000 }, (err, stdout) => {
      if (err !== null) reject(new Error(`redis-cli --cluster create failed: ${err.message} ${stdout}`))
      else resolve()
    })
  })
  const probes = ports.map((port) => {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, ...clientTls(opts.tls) })
    probe.on('error', () => {})
    return probe
  })
  t.teardown(() => { for (const p of probes) p.disconnect() })
  const whole = async (): Promise<void> => {
    for (const probe of probes) await until(async () => (await probe.cluster('INFO')).includes('cluster_state:ok'), 15_000, 'the cluster is not whole')
  }
  await whole()
  // A replica serves once its link to the master is up and its first sync is done.
  for (const probe of probes) {
    await until(async () => {
      const role = await probe.call('ROLE') as unknown[]
      return role[0] === 'master' || role[3] === 'connected'
    }, 15_000, 'a replica did not sync with its master')
  }
  const admin = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: clientTls(opts.tls) })
  admin.on('error', () => {})
  t.teardown(() => admin.disconnect())
  return {
    nodes,
    admin,
    async keys () {
      const all: string[] = []
      for (const node of admin.nodes('master')) all.push(...await node.keys('*'))
      return all
    },
    async failover () {
      // The first master's replica: the node whose ROLE names the first port as its master.
      const first = ports[0] as number
      let replica: Redis | undefined
      for (const probe of probes) {
        const role = await probe.call('ROLE') as unknown[]
        if (role[0] === 'slave' && Number(role[2]) === first) replica = probe
      }
      if (replica === undefined) throw new Error('no replica of the first master (start the cluster with replicas: 1)')
      await replica.cluster('FAILOVER')
      const promoted = replica
      await until(async () => (await promoted.call('ROLE') as unknown[])[0] === 'master', 15_000, 'the replica was not promoted')
      await whole()
      return promoted.options.port as number
    }
  }
}

export interface TestSentinel {
  /** host:port of the Sentinel, for redis.sentinels. */
  sentinels: string[]
  name: string
  /** A client of whichever server is master now (through the Sentinel). */
  admin: Redis
  /** The port of the current master, as the Sentinel sees it. */
  masterPort (): Promise<number>
  /** SENTINEL FAILOVER: the replica is promoted; resolves once the Sentinel names it. */
  failover (): Promise<void>
}

export interface SentinelOptions {
  /** requirepass and masterauth on master and replica, `sentinel auth-pass` in the Sentinel. */
  password?: string
  /** requirepass in sentinel.conf: the Sentinel itself asks for this password. */
  sentinelPassword?: string
  /** An ACL user on master and replica (ACLs do not replicate), allowed every key and command. */
  aclUser?: { name: string, password: string }
  /** TLS only on master, replica and Sentinel (replication and the Sentinel's links too). */
  tls?: TestCa
}

/**
 * A Sentinel set on loopback: a master, one replica of it, and one Sentinel watching
 * them (quorum 1, down after 1 s), none with persistence; with passwords if asked.
 */
export async function startSentinel (t: Tap, opts: SentinelOptions = {}): Promise<TestSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-sentinel-'))
  const children: ChildProcess[] = []
  t.teardown(async () => {
    for (const c of children) await stop(c)
    rmSync(dir, { recursive: true, force: true })
  })
  const name = 'mymaster'
  const masterPort = await freePort()
  const replicaPort = await freePort()
  const sentinelPort = await freePort()
  const auth = opts.password !== undefined ? ['--requirepass', opts.password, '--masterauth', opts.password] : []
  const password = opts.password !== undefined ? { password: opts.password } : {}
  children.push(await spawnRedis([...listenOn(masterPort, opts.tls), '--dir', dir, '--dbfilename', `m-${masterPort}.rdb`, ...auth, ...NO_PERSISTENCE]))
  children.push(await spawnRedis([...listenOn(replicaPort, opts.tls), '--dir', dir, '--dbfilename', `r-${replicaPort}.rdb`, '--replicaof', '127.0.0.1', String(masterPort), ...auth, ...NO_PERSISTENCE]))
  const replica = new Redis({ port: replicaPort, host: '127.0.0.1', ...password, ...clientTls(opts.tls) })
  replica.on('error', () => {})
  await until(async () => (await replica.info('replication')).includes('master_link_status:up'), 15_000, 'the replica did not sync')
  if (opts.aclUser !== undefined) {
    const master = new Redis({ port: masterPort, host: '127.0.0.1', ...password, ...clientTls(opts.tls) })
    for (const server of [master, replica]) await server.call('ACL', 'SETUSER', opts.aclUser.name, 'on', `>${opts.aclUser.password}`, '~*', '&*', '+@all')
    master.disconnect()
  }
  replica.disconnect()
  const conf = join(dir, 'sentinel.conf')
  // sentinel.conf takes the same directives as listenOn's flags, without the dashes.
  const listen = listenOn(sentinelPort, opts.tls)
  const directives = Array.from({ length: listen.length / 2 }, (_, i) => `${(listen[2 * i] as string).slice(2)} ${listen[2 * i + 1] as string}`)
  writeFileSync(conf, [
    ...directives,
    'bind 127.0.0.1',
    `dir ${dir}`,
    `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
    `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 5000`,
    `sentinel parallel-syncs ${name} 1`,
    ...(opts.password !== undefined ? [`sentinel auth-pass ${name} ${opts.password}`] : []),
    ...(opts.sentinelPassword !== undefined ? [`requirepass ${opts.sentinelPassword}`] : []),
    ''
  ].join('\n'))
  children.push(await spawnRedis([conf, '--sentinel'], '+monitor'))
  const sentinelAuth = opts.sentinelPassword !== undefined ? { password: opts.sentinelPassword } : {}
  const sentinel = new Redis({ port: sentinelPort, host: '127.0.0.1', ...sentinelAuth, ...clientTls(opts.tls) })
  sentinel.on('error', () => {})
  t.teardown(() => sentinel.disconnect())
  const known = async (): Promise<boolean> => {
    const replicas = await sentinel.call('SENTINEL', 'REPLICAS', name) as string[][]
    return replicas.some((r) => { const flags = r[r.indexOf('flags') + 1] ?? ''; return flags === 'slave' })
  }
  await until(known, 20_000, 'the Sentinel did not find the replica')
  const currentMaster = async (): Promise<number> => {
    const [, port] = await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as [string, string]
    return Number(port)
  }
  const sentinelTls = opts.tls !== undefined ? { ...clientTls(opts.tls), sentinelTLS: { ca: opts.tls.caPem }, enableTLSForSentinelMode: true } : {}
  const admin = new Redis({ sentinels: [{ host: '127.0.0.1', port: sentinelPort }], name, maxRetriesPerRequest: 1, retryStrategy: () => 100, ...password, ...(opts.sentinelPassword !== undefined ? { sentinelPassword: opts.sentinelPassword } : {}), ...sentinelTls })
  admin.on('error', () => {})
  t.teardown(() => admin.disconnect())
  return {
    sentinels: [`127.0.0.1:${sentinelPort}`],
    name,
    admin,
    masterPort: currentMaster,
    async failover () {
      const before = await currentMaster()
      await until(known, 20_000, 'no replica to promote')
      await sentinel.call('SENTINEL', 'FAILOVER', name)
      await until(async () => await currentMaster() !== before, 15_000, 'the Sentinel did not promote the replica')
    }
  }
}

/** With `tls`: TLS only (no plain port), clients not asked for a certificate; the URL is rediss://. */
export async function startRedis (t: Tap, opts: { args?: string[], tls?: TestCa } = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-redis-'))
  const port = await freePort()
  let child: ChildProcess | undefined

  async function start (): Promise<void> {
    const c = spawn('redis-server', [...listenOn(port, opts.tls), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local', ...(opts.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    let out = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000)
      c.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('Ready to accept connections')) { clearTimeout(timer); resolve() }
      })
      c.on('error', (err) => { clearTimeout(timer); reject(err) })
      c.on('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited ${code}: ${out}`)) })
    })
    c.stdout?.resume()
    c.removeAllListeners('exit')
  }

  async function kill (): Promise<void> {
    const c = child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve())
      c.kill('SIGKILL')
    })
    child = undefined
  }

  await start()
  const password = opts.args?.[opts.args.indexOf('--requirepass') + 1]
  const admin = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 50, ...(opts.args?.includes('--requirepass') === true ? { password } : {}), ...clientTls(opts.tls) })
  admin.on('error', () => {})
  t.teardown(async () => {
    admin.disconnect()
    await kill()
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    url: `${opts.tls !== undefined ? 'rediss' : 'redis'}://127.0.0.1:${port}/0`,
    port,
    admin,
    kill,
    async restart () {
      await kill()
      await start()
    }
  }
}

/** Connection settings for src/redis/connection.ts's createRedis, standalone at `url`. */
export function standalone (url: string, over: Partial<SharedStateSettings> = {}): Pick<SharedStateSettings, 'target' | 'username' | 'password' | 'tls' | 'keyPrefix' | 'commandTimeoutMs'> {
  return { target: { mode: 'standalone', url }, username: undefined, password: undefined, tls: false, keyPrefix: 'stsv:', commandTimeoutMs: 200, ...over }
}
