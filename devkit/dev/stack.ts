// The whole development setup in one call: STS emulator, OSS emulator (trusting that
// STS, with a role policy covering users/*), the service pointed at both, a generated
// issuer, and the dev-only routes (token minting, the demo upload page). `npm run dev`
// runs it; the verify and browser tests run exactly the same thing on free ports.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDeps } from '../../src/app.js'
import { prepare } from '../../src/prepare.js'
import { parseConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { loggerOptions } from '../../src/observability/logger.js'
import { startOssEmulator, type OssEmulator } from '../emulator/oss.js'
import { startStsEmulator, type StsEmulator } from '../emulator/sts.js'
import { createStsClient } from '../../src/alicloud/sts-client.js'
import { createStaticCredential } from '../../src/alicloud/credentials.js'
import { createDevIssuer, type DevIssuer } from './issuer.js'
import devRoutes from './routes.js'
import { startDevAppServer, type DevAppServer } from './app-server.js'
import { createServer } from 'node:net'

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

export const DEV_ROLE_ARN = 'acs:ram::1000000000000000:role/sts-vending-dev'
export const DEV_BUCKET = 'dev-bucket'
export const DEV_REGION = 'cn-hangzhou'

/** What the dev role may do in OSS: everything under users/. Each session policy narrows it to one user. */
export function devRolePolicy (bucket = DEV_BUCKET): unknown {
  return {
    Version: '1',
    Statement: [
      { Effect: 'Allow', Action: ['oss:PutObject', 'oss:GetObject', 'oss:DeleteObject', 'oss:AbortMultipartUpload', 'oss:ListParts'], Resource: [`acs:oss:*:*:${bucket}/users/*`] },
      { Effect: 'Allow', Action: ['oss:ListObjects'], Resource: [`acs:oss:*:*:${bucket}`], Condition: { StringLike: { 'oss:Prefix': ['users/*'] } } }
    ]
  }
}

export interface DevStackOptions {
  host?: string
  /** 0 = any free port. */
  port?: number
  logger?: AppDeps['logger']
  env?: Record<string, string | undefined>
}

export interface DevStack {
  app: FastifyInstance
  /** The service, e.g. http://127.0.0.1:3000 (the demo page is at `${url}/demo`). */
  url: string
  sts: StsEmulator
  oss: OssEmulator
  issuer: DevIssuer
  config: Config
  /** The application server the service forwards verified upload events to. */
  appServer: DevAppServer
  close: () => Promise<void>
}

export async function startDevStack (opts: DevStackOptions = {}): Promise<DevStack> {
  const host = opts.host ?? '127.0.0.1'
  const accessKeyId = `dev${randomBytes(8).toString('hex')}`
  const accessKeySecret = randomBytes(24).toString('base64url')
  const sts = await startStsEmulator({ accessKeys: { [accessKeyId]: accessKeySecret }, roles: { [DEV_ROLE_ARN]: { maxSessionDuration: 3600 } } })
  const oss = await startOssEmulator({
    bucket: DEV_BUCKET,
    region: DEV_REGION,
    credentials: (id) => sts.issued(id),
    rolePolicies: { [DEV_ROLE_ARN]: devRolePolicy() }
  })
  const issuer = createDevIssuer()
  // Upload callbacks: OSS (the emulator) calls the service back, which forwards to a
  // stand-in application server. The callback URL needs the service's port up front.
  const webhookSecret = randomBytes(32).toString('base64url')
  const appServer = await startDevAppServer(Buffer.from(webhookSecret, 'utf8'))
  const port = opts.port !== undefined && opts.port !== 0 ? opts.port : await freePort(host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host)
  const loopback = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  const serviceUrl = `http://${loopback.includes(':') ? `[${loopback}]` : loopback}:${port}`
  const config = parseConfig({
    sts: { endpoint: sts.url },
    issuers: [{ name: 'dev', issuer: issuer.issuer, audience: issuer.audience, publicKey: issuer.publicKeyPem, algorithms: [issuer.alg] }],
    grants: [{
      name: 'uploads',
      issuers: ['dev'],
      roleArn: DEV_ROLE_ARN,
      bucket: DEV_BUCKET,
      region: DEV_REGION,
      endpoint: oss.url,
      prefix: 'users/{sub}/',
      actions: ['list', 'read', 'write', 'delete'],
      durationSeconds: 3600,
      // The demo's signed form upload (POST /uploads/form), with OSS's callback.
      signing: {
        maxBytes: 10 * 1024 * 1024,
        expiresSeconds: 600,
        callback: { url: `${serviceUrl}/uploads/callback`, forwardUrl: appServer.forwardUrl, forwardSecretEnv: DEV_WEBHOOK_SECRET_ENV }
      }
    }],
    uploads: { callbackKeyUrlPrefixes: [oss.callbackKeyUrlPrefix] },
    cache: { minRemainingSeconds: 1200 }
  })
  let app: FastifyInstance | undefined
  try {
    app = await buildApp(prepare(config, { ...opts.env, [DEV_WEBHOOK_SECRET_ENV]: webhookSecret }), {
      logger: opts.logger ?? loggerOptions('info'),
      stsClient: createStsClient({ endpoint: sts.url, timeoutMs: config.sts.timeoutMs, credential: createStaticCredential(accessKeyId, accessKeySecret) })
    })
    await app.register(devRoutes, { issuer, ossOrigin: oss.url })
    app.addHook('onClose', async () => {
      await oss.close()
      await sts.close()
      await appServer.close()
    })
    await app.listen({ host, port })
  } catch (err) {
    await app?.close()
    await oss.close()
    await sts.close()
    await appServer.close()
    throw err
  }
  const address = app.server.address()
  const listening = typeof address === 'object' && address !== null ? address.port : port
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  const url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${listening}`
  // The page is served by the service; its uploads go straight to OSS, cross-origin.
  oss.allowOrigin(url)
  if (shown === '127.0.0.1') oss.allowOrigin(`http://localhost:${listening}`)
  const running = app
  return { app: running, url, sts, oss, issuer, config, appServer, close: async () => { await running.close() } }
}
