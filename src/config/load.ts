// Loading and validating the configuration, once, at start. A bad config is refused
// with one line that names the key and the problem in plain words; server.ts exits 2
// on ConfigError. What the config names in the environment, and the grant rules, are
// checked next by prepare.ts, before listening.
import { readFile } from 'node:fs/promises'
import { Value } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import { ConfigSchema, REPLACED_KEYS, type Config } from './schema.js'
import { ConfigError } from './error.js'
import { explain, pathOf } from './explain.js'
import { checkIssuers, redisProblem } from './validate.js'

/** Validate a plain object (from a file, or a test) and fill defaults. Throws ConfigError. */
export function parseConfig (input: unknown): Config {
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
  const issuers = checkIssuers(config) ?? redisProblem(config)
  if (issuers !== undefined) throw new ConfigError(`config: ${issuers}`)
  return config
}

/** Parse YAML (a superset of JSON) text into a Config. */
export function parseConfigText (text: string, source = 'config'): Config {
  let doc: unknown
  try {
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 })
  } catch (err) {
    // The parser's first line ends with a colon before its source excerpt: one line, whole.
    const msg = ((err as Error).message.split('\n')[0] ?? '').replace(/[\s:]+$/, '')
    throw new ConfigError(`${source}: not valid YAML or JSON: ${msg === '' ? 'unreadable' : msg}`)
  }
  return parseConfig(doc)
}

export async function loadConfigFile (path: string): Promise<Config> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`config: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unknown error'}`)
  }
  return parseConfigText(text, path)
}
