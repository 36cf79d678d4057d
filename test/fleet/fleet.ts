// A fleet for tests: several app instances (replicas) on one real Redis and one STS
// emulator, reached through a round-robin client, each with its own captured log.
// Teardown asserts, as build() does, that no secret reached any replica's log, and
// every answer is held against openapi.yaml.
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDeps } from '../../src/app.js'
import { prepare } from '../../src/prepare.js'
import { parseConfig } from '../../src/config/load.js'
import { loggerOptions } from '../../src/observability/logger.js'
import { createDevIssuer, type DevIssuer } from '../../devkit/dev/issuer.js'
import { startStsEmulator, type StsEmulator } from '../../devkit/emulator/sts.js'
import { createStsClient } from '../../src/alicloud/sts-client.js'
import { createStaticCredential } from '../../src/alicloud/credentials.js'
import { baseConfig, ROLE_ARN } from '../helpers/build.js'
import { assertContract, exchange } from '../helpers/contract.js'
import { requestedFormat } from '../../src/http/credentials/formats.js'
import { cacheKey, startRedis, type TestRedis } from '../helpers/redis.js'

type Tap = { teardown: (fn: () => unknown) => void, fail: (msg: string) => void }

export const KEYS_ENV = 'STS_VENDING_CACHE_KEYS'

export interface Reply { statusCode: number, headers: Record<string, unknown>, json: any, replica: number }

export interface Fleet {
  apps: FastifyInstance[]
  emulator: StsEmulator
  issuer: DevIssuer
  redis: TestRedis
  /** The cache keys every replica was given (comma-separated, for cache.encryptionKeysEnv). */
  keys: string
  logs: string[]
  token (claims?: Record<string, unknown>): string
  /** POST /credentials on the next replica in turn, or on the one named. */
  vend (token: string, body?: unknown, replica?: number): Promise<Reply>
  /** POST /uploads/form or /uploads/url on the next replica in turn, or on the one named. */
  upload (route: 'form' | 'url', token: string, body?: unknown, replica?: number): Promise<Reply>
  /** Start one more replica on the same Redis (optionally with other keys or config). */
  addReplica (o?: ReplicaOptions): Promise<FastifyInstance>
}

export interface ReplicaOptions {
  keys?: string
  /** More environment for prepare() (beside the cache keys), and app deps. */
  env?: Record<string, string>
  deps?: Partial<AppDeps>
  config?: (c: Record<string, any>) => Record<string, any>
  now?: () => number
}

export interface FleetOptions extends ReplicaOptions {
  replicas?: number
  redis?: TestRedis
  /** false: the same replicas without Redis (today's islands), for comparison. */
  shared?: boolean
}

export function fleetConfig (base: Record<string, any>, redisUrl: string): Record<string, any> {
  return {
    ...base,
    sts: { ...base.sts, fleetMaxCallsPerSecond: 80 },
    cache: { ...base.cache, encryptionKeysEnv: KEYS_ENV },
    // Generous, as build() is with STS: a loaded machine must not turn into Redis errors
    // and fallbacks; the tests about a slow or dead Redis set their own.
    redis: { url: redisUrl, commandTimeoutMs: 2000 },
    // Load shedding is not under test here; a loaded CI machine must not turn into 503s.
    server: { ...base.server, maxEventLoopDelayMs: 0 }
  }
}

