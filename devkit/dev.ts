// `npm run dev`: the service on its embedded STS and OSS emulators, with a generated
// development issuer and a demo upload page, so a newcomer sees it work within a minute
// of cloning. Never for production: it refuses to start when NODE_ENV=production.
//
//   npm run dev -- --allow-origin http://localhost:5173   your own page may call it (repeatable;
//                                                          also STS_VENDING_DEV_ORIGINS=a,b)
//   npm run dev -- --config my.yaml                       your own issuers and grants, on the emulators
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startDevStack } from './dev/stack.js'
import { parseOrigin } from './dev/emulators.js'
import { loadConfigFile } from '../src/config/load.js'
import { loggerOptions } from '../src/observability/logger.js'
import { installSignalHandlers } from '../src/server.js'

const HELP = `Usage: npm run dev -- [options]

The service on local STS and OSS emulators, a development issuer and a demo page.

Options:
  --allow-origin <origin>   let a page on this origin call the service and upload to the
                            OSS emulator (repeatable; also STS_VENDING_DEV_ORIGINS=a,b)
  --config <file>           run your own issuers and grants (STS and OSS endpoints are
                            pointed at the emulators; Redis is left out)
  -h, --help                show this help

Environment: PORT (default 3000), HOST (default 127.0.0.1), LOG_LEVEL (default info).
`

/** Where the alice token is written: a file only this user can read, the same path every run. */
export const TOKEN_FILE = join(tmpdir(), 'sts-vending-dev', 'alice.jwt')

class UsageError extends Error {}

function readArgs (argv: string[], env: NodeJS.ProcessEnv): { origins: string[], configPath: string | undefined, help: boolean } {
  let values
  try {
    values = parseArgs({ args: argv, options: { 'allow-origin': { type: 'string', multiple: true }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }).values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const fromEnv = (env.STS_VENDING_DEV_ORIGINS ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
  let origins: string[]
  try {
    origins = [...fromEnv, ...values['allow-origin'] ?? []].map(parseOrigin)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  return { origins, configPath: values.config, help: values.help === true }
}

async function main (): Promise<void> {
  if (process.env.NODE_ENV === 'production') {
    process.stderr.write('sts-vending dev: refusing to start with NODE_ENV=production (it runs emulators and a development issuer)\n')
    process.exit(2)
  }
  let args
  try {
    args = readArgs(process.argv.slice(2), process.env)
  } catch (err) {
    process.stderr.write(`sts-vending dev: ${(err as Error).message}\n\n${HELP}`)
    process.exit(2)
  }
  if (args.help) {
    process.stdout.write(HELP)
    return
  }
  const host = process.env.HOST ?? '127.0.0.1'
  const wanted = Number(process.env.PORT ?? 3000)
  let config
  if (args.configPath !== undefined) {
    try {
      config = await loadConfigFile(args.configPath)
    } catch (err) {
      process.stderr.write(`sts-vending dev: ${(err as Error).message}\n`)
      process.exit(2)
    }
  }
  let stack
  try {
    stack = await startDevStack({
      host,
      port: wanted,
      logger: loggerOptions(process.env.LOG_LEVEL ?? 'info'),
      env: process.env,
      allowOrigins: args.origins,
      ...(config !== undefined ? { config } : {})
    })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      process.stderr.write(`sts-vending dev: port ${wanted} is in use (another npm run dev?). Pick another: PORT=${wanted + 1} npm run dev\n`)
      process.exit(1)
    }
    throw err
  }
  installSignalHandlers(stack.app, stack.config.server.shutdownGraceMs)
  const port = new URL(stack.url).port
  const osses = stack.osses.map((o) => `${o.bucket} on ${o.url}`).join(', ')
  const lines = [
    '',
    `sts-vending (dev) listening on http://${host}:${port}, STS emulator on ${stack.sts.url}, OSS emulator: ${osses}`
  ]
  if (args.origins.length > 0) lines.push(`Pages on ${args.origins.join(', ')} may call it and upload to the OSS emulator.`)
  if (stack.ownConfig) {
    lines.push(
      `Your config (${args.configPath ?? ''}): issuers ${stack.config.issuers.map((i) => i.name).join(', ')}; grants ${stack.config.grants.map((g) => `${g.name} (${g.bucket})`).join(', ')}.`,
      'Use tokens from your own issuers (the development token below belongs to none of them):',
      '',
      `  curl -s http://127.0.0.1:${port}/grants -H "Authorization: Bearer $JWT"`,
      ''
    )
  } else {
    const token = stack.issuer.mint({ sub: 'alice' }, { expiresInSeconds: 12 * 3600 })
    await mkdir(join(TOKEN_FILE, '..'), { recursive: true, mode: 0o700 })
    await writeFile(TOKEN_FILE, token + '\n', { mode: 0o600 })
    await chmod(TOKEN_FILE, 0o600)
    lines.push(
      `A development token for user "alice" (valid 12 h) is in ${TOKEN_FILE}:`,
      '',
      `  export JWT="$(cat ${TOKEN_FILE})"`,
      `  curl -s http://127.0.0.1:${port}/grants -H "Authorization: Bearer $JWT"`,
      `  curl -s -X POST http://127.0.0.1:${port}/credentials -H "Authorization: Bearer $JWT" -H 'content-type: application/json' -d '{}'`,
      '',
      `Demo upload page: ${stack.url}/demo`,
      `Check the credentials end to end: node dist/cli.js verify --url ${stack.url} --token-file ${TOKEN_FILE}`
    )
  }
  process.stdout.write(lines.join('\n') + '\n\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`sts-vending dev: cannot start: ${(err as Error).message}\n`)
  process.exit(1)
})
