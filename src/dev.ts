// `npm run dev`: the service on its embedded STS emulator, with a generated
// development issuer, so a newcomer sees it work within a minute of cloning.
// Never for production: it refuses to start when NODE_ENV=production.
import { randomBytes } from 'node:crypto'
import { parseConfig } from './config/load.js'
import { createDevIssuer } from './dev/issuer.js'
import { startStsEmulator } from './emulator/sts.js'
import { createStsClient } from './sts/client.js'
import { createStaticCredential } from './sts/credentials.js'
import { installSignalHandlers, startServer } from './server.js'

export const DEV_ROLE_ARN = 'acs:ram::1000000000000000:role/sts-vending-dev'

async function main (): Promise<void> {
  if (process.env.NODE_ENV === 'production') {
    process.stderr.write('sts-vending dev: refusing to start with NODE_ENV=production (it runs an emulator and a development issuer)\n')
    process.exit(2)
  }
  const accessKeyId = `dev${randomBytes(8).toString('hex')}`
  const accessKeySecret = randomBytes(24).toString('base64url')
  const emulator = await startStsEmulator({ accessKeys: { [accessKeyId]: accessKeySecret }, roles: { [DEV_ROLE_ARN]: { maxSessionDuration: 3600 } } })
  const issuer = createDevIssuer()
  const config = parseConfig({
    sts: { endpoint: emulator.url },
    issuers: [{ name: 'dev', issuer: issuer.issuer, audience: issuer.audience, publicKey: issuer.publicKeyPem, algorithms: [issuer.alg] }],
    grants: [{
      name: 'uploads',
      issuers: ['dev'],
      roleArn: DEV_ROLE_ARN,
      bucket: 'dev-bucket',
      region: 'cn-hangzhou',
      prefix: 'users/{sub}/',
      actions: ['list', 'read', 'write', 'delete'],
      durationSeconds: 3600
    }],
    cache: { minRemainingSeconds: 1200 }
  })
  const port = Number(process.env.PORT ?? 3000)
  const host = process.env.HOST ?? '127.0.0.1'
  const app = await startServer(config, { host, port, logLevel: process.env.LOG_LEVEL ?? 'info' }, {
    stsClient: createStsClient({ endpoint: emulator.url, timeoutMs: config.sts.timeoutMs, credential: createStaticCredential(accessKeyId, accessKeySecret) })
  })
  app.addHook('onClose', async () => { await emulator.close() })
  installSignalHandlers(app, config.server.shutdownGraceMs)
  const token = issuer.mint({ sub: 'alice' }, { expiresInSeconds: 12 * 3600 })
  const address = app.server.address()
  const actualPort = typeof address === 'object' && address !== null ? address.port : port
  process.stdout.write([
    '',
    `sts-vending (dev) listening on http://${host}:${actualPort}, STS emulator on ${emulator.url}`,
    'A development token for user "alice" (valid 12 h). Get credentials with:',
    '',
    `  curl -s -X POST http://127.0.0.1:${actualPort}/credentials -H 'Authorization: Bearer ${token}' -H 'content-type: application/json' -d '{}'`,
    '',
    ''
  ].join('\n'))
}

void main()