export async function startFleet (t: Tap, opts: FleetOptions = {}): Promise<Fleet> {
  const accessKeyId = `test${randomBytes(6).toString('hex')}`
  const accessKeySecret = randomBytes(24).toString('base64url')
  const emulator = await startStsEmulator({ accessKeys: { [accessKeyId]: accessKeySecret }, roles: { [ROLE_ARN]: { maxSessionDuration: 43_200 } } })
  const redis = opts.redis ?? await startRedis(t)
  const issuer = createDevIssuer()
  const keys = opts.keys ?? cacheKey()
  const logs: string[] = []
  const secrets = new Set<string>([accessKeySecret, ...keys.split(',')])
  const apps: FastifyInstance[] = []

  async function addReplica (o: ReplicaOptions = {}): Promise<FastifyInstance> {
    let raw: Record<string, any> = baseConfig(issuer, emulator.url)
    raw = opts.shared !== false ? fleetConfig(raw, redis.url) : { ...raw, server: { maxEventLoopDelayMs: 0 } }
    const patch = o.config ?? opts.config
    if (patch !== undefined) raw = patch(raw)
    const config = parseConfig(raw)
    const replicaKeys = o.keys ?? keys
    for (const k of replicaKeys.split(',')) secrets.add(k)
    const logger = pino(loggerOptions('debug'), { write: (line: string) => { logs.push(line) } })
    const now = o.now ?? opts.now
    const app = await buildApp(prepare(config, { ...(o.env ?? opts.env), [KEYS_ENV]: replicaKeys }), {
      logger,
      defaultMetrics: false,
      stsClient: createStsClient({ endpoint: emulator.url, timeoutMs: config.sts.timeoutMs, credential: createStaticCredential(accessKeyId, accessKeySecret) }),
      ...(now !== undefined ? { now } : {}),
      ...(o.deps ?? opts.deps)
    })
    await app.ready()
    apps.push(app)
    return app
  }

  for (let i = 0; i < (opts.replicas ?? 3); i++) await addReplica()

  t.teardown(async () => {
    for (const app of apps) await app.close()
    await emulator.close()
    const leaked = [...secrets].filter((s) => s.length >= 8 && logs.some((l) => l.includes(s)))
    if (leaked.length > 0) t.fail(`a secret appeared in the logs (${leaked.length} distinct values)`)
    if (logs.some((l) => /Bearer [A-Za-z0-9]|Signature=[0-9a-f]/.test(l))) t.fail('a Bearer token or a signature appeared in the logs')
  })

  let next = 0
  async function post (path: string, token: string, body: unknown, replica: number | undefined): Promise<Reply & { raw: Awaited<ReturnType<FastifyInstance['inject']>> }> {
    const i = replica ?? (next++ % apps.length)
    const app = apps[i] as FastifyInstance
    const res = await app.inject({
      method: 'POST',
      url: path,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify(body)
    })
    let json: any
    try { json = res.json() } catch { json = undefined }
    return { statusCode: res.statusCode, headers: res.headers, json, replica: i, raw: res }
  }
  return {
    apps,
    emulator,
    issuer,
    redis,
    keys,
    logs,
    addReplica,
    token: (claims) => { const tok = issuer.mint(claims); secrets.add(tok); return tok },
    async vend (token, body = {}, replica) {
      const { raw: res, ...reply } = await post('/credentials', token, body, replica)
      const json = reply.json
      if (typeof json?.accessKeySecret === 'string') secrets.add(json.accessKeySecret)
      if (typeof json?.securityToken === 'string') secrets.add(json.securityToken)
      assertContract(t, { method: 'POST', path: '/credentials', statusCode: res.statusCode, headers: res.headers, body: json, format: requestedFormat(undefined, undefined) })
      return reply
    },
    async upload (route, token, body = {}, replica) {
      const { raw: res, ...reply } = await post(`/uploads/${route}`, token, body, replica)
      const json = reply.json
      if (res.statusCode === 200) {
        const token = route === 'form' ? json.fields['x-oss-security-token'] : new URL(json.url).searchParams.get('x-oss-security-token')
        if (typeof token === 'string') secrets.add(token)
      }
      assertContract(t, exchange(res))
      return reply
    }
  }
}

/** The most calls that fell inside any window of `ms` (calls sorted by arrival). */
/**
 * 25 new callers, 3 requests each, all at once across the fleet's replicas: every answer
 * 200 and one AssumeRole per caller (the replicas share one cache through Redis).
 */
export async function sharesOneCache (t: { same: (a: unknown, b: unknown, msg: string) => unknown, equal: (a: unknown, b: unknown, msg: string) => unknown }, f: Fleet, label: string): Promise<void> {
  const N = 25
  const tokens = Array.from({ length: N }, (_, i) => f.token({ sub: `${label}-user-${i}` }))
  for (let round = 0; round < 3; round++) {
    const replies = await Promise.all(tokens.map(async (tok) => await f.vend(tok)))
    t.same(replies.filter((r) => r.statusCode !== 200).map((r) => r.json?.code), [], `${label}: round ${round}: all 200`)
  }
  t.equal(f.emulator.callCount, N, `${label}: ${N} callers x 3 requests over three replicas: ${N} AssumeRole calls`)
}

export function peakInWindow (times: number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b)
  let peak = 0
  let lo = 0
  for (let hi = 0; hi < sorted.length; hi++) {
    while ((sorted[hi] as number) - (sorted[lo] as number) >= ms) lo++
    peak = Math.max(peak, hi - lo + 1)
  }
  return peak
}
