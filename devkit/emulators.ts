// `npm run emulators`: the STS, RAM and OSS emulators alone, for running the real server
// (`node dist/server.js`) or `provision --endpoint` against them without a hand-written
// launcher. Prints their endpoints, the AccessKey they accept and what to point at them,
// then runs until Ctrl-C. Never for production: these accept a generated AccessKey.
//
//   npm run emulators                       the dev role on dev-bucket
//   npm run emulators -- --config my.yaml   every role and bucket your grants name
import { parseArgs } from 'node:util'
import { loadConfigFile } from '../src/config/load.js'
import { DEV_BUCKET, DEV_ROLE_ARN, parseOrigin, RAM_USER, startEmulators } from './dev/emulators.js'

const HELP = `Usage: npm run emulators -- [options]

Starts the STS, RAM and OSS emulators on loopback and runs until Ctrl-C.

Options:
  --config <file>           know every role and bucket this config's grants name
                            (default: the dev role on ${DEV_BUCKET})
  --allow-origin <origin>   the OSS emulators' CORS allows this page origin (repeatable;
                            also STS_VENDING_DEV_ORIGINS=a,b)
  --sts-port <n>            default 9101
  --ram-port <n>            default 9102
  --oss-port <n>            default 9103 (a second bucket takes 9104, and so on)
  -h, --help                show this help
`

function port (value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name}: not a port number: ${value}`)
  return n
}

async function main (): Promise<void> {
  if (process.env.NODE_ENV === 'production') {
    process.stderr.write('sts-vending emulators: refusing to start with NODE_ENV=production\n')
    process.exit(2)
  }
  let v
  let ports
  let origins
  try {
    v = parseArgs({
      args: process.argv.slice(2),
      options: { config: { type: 'string' }, 'allow-origin': { type: 'string', multiple: true }, 'sts-port': { type: 'string' }, 'ram-port': { type: 'string' }, 'oss-port': { type: 'string' }, help: { type: 'boolean', short: 'h' } }
    }).values
    ports = { sts: port(v['sts-port'], 9101, 'sts-port'), ram: port(v['ram-port'], 9102, 'ram-port'), oss: port(v['oss-port'], 9103, 'oss-port') }
    const fromEnv = (process.env.STS_VENDING_DEV_ORIGINS ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
    origins = [...fromEnv, ...v['allow-origin'] ?? []].map(parseOrigin)
  } catch (err) {
    process.stderr.write(`sts-vending emulators: ${(err as Error).message}\n\n${HELP}`)
    process.exit(2)
  }
  if (v.help === true) {
    process.stdout.write(HELP)
    return
  }
  let grants
  if (v.config !== undefined) {
    try {
      grants = (await loadConfigFile(v.config)).grants
    } catch (err) {
      process.stderr.write(`sts-vending emulators: ${(err as Error).message}\n`)
      process.exit(2)
    }
  }
  let e
  try {
    e = await startEmulators({ ram: true, ports, origins, ...(grants !== undefined ? { grants } : {}) })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      process.stderr.write(`sts-vending emulators: a port is in use (${(err as Error).message}). Pick others: npm run emulators -- --sts-port 9201 --ram-port 9202 --oss-port 9203\n`)
      process.exit(1)
    }
    throw err
  }
  const ram = e.ram as NonNullable<typeof e.ram>
  const roles = grants === undefined ? [DEV_ROLE_ARN] : [...new Set(grants.map((g) => g.roleArn))]
  process.stdout.write([
    '',
    `STS emulator  ${e.sts.url}   roles: ${roles.join(', ')}`,
    `RAM emulator  ${ram.url}   account ${ram.accountId}, user ${RAM_USER}`,
    ...e.oss.map((o) => `OSS emulator  ${o.url}   bucket ${o.bucket}`),
    '',
    'They accept this AccessKey (STS and RAM):',
    '',
    `  export ALIBABA_CLOUD_ACCESS_KEY_ID=${e.accessKeyId}`,
    `  export ALIBABA_CLOUD_ACCESS_KEY_SECRET=${e.accessKeySecret}`,
    '',
    'The real server against them: in its config, set',
    '',
    `  sts: { endpoint: ${e.sts.url} }`,
    ...e.oss.map((o) => `  grants[bucket=${o.bucket}]: endpoint: ${o.url}`),
    '',
    'then: npm run build && STS_VENDING_CONFIG=my.yaml node dist/server.js',
    '',
    'Provisioning against the RAM emulator (--dry-run only prints what it would do):',
    '',
    `  node dist/cli.js provision --endpoint ${ram.url} --account-id ${ram.accountId} --bucket ${e.oss[0]?.bucket ?? DEV_BUCKET} --prefix users/ --ram-user ${RAM_USER}`,
    '',
    'Ctrl-C stops them.',
    '',
    ''
  ].join('\n'))
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    e.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

main().catch((err: unknown) => {
  process.stderr.write(`sts-vending emulators: cannot start: ${(err as Error).message}\n`)
  process.exit(1)
})
