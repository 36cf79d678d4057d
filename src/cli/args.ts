// The one argument kit of the command line. Every command declares its options for
// node:util parseArgs (strict, no positionals) and a run(values, io); main.ts parses,
// answers --help/-h, and turns a UsageError into one line and exit 2. Commands never
// exit the process and never print stack traces: they write to the streams they are
// given and return an exit code.
import { open } from 'node:fs/promises'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { ACTIONS, type Action } from '../config/schema.js'
import { canonicalActions } from '../policy/build.js'
import type { CredentialLike } from '../alicloud/sdk-base.js'

export const PROGRAM = 'sts-vending'

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
/** A usage error, or a command that cannot run as installed (a missing optional package). */
export const EXIT_USAGE = 2

export interface Writable { write: (chunk: string) => unknown }

export interface CliIo {
  stdout: Writable
  stderr: Writable
  /** The environment a command may read (verify's STS_VENDING_TOKEN). Default: none. */
  env?: Record<string, string | undefined>
  /** What RAM calls are signed with. Default: the SDK's default credential chain (env, profile, RRSA, instance role). */
  credential?: CredentialLike
}

/** Wrong or missing arguments: main prints the message and the help hint, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** An optional package a command needs is not installed: one line, exit 2. */
export class MissingPackage extends Error {
  override name = 'MissingPackage'
  constructor (readonly pkg: string) {
    super(`needs the optional package ${pkg} (npm install ${pkg})`)
  }
}

/** A failure the command has put in words already: main prints it as one line, exit 1 (or the code given). */
export class Failure extends Error {
  override name = 'Failure'
  constructor (message: string, readonly exitCode: number = EXIT_FAILURE) {
    super(message)
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>

const HELP = { help: { type: 'boolean', short: 'h' } } as const satisfies Options

export type Values<O extends Options> =
  ReturnType<typeof parseArgs<{ args: string[], options: O & typeof HELP, strict: true, allowPositionals: false }>>['values']

export interface Command<O extends Options = Options> {
  /** The whole --help text, starting with `Usage: sts-vending <name>`. */
  help: string
  options: O
  // A method, so that any command fits the table in main.ts.
  run (values: Values<O>, io: CliIo): Promise<number>
}

/** Keeps the option types of one command's run() tied to its options. */
export function defineCommand<O extends Options> (command: Command<O>): Command<O> {
  return command
}

export function parse<O extends Options> (args: string[], options: O): Values<O> {
  try {
    return parseArgs({ args, options: { ...options, ...HELP }, strict: true, allowPositionals: false }).values as Values<O>
  } catch (err) {
    throw new UsageError(((err as Error).message.split('\n')[0] ?? 'invalid arguments').replace(/\. To specify a positional.*$/, ''))
  }
}

export function required (value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`--${flag} is required`)
  return value
}

export function parseActions (value: string | undefined): Action[] {
  const list = (value ?? 'list,read,write').split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const a of list) {
    if (!(ACTIONS as readonly string[]).includes(a)) throw new UsageError(`--actions: unknown action "${a}" (use ${ACTIONS.join(', ')})`)
  }
  if (list.length === 0) throw new UsageError('--actions must name at least one action')
  return canonicalActions(list as Action[])
}

export function parseInteger (value: string, flag: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new UsageError(`--${flag} must be a whole number of seconds`)
  return Number(value)
}

/**
 * The service's POST /credentials URL from what an operator gives: the base URL
 * (`https://sts.example`, `https://gw.example/sts/`) or the credentials URL itself
 * (`…/credentials`). verify and sidecar both take either.
 */
export function credentialsUrl (value: string, flag = 'url'): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`--${flag} is not a URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`--${flag} must be http(s)`)
  if (url.username !== '' || url.password !== '') throw new UsageError(`--${flag} must not carry a user or password`)
  if (url.search !== '' || url.hash !== '') throw new UsageError(`--${flag} must not carry a query or fragment`)
  const path = url.pathname.replace(/\/+$/, '')
  url.pathname = path.endsWith('/credentials') ? path : `${path}/credentials`
  return url
}

/**
 * Imports a package that only some commands need (it is an optional dependency, left out
 * of the server's image). When the package itself is not installed this throws
 * MissingPackage; any other failure (a broken install) is passed on.
 */
/**
 * At most `limit + 1` bytes of a file (enough to tell that it is too large), read in as
 * many reads as it takes: a pipe or process substitution may deliver it in pieces. Fails
 * with the file system's error (its `code` says why), never with the contents.
 */
export async function readFileHead (path: string, limit: number): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const buffer = Buffer.alloc(limit + 1)
    let length = 0
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }
    return buffer.subarray(0, length)
  } finally {
    await handle.close()
  }
}

export async function loadOptional<T> (pkg: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (err) {
    // Node's resolver says "Cannot find package '<name>' imported from …" (code
    // ERR_MODULE_NOT_FOUND; some TypeScript loaders drop the code, never the words).
    const e = err as { code?: unknown, message?: unknown }
    const code = e.code === undefined || e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND'
    if (code && typeof e.message === 'string' &&
        (e.message.startsWith(`Cannot find package '${pkg}'`) || e.message.startsWith(`Cannot find module '${pkg}'`))) {
      throw new MissingPackage(pkg)
    }
    throw err
  }
}
