// The whole development setup in one call: STS emulator, OSS emulator (trusting that
// STS, with a role policy covering users/*), the service pointed at both, a generated
// issuer, and the dev-only routes (token minting, the demo upload page). `npm run dev`
// runs it; the verify and browser tests run exactly the same thing on free ports.
//
// With a user's own config (`npm run dev -- --config my.yaml`) the service runs that
// config's issuers and grants instead, its STS endpoint and every grant's OSS endpoint
// pointed at the emulators (one OSS emulator per bucket); the dev issuer and demo page
// still run, but only the user's issuers' tokens meet the user's grants. Extra origins
// (`--allow-origin`) join both the service's CORS list and the OSS emulators'.
//
// The dev grant's signed forms carry OSS's upload callback: the OSS emulator calls the
// service back, which verifies it and forwards the event to a stand-in application
// server (app-server.ts), whose answer the demo page shows.
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDeps } from '../../src/app.js'
import { prepare } from '../../src/prepare.js'
import { parseConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { loggerOptions } from '../../src/observability/logger.js'
import type { OssEmulator } from '../emulator/oss.js'
import type { StsEmulator } from '../emulator/sts.js'
import { createStsClient } from '../../src/alicloud/sts-client.js'
import { createStaticCredential } from '../../src/alicloud/credentials.js'
import { createDevIssuer, type DevIssuer } from './issuer.js'
import { DEV_BUCKET, DEV_REGION, DEV_ROLE_ARN, startEmulators } from './emulators.js'
import devRoutes from './routes.js'
import { startDevAppServer, type DevAppServer } from './app-server.js'

/** The env var the dev stack's callback grant reads its forward secret from. */
export const DEV_WEBHOOK_SECRET_ENV = 'STSV_DEV_UPLOAD_WEBHOOK_SECRET'

/** A free loopback port, known before the service listens (its callback URL is in its config). */
async function freePort (host: string): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve, reject) => { probe.once('error', reject); probe.listen(0, host, resolve) })
  const port = (probe.address() as { port: number }).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

export interface DevStackOptions {
  host?: string
  /** 0 = any free port. */
  port?: number
  logger?: AppDeps['logger']
  env?: Record<string, string | undefined>
  /** Origins (another dev server's page) allowed by the service's and the OSS emulators' CORS. */
  allowOrigins?: readonly string[]
  /** The user's own config: its issuers and grants, with STS and OSS pointed at the emulators. */
  config?: Config
}

export interface DevStack {
  app: FastifyInstance
  /** The service, e.g. http://127.0.0.1:3000 (the demo page is at `${url}/demo`). */
  url: string
  sts: StsEmulator
  /** The first bucket's emulator (the dev bucket's without a config of one's own). */
  oss: OssEmulator
  /** Every OSS emulator, one per bucket. */
  osses: OssEmulator[]
  issuer: DevIssuer
  config: Config
  /** True when the config is the user's own (`--config`), not the dev grant. */
  ownConfig: boolean
  /** The application server the service forwards verified upload events to. */
  appServer: DevAppServer
  close: () => Promise<void>
}

/** The dev stack's own config: the dev issuer and one grant on the dev bucket. */
interface DevCallback { serviceUrl: string, forwardUrl: string, keyUrlPrefix: string }

function devConfig (issuer: DevIssuer, stsUrl: string, ossUrl: string, origins: readonly string[], callback: DevCallback): Config {
  return parseConfig({
    sts: { endpoint: stsUrl },
    issuers: [{ name: 'dev', issuer: issuer.issuer, audience: issuer.audience, publicKey: issuer.publicKeyPem, algorithms: [issuer.alg] }],
    grants: [{
      name: 'uploads',
      issuers: ['dev'],
      roleArn: DEV_ROLE_ARN,
      bucket: DEV_BUCKET,
      region: DEV_REGION,
      endpoint: ossUrl,
      prefix: 'users/{sub}/',
      actions: ['list', 'read', 'write', 'delete'],
      durationSeconds: 3600,
      // The demo's signed form upload (POST /uploads/form), with OSS's callback.
      signing: {
        maxBytes: 10 * 1024 * 1024,
        expiresSeconds: 600,
        callback: { url: `${callback.serviceUrl}/uploads/callback`, forwardUrl: callback.forwardUrl, forwardSecretEnv: DEV_WEBHOOK_SECRET_ENV }
      }
    }],
    uploads: { callbackKeyUrlPrefixes: [callback.keyUrlPrefix] },
    cache: { minRemainingSeconds: 1200 },
    cors: { origins: [...origins] }
  })
}

/**
 * The user's Redis is not part of a local run: credentials the emulated STS made must
 * not reach a shared cache, and one process needs no fleet.
 */
function withoutRedis (config: Config): Omit<Config, 'redis'> {
  const { redis: _redis, ...rest } = config
  return rest
}

export async function startDevStack (opts: DevStackOptions = {}): Promise<DevStack> {
  const host = opts.host ?? '127.0.0.1'
  const origins = [...new Set(opts.allowOrigins ?? [])]
  const own = opts.config
  const emulators = await startEmulators({ origins, ...(own !== undefined ? { grants: own.grants } : {}) })
  const { sts } = emulators
  const issuer = createDevIssuer()
  const webhookSecret = randomBytes(32).toString('base64url')
  const appServer = await startDevAppServer(Buffer.from(webhookSecret, 'utf8'))
  const loopback = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  let app: FastifyInstance | undefined
  let config: Config
  try {
    // The callback URL is in the config, so the port is chosen before listening.
    const port = opts.port !== undefined && opts.port !== 0 ? opts.port : await freePort(loopback)
    const serviceUrl = `http://${loopback.includes(':') ? `[${loopback}]` : loopback}:${port}`
    if (own === undefined) {
      const devOss = emulators.ossFor(DEV_BUCKET)
      config = devConfig(issuer, sts.url, devOss.url, origins, { serviceUrl, forwardUrl: appServer.forwardUrl, keyUrlPrefix: devOss.callbackKeyUrlPrefix })
    } else {
      config = parseConfig({
        ...withoutRedis(own),
        sts: { ...own.sts, endpoint: sts.url },
        grants: own.grants.map((g) => ({ ...g, endpoint: emulators.ossFor(g.bucket).url })),
        cors: { ...own.cors, origins: [...new Set([...own.cors.origins, ...origins])] }
      })
    }
    app = await buildApp(prepare(config, { ...opts.env, [DEV_WEBHOOK_SECRET_ENV]: webhookSecret }), {
      logger: opts.logger ?? loggerOptions('info'),
      stsClient: createStsClient({ endpoint: sts.url, timeoutMs: config.sts.timeoutMs, credential: createStaticCredential(emulators.accessKeyId, emulators.accessKeySecret) })
    })
    await app.register(devRoutes, { issuer, ossOrigin: emulators.oss.map((o) => o.url).join(' ') })
    app.addHook('onClose', async () => {
      await emulators.close()
      await appServer.close()
    })
    await app.listen({ host, port })
  } catch (err) {
    await app?.close()
    await emulators.close()
    await appServer.close()
    throw err
  }
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : opts.port ?? 0
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  const url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`
  // The page is served by the service; its uploads go straight to OSS, cross-origin.
  emulators.allowOrigin(url)
  if (shown === '127.0.0.1') emulators.allowOrigin(`http://localhost:${port}`)
  const running = app
  return {
    app: running,
    url,
    sts,
    oss: emulators.oss[0] as OssEmulator,
    osses: emulators.oss,
    issuer,
    config,
    ownConfig: own !== undefined,
    appServer,
    close: async () => { await running.close() }
  }
}
