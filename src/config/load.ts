// Loading and validating the configuration, once, at start. A bad config is refused
// with one line that names the key and the problem in plain words; server.ts exits 2
// on ConfigError. The grant rules run next, in grants/compile.ts, before listening.
import { readFile } from 'node:fs/promises'
import { Value } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import { ConfigSchema, REPLACED_KEYS, type Config } from './schema.js'
import { ConfigError } from './error.js'
import { explain, pathOf } from './explain.js'
import { checkEnvironment, checkIssuers, redisProblem } from './validate.js'

export { ConfigError } from './error.js'

export interface LoadOptions {
  /** The process environment: when given, every `secretEnv` variable must be set. */
  env?: Readonly<Record<string, string | undefined>>
}

/** Validate a plain object (from a file, or a test) and fill defaults. Throws ConfigError. */
export function parseConfig (input: unknown, options: LoadOptions = {}): Config {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError('config: the document must be a mapping of keys')
  }
  const withDefaults = Value.Default(ConfigSchema, structuredClone(input))
  const errors = [...Value.Errors(ConfigSchema, withDefaults)]
  // A key an earlier release knew is named with its replacement, not as a mere typo.
  for (const e of errors) {
    const replacement = REPLACED_KEYS[pathOf(e.path)]
    if (replacement !== undefined) throw new ConfigError(`config: ${pathOf(e.path)} was replaced by ${replacement}`)
  }
  const problem = explain(errors, input)
  if (problem !== undefined) throw new ConfigError(`config: ${problem}`)
  const config = withDefaults as Config
  const issuers = checkIssuers(config) ?? redisProblem(config) ?? (options.env !== undefined ? checkEnvironment(config, options.env) : undefined)
  if (issuers !== undefined) throw new ConfigError(`config: ${issuers}`)
  return config
}

/** Parse YAML (a superset of JSON) text into a Config. */
export function parseConfigText (text: string, source = 'config', options: LoadOptions = {}): Config {
  let doc: unknown
  try {
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 })
  } catch (err) {
    // The parser's first line ends with a colon before its source excerpt: one line, whole.
    const msg = ((err as Error).message.split('\n')[0] ?? '').replace(/[\s:]+$/, '')
    throw new ConfigError(`${source}: not valid YAML or JSON: ${msg === '' ? 'unreadable' : msg}`)
  }
  return parseConfig(doc, options)
}

export async function loadConfigFile (path: string, options: LoadOptions = {}): Promise<Config> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`config: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unknown error'}`)
  }
  return parseConfigText(text, path, options)
}
