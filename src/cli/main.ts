// The operator's command line: `sts-vending <command> [options]`. The table below is
// the only list of commands; each one lives in its own module under commands/ and is
// imported only when it runs, so `sidecar` never loads the RAM SDK and `--help` loads
// nothing but the command asked about. runCli() never exits the process and never
// throws: it writes to the streams it is given and returns the exit code (0 ok,
// 1 failure, 2 usage error or missing optional package). Errors are one line, without
// stack traces or secrets.
import { readFile } from 'node:fs/promises'
import { closest, distance } from 'fastest-levenshtein'
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Failure, MissingPackage, PROGRAM, UsageError, parse, type CliIo, type Command } from './args.js'

interface Entry {
  summary: string
  load: () => Promise<{ command: Command }>
}

export const commands: Record<string, Entry> = {
  provision: { summary: 'create the RAM role and policies for one OSS directory and RAM user', load: async () => await import('./commands/provision.js') },
  'provision-rrsa': { summary: 'create the service\'s own RAM role for RRSA on ACK, allowed to assume the grant roles only', load: async () => await import('./commands/provision-rrsa.js') },
  policy: { summary: 'print the OSS permission policy (JSON) for a directory', load: async () => await import('./commands/policy.js') },
  verify: { summary: 'check with real credentials that a caller\'s directory works and nothing outside does', load: async () => await import('./commands/verify.js') },
  'check-config': { summary: 'check a config file (and the environment it names) exactly as the server does at start, without starting', load: async () => await import('./commands/check-config.js') },
  deny: { summary: 'deny one caller on every replica of the fleet (through its Redis), or --list the denied', load: async () => await import('./commands/deny.js') },
  allow: { summary: 'remove a caller\'s fleet-wide deny', load: async () => ({ command: (await import('./commands/deny.js')).allow }) },
  sidecar: { summary: 'serve ALIBABA_CLOUD_CREDENTIALS_URI on loopback for a pod, using its service-account token', load: async () => await import('./commands/sidecar.js') }
}

function mainHelp (): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length))
  return `Usage: ${PROGRAM} <command> [options]\n\nCommands:\n` +
    Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`).join('\n') +
    `\n\nRun '${PROGRAM} <command> --help' for a command's options, '${PROGRAM} --version' for the version.\n`
}

/**
 * The command a misspelt name most likely meant: the closest by edit distance, when it
 * is close enough to be a typo (a third of the name's length, at least 2) rather than
 * another word.
 */
export function nearestCommand (name: string): string | undefined {
  const names = Object.keys(commands)
  const lower = name.toLowerCase()
  const best = closest(lower, names)
  return distance(lower, best) <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined
}

/** The version in package.json, one directory above both src/cli/ and dist/cli/. */
export async function packageVersion (): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version')
  return pkg.version
}

/** A failure nobody foresaw: its first line only, bounded (commands sanitise what they pass on). */
function unexpected (err: unknown): string {
  const text = err instanceof Error ? (err.message.split('\n')[0] ?? '').slice(0, 200) : ''
  return `unexpected failure: ${text === '' ? 'unknown error' : text}`
}

export async function runCli (argv: string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(mainHelp())
    return name === undefined ? EXIT_USAGE : EXIT_OK
  }
  if (name === '--version') {
    io.stdout.write(`${await packageVersion()}\n`)
    return EXIT_OK
  }
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (entry === undefined) {
    const guess = nearestCommand(name)
    const hint = guess !== undefined ? `; did you mean "${guess}"?` : ''
    io.stderr.write(`${PROGRAM}: unknown command "${name}"${hint} (commands: ${Object.keys(commands).join(', ')})\n`)
    return EXIT_USAGE
  }
  try {
    const { command } = await entry.load()
    const values = parse(args, command.options)
    if (values.help === true) {
      io.stdout.write(command.help)
      return EXIT_OK
    }
    return await command.run(values, io)
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${PROGRAM} ${name}: ${err.message} (see '${PROGRAM} ${name} --help')\n`)
      return EXIT_USAGE
    }
    if (err instanceof Failure || err instanceof MissingPackage) {
      io.stderr.write(`${PROGRAM} ${name}: ${err.message}\n`)
      return err instanceof Failure ? err.exitCode : EXIT_USAGE
    }
    io.stderr.write(`${PROGRAM} ${name}: ${unexpected(err)}\n`)
    return EXIT_FAILURE
  }
}
