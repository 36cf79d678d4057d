// The process shell: load config, build the app, listen, and shut down gracefully.
// Only this file (and dev.ts / cli.ts) reads process.env.
import { parseArgs } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDeps } from './app.js'
import { ConfigError, loadConfigFile } from './config/load.js'
import { compileGrants, type CompiledGrants } from './grants/compile.js'
import type { Config } from './config/schema.js'
import { loggerOptions } from './observability/logger.js'
import { checkUpstreamCredential } from './alicloud/credentials.js'

export const EXIT_CONFIG = 2

export interface ServerSettings { host: string, port: number, logLevel: string, configPath: string }

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

/** Close gracefully on SIGTERM/SIGINT within the grace period; a second signal forces exit. */
export function installSignalHandlers (app: FastifyInstance, graceMs: number, exit: (code: number) => void = (c) => process.exit(c)): void {
  let closing = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      app.log.warn({ signal }, 'second signal: exiting now')
      exit(1)
      return
    }
    closing = true
    app.log.info({ signal, graceMs }, 'shutting down: finishing in-flight requests')
    const force = setTimeout(() => {
      app.log.error('grace period over: exiting with requests still in flight')
      exit(1)
    }, graceMs)
    force.unref()
    app.close().then(() => {
      clearTimeout(force)
      app.log.info('closed')
      exit(0)
    }, (err: unknown) => {
      app.log.error({ err }, 'error while closing')
      exit(1)
    })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}

export async function startServer (config: Config, settings: Omit<ServerSettings, 'configPath'>, deps: AppDeps = {}): Promise<FastifyInstance> {
  const app = await buildApp(config, { logger: loggerOptions(settings.logLevel), env: process.env, ...deps })
  await app.listen({ host: settings.host, port: settings.port })
  return app
}

async function main (): Promise<void> {
  let settings: ServerSettings
  let config: Config
  let grants: CompiledGrants
  try {
    settings = readSettings(process.argv.slice(2), process.env)
    config = await loadConfigFile(settings.configPath, { env: process.env })
    grants = compileGrants(config)
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
    app = await startServer(config, settings, { grants, credentialReady: upstream.ready })
  } catch (err) {
    // Settings read while building (cache keys, the Redis password, a key or secret the
    // config names that cannot work) are config errors too.
    if (err instanceof ConfigError) {
      const message = err.message.startsWith('config: ') ? err.message : `config: ${err.message}`
      process.stderr.write(`sts-vending: ${message}\n`)
      process.exit(EXIT_CONFIG)
    }
    process.stderr.write(`sts-vending: cannot start: ${(err as Error).message}\n`)
    process.exit(1)
  }
  if (upstream.pending !== undefined) app.log.warn({ reason: upstream.pending }, 'upstream credential not available yet: not ready')
  installSignalHandlers(app, config.server.shutdownGraceMs)
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  void main()
}
