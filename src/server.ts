// The process shell: load config, build the app, listen, and hand signals and crashes
// to close-with-grace. Only this file (and dev.ts / cli.ts) reads process.env.
import { parseArgs } from 'node:util'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDeps } from './app.js'
import { loadConfigFile } from './config/load.js'
import { ConfigError } from './config/error.js'
import { prepare, type Prepared } from './prepare.js'
import { createLogger } from './observability/logger.js'
import { startupFields, upstreamCredentialType } from './observability/startup.js'
import { packageVersion } from './observability/version.js'
import { checkUpstreamCredential } from './alicloud/credential-check.js'

export const EXIT_CONFIG = 2

export interface ServerSettings { host: string, port: number, logLevel: string, configPath: string }

export function wantsVersion (argv: string[]): boolean {
  return argv.includes('--version') || argv.includes('-v')
}

export function wantsHelp (argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h')
}

/** `node dist/server.js --help`: what the process reads, in one screen. */
export function usage (): string {
  return `Usage: node dist/server.js [--config <file>]

Serves narrowed Alibaba Cloud STS credentials and signed OSS uploads to JWT-authenticated callers.

Options:
  -c, --config <file>  the YAML or JSON config (default: $STS_VENDING_CONFIG)
  -v, --version        print the version and exit
  -h, --help           print this help and exit

Environment:
  STS_VENDING_CONFIG   the config file, when --config is not given
  PORT                 the port to listen on (default 3000)
  HOST                 the address to listen on (default 0.0.0.0)
  LOG_LEVEL            fatal, error, warn, info (default), debug, trace or silent
  The config may name more (an issuer's secretEnv, the Redis password); the upstream
  credential comes from the Alibaba Cloud default chain (ALIBABA_CLOUD_* variables, RRSA).

Exits 2 with one line on stderr when the config or the environment cannot work.
Operator commands (provisioning, policies, checks): node dist/cli.js --help
`
}

export function readSettings (argv: string[], env: NodeJS.ProcessEnv): ServerSettings {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true, allowPositionals: false })
  const configPath = values.config ?? env.STS_VENDING_CONFIG
  if (configPath === undefined || configPath === '') throw new ConfigError('config: set STS_VENDING_CONFIG or pass --config <file>')
  const port = Number(env.PORT ?? 3000)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`PORT: not a port number: ${env.PORT ?? ''}`)
  const logLevel = env.LOG_LEVEL ?? 'info'
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) throw new ConfigError(`LOG_LEVEL: unknown level ${logLevel}`)
  return { host: env.HOST ?? '0.0.0.0', port, logLevel, configPath }
}

/**
 * SIGTERM/SIGINT close the app gracefully: in-flight requests finish, new ones get 503
 * with Connection: close (http/lifecycle.ts), and the process exits 0 once closed, or 1
 * when `graceMs` runs out or a second signal comes. An uncaught exception or unhandled
 * rejection is logged, the app is closed the same way, and the process exits 1.
 * close-with-grace owns the process: it calls process.exit itself.
 */
export function installSignalHandlers (app: FastifyInstance, graceMs: number): { close: () => void, uninstall: () => void } {
  return closeWithGrace({
    delay: graceMs,
    logger: app.log,
    onTimeout: () => app.log.error({ graceMs }, 'grace period over: exiting with requests still in flight'),
    onSecondSignal: (signal) => app.log.warn({ signal }, 'second signal: exiting now'),
    onSecondError: (err) => app.log.fatal({ err }, 'second crash while closing: exiting now')
  }, async ({ signal, err }) => {
    if (err !== undefined) app.log.fatal({ err }, 'uncaught exception or unhandled rejection: closing')
    else app.log.info({ signal, graceMs }, 'shutting down: finishing in-flight requests')
    await app.close()
    app.log.info('closed')
  })
}

export async function startServer (prepared: Prepared, settings: Omit<ServerSettings, 'configPath'>, deps: AppDeps = {}): Promise<FastifyInstance> {
  const app = await buildApp(prepared, { logger: createLogger(settings.logLevel), ...deps })
  await app.listen({ host: settings.host, port: settings.port })
  // The bound address itself (0.0.0.0 stays 0.0.0.0), not one interface's.
  const bound = app.server.address()
  const address = bound === null || typeof bound === 'string' ? String(bound) : `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`
  app.log.info(startupFields({
    version: packageVersion(),
    address,
    config: prepared.config,
    upstreamCredential: deps.stsClient !== undefined || deps.upstream !== undefined ? 'injected' : upstreamCredentialType(process.env),
    redis: app.redisStatus()
  }), 'sts-vending started')
  return app
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  if (wantsHelp(argv)) {
    process.stdout.write(usage())
    return
  }
  if (wantsVersion(argv)) {
    process.stdout.write(`${packageVersion()}\n`)
    return
  }
  let settings: ServerSettings
  let prepared: Prepared
  try {
    settings = readSettings(argv, process.env)
    prepared = prepare(await loadConfigFile(settings.configPath), process.env)
  } catch (err) {
    process.stderr.write(`sts-vending: ${(err as Error).message}\n`)
    process.exit(EXIT_CONFIG)
  }
  const upstream = await checkUpstreamCredential({ env: process.env })
  if (!upstream.ok) {
    process.stderr.write(`sts-vending: ${upstream.problem}\n`)
    process.exit(EXIT_CONFIG)
  }
  let app: FastifyInstance
  try {
    app = await startServer(prepared, settings, { credentialReady: upstream.ready })
  } catch (err) {
    process.stderr.write(`sts-vending: cannot start: ${(err as Error).message}\n`)
    process.exit(1)
  }
  if (upstream.pending !== undefined) app.log.warn({ reason: upstream.pending }, 'upstream credential not available yet: not ready')
  installSignalHandlers(app, prepared.config.server.shutdownGraceMs)
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  void main()
}
