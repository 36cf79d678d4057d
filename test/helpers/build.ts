// build(t): a ready app on a real STS emulator (over loopback HTTP, through the
// official SDK) with a generated issuer. Every log line is captured, and teardown
// asserts that no secret the test used (tokens, AccessKey secrets, STS credentials)
// appears in any of them. Every answer h.vend() gets is checked against openapi.yaml.
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDeps } from '../../src/app.js'
import { prepare, type Environment } from '../../src/prepare.js'
import type { CompiledGrants } from '../../src/grants/compile.js'
import { parseConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { loggerOptions } from '../../src/observability/logger.js'
import { createDevIssuer, type DevIssuer } from '../../devkit/dev/issuer.js'
import { startStsEmulator, type StsEmulator } from '../../devkit/emulator/sts.js'
import { createStsClient } from '../../src/alicloud/sts-client.js'
import { createStaticCredential } from '../../src/alicloud/credentials.js'
import { requestedFormat } from '../../src/http/credentials/formats.js'
import { assertContract } from './contract.js'

export const ROLE_ARN = 'acs:ram::1234567890123456:role/oss-upload'

type Tap = { teardown: (fn: () => unknown) => void, fail: (msg: string) => void, pass?: (msg: string) => void }

export interface Harness {
  app: FastifyInstance
  emulator: StsEmulator
  issuer: DevIssuer
  config: Config
  logs: string[]
  /** Remember a value that must never be logged. */
  secret (value: string): string
  /** Mint a token (remembered as a secret). */
  token (claims?: Record<string, unknown>, opts?: Parameters<DevIssuer['mint']>[1]): string
  /** POST /credentials with a bearer token; remembers any credentials returned. */
  vend (token: string | undefined, body?: unknown, headers?: Record<string, string>): Promise<{ statusCode: number, headers: Record<string, unknown>, json: any }>
}

export function baseConfig (issuer: DevIssuer, emulatorUrl: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    // Generous timeouts: a loaded 2-core CI machine must not turn into 504s; fault tests set their own.
    sts: { endpoint: emulatorUrl, timeoutMs: 5000, deadlineMs: 10_000, backoffBaseMs: 10, backoffMaxMs: 50 },
    issuers: [{ name: 'app', issuer: issuer.issuer, audience: issuer.audience, publicKey: issuer.publicKeyPem, algorithms: [issuer.alg] }],
    grants: [{
      name: 'uploads',
      issuers: ['app'],
      roleArn: ROLE_ARN,
      bucket: 'oss-test',
      region: 'cn-hangzhou',
      prefix: 'dir111/dir111_secondline1/{sub}/',
      actions: ['list', 'read', 'write'],
      durationSeconds: 3600
    }],
    cache: { maxEntries: 1000, minRemainingSeconds: 1200 },
    rateLimit: { max: 1000, timeWindowMs: 60_000 },
    // Load shedding is not under test unless a test sets it (with the injected monitor of
    // ./event-loop.ts): a loaded machine must not turn a test's requests into 503s.
    server: { maxEventLoopDelayMs: 0 },
    ...overrides
  }
}

export interface BuildOptions {
  /** Patch the config object before it is parsed. */
  config?: (base: Record<string, unknown>, ctx: { issuer: DevIssuer, emulatorUrl: string }) => Record<string, unknown>
  deps?: Partial<AppDeps>
  /** The environment prepare() reads (secretEnv issuers, the fleet's keys); empty by default. */
  env?: Environment
  /** Serve these grants instead of the ones prepare() compiles (tests of the compiled-once rule). */
  grants?: CompiledGrants
  issuer?: DevIssuer
  emulatorNow?: () => number
  maxSessionDuration?: number
}

export async function build (t: Tap, opts: BuildOptions = {}): Promise<Harness> {
  const accessKeyId = `test${randomBytes(6).toString('hex')}`
  const accessKeySecret = randomBytes(24).toString('base64url')
  const emulator = await startStsEmulator({
    accessKeys: { [accessKeyId]: accessKeySecret },
    roles: { [ROLE_ARN]: { maxSessionDuration: opts.maxSessionDuration ?? 43_200 } },
    ...(opts.emulatorNow !== undefined ? { now: opts.emulatorNow } : {})
  })
  const issuer = opts.issuer ?? createDevIssuer()
  const raw = baseConfig(issuer, emulator.url)
  const config = parseConfig(opts.config !== undefined ? opts.config(raw, { issuer, emulatorUrl: emulator.url }) : raw)
  const logs: string[] = []
  const logger = pino(loggerOptions('debug'), { write: (line: string) => { logs.push(line) } })
  const secrets = new Set<string>([accessKeySecret])
  const prepared = prepare(config, opts.env ?? {})
  const app = await buildApp(opts.grants !== undefined ? { ...prepared, grants: opts.grants } : prepared, {
    logger,
    stsClient: createStsClient({ endpoint: emulator.url, timeoutMs: config.sts.timeoutMs, credential: createStaticCredential(accessKeyId, accessKeySecret) }),
    ...opts.deps
  })
  await app.ready()

  t.teardown(async () => {
    await app.close()
    await emulator.close()
    const leaked = [...secrets].filter((s) => s.length >= 8 && logs.some((l) => l.includes(s)))
    if (leaked.length > 0) t.fail(`a secret appeared in the logs (${leaked.length} distinct values)`)
    const bearer = logs.filter((l) => /Bearer [A-Za-z0-9]|Signature=[0-9a-f]/.test(l))
    if (bearer.length > 0) t.fail('a Bearer token or a signature appeared in the logs')
  })

  const secret = (v: string): string => { secrets.add(v); return v }
  return {
    app,
    emulator,
    issuer,
    config,
    logs,
    secret,
    token: (claims, o) => secret(issuer.mint(claims, o)),
    async vend (token, body = {}, headers = {}) {
      const res = await app.inject({
        method: 'POST',
        url: '/credentials',
        headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json', ...headers },
        payload: typeof body === 'string' ? body : JSON.stringify(body)
      })
      let json: any
      try { json = res.json() } catch { json = undefined }
      if (json !== undefined && typeof json === 'object' && json !== null) {
        for (const k of ['accessKeySecret', 'securityToken', 'AccessKeySecret', 'SecurityToken']) {
          if (typeof json[k] === 'string') secrets.add(json[k])
        }
      }
      const accept = Object.entries(headers).find(([k]) => k.toLowerCase() === 'accept')?.[1]
      assertContract(t, { method: 'POST', path: '/credentials', statusCode: res.statusCode, headers: res.headers, body: json, format: requestedFormat(undefined, accept) })
      return { statusCode: res.statusCode, headers: res.headers, json }
    }
  }
}
