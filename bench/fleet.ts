// `npm run bench:fleet`: three replicas on one Redis (a real redis-server on a free
// loopback port) against the STS emulator, in one process:
//  - AssumeRole calls per caller, 50 callers x 3 requests round-robin, with and
//    without Redis;
//  - the fleet budget's peak AssumeRole calls in any sliding second when 300 new
//    callers arrive at once (fleetMaxCallsPerSecond 20), with and without Redis;
//  - the cost of a shared (L2) hit against an in-process (L1) hit, in µs of this
//    process's CPU per request (app.inject, so HTTP parsing is not in either).
// Needs redis-server (scripts/install-system-deps.sh). About 30 s. `npm run bench` runs
// it too (rows 8a-8f) when redis-server is installed, with --json: the rows as JSON.
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'
import { prepare } from '../src/prepare.js'
import { parseConfig } from '../src/config/load.js'
import { createDevIssuer } from '../devkit/dev/issuer.js'
import { startStsEmulator } from '../devkit/emulator/sts.js'
import { createStsClient } from '../src/alicloud/sts-client.js'
import { createStaticCredential } from '../src/alicloud/credentials.js'
import { startRedis } from '../test/helpers/redis.js'

const ROLE = 'acs:ram::1000000000000000:role/fleet'
const KEYS_ENV = 'STS_VENDING_CACHE_KEYS'

async function main (): Promise<void> {
  const teardown: Array<() => unknown> = []
  const redis = await startRedis({ teardown: (fn) => teardown.push(fn) })
  const id = `fleet${randomBytes(4).toString('hex')}`
  const secret = randomBytes(24).toString('base64url')
  const sts = await startStsEmulator({ accessKeys: { [id]: secret }, roles: { [ROLE]: { maxSessionDuration: 3600 } } })
  const issuer = createDevIssuer()
  const keys = randomBytes(32).toString('base64')
  const apps: FastifyInstance[] = []

  async function replica (shared: boolean, o: { fleetBudget?: number, maxEntries?: number } = {}): Promise<FastifyInstance> {
    const config = parseConfig({
      sts: { endpoint: sts.url, maxCallsPerSecond: 100, ...(shared ? { fleetMaxCallsPerSecond: o.fleetBudget ?? 1000 } : {}) },
      issuers: [{ name: 'app', issuer: issuer.issuer, audience: issuer.audience, publicKey: issuer.publicKeyPem, algorithms: ['RS256'] }],
      grants: [{ name: 'uploads', issuers: ['app'], roleArn: ROLE, bucket: 'fleet-bucket', region: 'cn-hangzhou', prefix: 'users/{sub}/', actions: ['list', 'read', 'write'], durationSeconds: 3600 }],
      cache: { maxEntries: o.maxEntries ?? 100_000, ...(shared ? { encryptionKeysEnv: KEYS_ENV } : {}) },
      rateLimit: { max: 1_000_000, upstreamPerCaller: { max: 0 } },
      server: { maxEventLoopDelayMs: 0 },
      ...(shared ? { redis: { url: redis.url } } : {})
    })
    const app = await buildApp(prepare(config, { [KEYS_ENV]: keys }), { logger: pino({ level: 'silent' }), defaultMetrics: false, stsClient: createStsClient({ endpoint: sts.url, timeoutMs: 3000, credential: createStaticCredential(id, secret) }) })
    await app.ready()
    apps.push(app)
    return app
  }
  const fleet = async (shared: boolean, o: { fleetBudget?: number } = {}): Promise<FastifyInstance[]> => await Promise.all([0, 1, 2].map(async () => await replica(shared, o)))
  const vend = async (app: FastifyInstance, token: string): Promise<number> =>
    (await app.inject({ method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: '{}' })).statusCode
  const peak = (times: number[]): number => {
    const s = [...times].sort((a, b) => a - b)
    let best = 0
    let lo = 0
    for (let hi = 0; hi < s.length; hi++) {
      while ((s[hi] as number) - (s[lo] as number) >= 1000) lo++
      best = Math.max(best, hi - lo + 1)
    }
    return best
  }
  let population = 0
  const callers = (n: number): string[] => Array.from({ length: n }, () => issuer.mint({ sub: `c${population++}` }))
  const rows: string[][] = []

  try {
    for (const shared of [false, true]) {
      await redis.admin.flushdb()
      const replicas = await fleet(shared)
      const tokens = callers(50)
      const before = sts.callCount
      let next = 0
      for (let round = 0; round < 3; round++) await Promise.all(tokens.map(async (tok) => await vend(replicas[next++ % 3] as FastifyInstance, tok)))
      rows.push([`AssumeRole calls per caller, 50 callers x 3 requests, 3 replicas ${shared ? 'on Redis' : 'without Redis'}`, ((sts.callCount - before) / 50).toFixed(2)])
    }
    for (const shared of [false, true]) {
      await redis.admin.flushdb()
      const replicas = await fleet(shared, { fleetBudget: 20 })
      const tokens = callers(300)
      const from = sts.calls.length
      await Promise.all(tokens.map(async (tok, i) => await vend(replicas[i % 3] as FastifyInstance, tok)))
      rows.push([`peak AssumeRole calls in a sliding second, 300 new callers, ${shared ? 'fleet budget 20/s' : 'per-replica budget 100/s x 3'}`, String(peak(sts.calls.slice(from).map((c) => c.at)))])
    }
    // Hit cost: one caller warm in L1; the same caller through a replica without an L1
    // (maxEntries 0), so every request is a shared (L2) hit.
    await redis.admin.flushdb()
    const l1 = await replica(true)
    const l2 = await replica(true, { maxEntries: 0 })
    const [tok] = callers(1) as [string]
    await vend(l1, tok)
    // Interleaved batches, so that JIT warm-up and a busy machine weigh on both alike.
    const cost = { l1: { cpu: 0, wall: 0, n: 0 }, l2: { cpu: 0, wall: 0, n: 0 } }
    for (let i = 0; i < 200; i++) { await vend(l1, tok); await vend(l2, tok) }
    for (let batch = 0; batch < 20; batch++) {
      for (const [which, app] of [['l1', l1], ['l2', l2]] as const) {
        const cpu = process.cpuUsage()
        const started = performance.now()
        for (let i = 0; i < 100; i++) await vend(app, tok)
        const used = process.cpuUsage(cpu)
        cost[which].cpu += used.user + used.system
        cost[which].wall += (performance.now() - started) * 1000
        cost[which].n += 100
      }
    }
    for (const [which, name] of [['l1', 'L1 (in-process) hit'], ['l2', 'L2 (Redis) hit']] as const) {
      const c = cost[which]
      rows.push([`${name}: µs CPU per request (wall µs)`, `${(c.cpu / c.n).toFixed(0)} (${(c.wall / c.n).toFixed(0)})`])
    }
  } finally {
    for (const app of apps) await app.close()
    await sts.close()
    for (const fn of teardown) await fn()
  }
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(rows)}\n`)
    return
  }
  const width = Math.max(...rows.map((r) => (r[0] as string).length))
  for (const [k, v] of rows) process.stdout.write(`${(k as string).padEnd(width)}  ${v as string}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
