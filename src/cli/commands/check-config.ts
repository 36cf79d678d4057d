// `sts-vending check-config`: exactly the validation the server runs at start (schema,
// grant rules, issuer keys, the environment variables the config names) without
// listening or calling anything, so that a config that would crash-loop every new pod
// is refused before deploy. A problem is the server's own one line and exit 2.
import { loadConfigFile } from '../../config/load.js'
import { ConfigError } from '../../config/error.js'
import type { Config } from '../../config/schema.js'
import { checkWithoutEnvironment, prepare } from '../../prepare.js'
import { PROGRAM, defineCommand, type Options } from '../args.js'

const help = `Usage: ${PROGRAM} check-config [--config <file>] [--no-env]

Runs the checks the server runs at start, without listening or calling anything:
the schema, every grant rule, the issuers' keys and the environment variables the
config names (secretEnv, redis.usernameEnv/passwordEnv/sentinelPasswordEnv,
cache.encryptionKeysEnv).

  -c, --config <file>  the config file (default: $STS_VENDING_CONFIG)
  --no-env             skip the environment variables (a CI job without the secrets)
  -h, --help           show this help

Exit codes: 0 the server would start with it, 2 it would not (the server's own line).
Values of secrets are never printed.
`

const options = {
  config: { type: 'string', short: 'c' },
  'no-env': { type: 'boolean' }
} as const satisfies Options

/** A few lines a reviewer can read: who may call, and what each grant hands out. */
export function summary (config: Config, path: string, withEnv: boolean): string {
  const lines = [`${path}: ok${withEnv ? '' : ' (environment not checked: --no-env)'}`]
  lines.push(`issuers: ${config.issuers.map((i) => `${i.name} (${i.jwksUri !== undefined ? 'jwksUri' : i.publicKey !== undefined ? 'publicKey' : `secretEnv ${i.secretEnv ?? ''}`})`).join(', ')}`)
  lines.push('grants:')
  for (const g of config.grants) {
    const signing = g.signing !== undefined ? `; signs uploads up to ${g.signing.maxBytes} bytes for ${g.signing.expiresSeconds} s` : ''
    lines.push(`  ${g.name}: oss://${g.bucket}/${g.prefix} [${g.actions.join(', ')}] for ${g.issuers.join(', ')}, ${g.durationSeconds} s${signing}`)
  }
  const r = config.redis
  lines.push(`cache: ${r === undefined ? 'memory' : `memory+redis (${r.sentinels !== undefined ? 'sentinel' : r.clusterNodes !== undefined ? 'cluster' : 'standalone'})`}`)
  return lines.join('\n') + '\n'
}

export const command = defineCommand({
  help,
  options,
  async run (v, io) {
    const path = v.config ?? io.env?.STS_VENDING_CONFIG
    const withEnv = v['no-env'] !== true
    try {
      if (path === undefined || path === '') throw new ConfigError('config: set STS_VENDING_CONFIG or pass --config <file>')
      const config = await loadConfigFile(path)
      if (withEnv) prepare(config, io.env ?? {})
      else checkWithoutEnvironment(config)
      io.stdout.write(summary(config, path, withEnv))
      return 0
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      // The very line the server prints before exiting 2.
      io.stderr.write(`sts-vending: ${err.message}\n`)
      return 2
    }
  }
})
