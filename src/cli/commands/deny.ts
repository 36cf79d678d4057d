// `sts-vending deny` and `allow`: the fleet-wide deny list (redis/deny.ts). A deny
// is written to the fleet's Redis, and within a second or two every replica refuses
// the caller on every route, cached credentials included. It cannot revoke what was
// already issued: STS credentials stay valid until they expire (docs/deploy.md gives
// the RAM-side step that cuts every session of a role). Without `redis` in the config
// there is no fleet to tell: exit 2.
import { loadConfigFile } from '../../config/load.js'
import { ConfigError } from '../../config/error.js'
import type { Config } from '../../config/schema.js'
import { prepare } from '../../prepare.js'
import { MAX_DENY_MS, MIN_DENY_MS } from '../../redis/deny.js'
import { PROGRAM, Failure, UsageError, defineCommand, required, type CliIo, type Options } from '../args.js'

const denyHelp = `Usage: ${PROGRAM} deny --config <file> --issuer <name> --subject <sub> [--for 12h] [--reason <text>]
       ${PROGRAM} deny --config <file> --list

Denies one caller on every replica of the fleet, within seconds: every caller route
answers 403 STS_VENDING_CALLER_DENIED, cached credentials included, and nothing is
signed for it. Credentials already issued stay valid until they expire (see
docs/deploy.md for the RAM-side step). The entry ends by itself.

  -c, --config <file>  the service's config (its redis section and the environment it names)
  --issuer <name>      the issuer's name in the config
  --subject <sub>      the caller's sub claim
  --for <duration>     how long: 1m to 30d, as 90s, 15m, 12h or 7d (default 12h)
  --reason <text>      kept with the entry (encrypted), shown by --list
  --list               list the entries in force
  -h, --help           show this help

Exit codes: 0 done, 1 Redis unreachable, 2 usage or config error (no redis in the config).
`

const allowHelp = `Usage: ${PROGRAM} allow --config <file> --issuer <name> --subject <sub>

Removes a caller's deny entry: every replica serves it again within seconds.

  -c, --config <file>  the service's config
  --issuer <name>      the issuer's name in the config
  --subject <sub>      the caller's sub claim
  -h, --help           show this help

Exit codes: 0 done, 1 Redis unreachable, 2 usage or config error (no redis in the config).
`

const common = {
  config: { type: 'string', short: 'c' },
  issuer: { type: 'string' },
  subject: { type: 'string' }
} as const satisfies Options

const denyOptions = { ...common, for: { type: 'string' }, reason: { type: 'string' }, list: { type: 'boolean' } } as const satisfies Options

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export function parseFor (text: string): number {
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(text)
  const ms = m === null ? NaN : Number(m[1]) * (UNITS[m[2] as string] as number)
  if (!(ms >= MIN_DENY_MS && ms <= MAX_DENY_MS)) throw new UsageError(`--for: from 1m to 30d, as 90s, 15m, 12h or 7d; got "${text}"`)
  return ms
}

interface Fleet { config: Config, settings: NonNullable<ReturnType<typeof prepare>['fleet']> }

async function fleetOf (path: string | undefined, io: CliIo): Promise<Fleet> {
  try {
    if (path === undefined || path === '') throw new ConfigError('config: set STS_VENDING_CONFIG or pass --config <file>')
    const config = await loadConfigFile(path)
    if (config.redis === undefined) {
      throw new Failure('a deny needs the fleet\'s Redis: this config has no redis section (a single replica is stopped by its issuer: revoke the caller there)', 2)
    }
    const prepared = prepare(config, io.env ?? {})
    if (prepared.fleet === undefined) throw new Failure('a deny needs the fleet\'s Redis', 2)
    return { config, settings: prepared.fleet }
  } catch (err) {
    if (err instanceof ConfigError) throw new Failure(err.message, 2)
    throw err
  }
}

function callerOf (config: Config, v: { issuer?: string | undefined, subject?: string | undefined }): { issuer: string, subject: string } {
  const issuer = required(v.issuer, 'issuer')
  const subject = required(v.subject, 'subject')
  if (!config.issuers.some((i) => i.name === issuer)) {
    throw new Failure(`--issuer: the config has no issuer named "${issuer}" (issuers: ${config.issuers.map((i) => i.name).join(', ')})`, 2)
  }
  return { issuer, subject }
}

async function withRedis<T> (fleet: Fleet, use: (parts: { redis: import('../../redis/connection.js').RedisClient, cipher: import('../../redis/entries.js').EntryCipher }) => Promise<T>): Promise<T> {
  const { createRedis, firstConnection, redisStatus } = await import('../../redis/connection.js')
  const { createEntryCipher } = await import('../../redis/entries.js')
  const redis = createRedis({ settings: fleet.settings })
  try {
    if (!await firstConnection(redis, 5000)) throw new Failure(`Redis is unreachable (${redisStatus(redis).cause ?? 'no connection'}): nothing was changed`)
    return await use({ redis, cipher: createEntryCipher(fleet.settings.keys) })
  } finally {
    redis.disconnect()
  }
}

export const command = defineCommand({
  help: denyHelp,
  options: denyOptions,
  async run (v, io) {
    const fleet = await fleetOf(v.config ?? io.env?.STS_VENDING_CONFIG, io)
    const deny = await import('../../redis/deny.js')
    if (v.list === true) {
      const entries = await withRedis(fleet, async ({ redis, cipher }) => await deny.listDenied(redis, cipher, Date.now()))
      if (entries.length === 0) io.stdout.write('no caller is denied\n')
      for (const e of entries) io.stdout.write(`${e.issuer} ${JSON.stringify(e.subject)} until ${new Date(e.until).toISOString()}${e.reason !== undefined ? ` (${e.reason})` : ''}\n`)
      return 0
    }
    const caller = callerOf(fleet.config, v)
    const until = Date.now() + parseFor(v.for ?? '12h')
    const reason = v.reason !== undefined ? v.reason.slice(0, 200) : undefined
    await withRedis(fleet, async ({ redis, cipher }) => { await deny.denyCaller(redis, cipher, fleet.settings.keyPrefix, { ...caller, until, ...(reason !== undefined ? { reason } : {}) }) })
    io.stdout.write(`denied ${caller.issuer} ${JSON.stringify(caller.subject)} on every replica until ${new Date(until).toISOString()}; credentials already issued stay valid until they expire\n`)
    return 0
  }
})

export const allow = defineCommand({
  help: allowHelp,
  options: common,
  async run (v, io) {
    const fleet = await fleetOf(v.config ?? io.env?.STS_VENDING_CONFIG, io)
    const caller = callerOf(fleet.config, v)
    const deny = await import('../../redis/deny.js')
    const removed = await withRedis(fleet, async ({ redis, cipher }) => await deny.allowCaller(redis, cipher, fleet.settings.keyPrefix, caller.issuer, caller.subject))
    io.stdout.write(removed ? `allowed ${caller.issuer} ${JSON.stringify(caller.subject)} again\n` : `${caller.issuer} ${JSON.stringify(caller.subject)} was not denied\n`)
    return 0
  }
})
