// `npm run dev`: the service on its embedded STS and OSS emulators, with a generated
// development issuer and a demo upload page, so a newcomer sees it work within a minute
// of cloning. Never for production: it refuses to start when NODE_ENV=production.
import { startDevStack } from './dev/stack.js'
import { loggerOptions } from '../src/observability/logger.js'
import { installSignalHandlers } from '../src/server.js'

export { DEV_ROLE_ARN } from './dev/stack.js'

async function main (): Promise<void> {
  if (process.env.NODE_ENV === 'production') {
    process.stderr.write('sts-vending dev: refusing to start with NODE_ENV=production (it runs emulators and a development issuer)\n')
    process.exit(2)
  }
  const host = process.env.HOST ?? '127.0.0.1'
  const stack = await startDevStack({
    host,
    port: Number(process.env.PORT ?? 3000),
    logger: loggerOptions(process.env.LOG_LEVEL ?? 'info'),
    env: process.env
  })
  installSignalHandlers(stack.app, stack.config.server.shutdownGraceMs)
  const token = stack.issuer.mint({ sub: 'alice' }, { expiresInSeconds: 12 * 3600 })
  const port = new URL(stack.url).port
  process.stdout.write([
    '',
    `sts-vending (dev) listening on http://${host}:${port}, STS emulator on ${stack.sts.url}, OSS emulator on ${stack.oss.url}`,
    'A development token for user "alice" (valid 12 h). Get credentials with:',
    '',
    `  curl -s -X POST http://127.0.0.1:${port}/credentials -H 'Authorization: Bearer ${token}' -H 'content-type: application/json' -d '{}'`,
    '',
    `Demo upload page: ${stack.url}/demo`,
    `Check the credentials end to end: node dist/cli.js verify --url ${stack.url} --token-file <file holding a token>`,
    '',
    ''
  ].join('\n'))
}

main().catch((err: unknown) => {
  process.stderr.write(`sts-vending dev: cannot start: ${(err as Error).message}\n`)
  process.exit(1)
})
