// Loading and validating the configuration, once, at start. A bad config is refused
// with one line that names the key and the problem; server.ts exits 2 on ConfigError.
import { readFile } from 'node:fs/promises'
import { Value } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import { ConfigSchema, REPLACED_KEYS, type Config } from './schema.js'
import { crossCheck } from './validate.js'

export class ConfigError extends Error {
  override name = 'ConfigError'
}

function jsonPointerToPath (pointer: string): string {
  if (pointer === '') return '(root)'
  return pointer.slice(1).split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p, i) => /^\d+$/.test(p) ? `[${p}]` : (i === 0 ? p : `.${p}`))
    .join('')
}

/** Validate a plain object (from a file, or a test) and fill defaults. Throws ConfigError. */
export function parseConfig (input: unknown): Config {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError('config: the document must be a mapping of keys')
  }
  const withDefaults = Value.Default(ConfigSchema, structuredClone(input))
  const first = Value.Errors(ConfigSchema, withDefaults).First()
  if (first !== undefined) {
    const path = jsonPointerToPath(first.path)
    const replacement = REPLACED_KEYS[path]
    if (replacement !== undefined) throw new ConfigError(`config: ${path} was replaced by ${replacement}`)
    const detail = first.message === 'Unexpected property' ? 'unknown key' : first.message
    throw new ConfigError(`config: ${path}: ${detail}`)
  }
  const config = withDefaults as Config
  const problem = crossCheck(config)
  if (problem !== undefined) throw new ConfigError(`config: ${problem}`)
  return config
}

/** Parse YAML (a superset of JSON) text into a Config. */
export function parseConfigText (text: string, source = 'config'): Config {
  let doc: unknown
  try {
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 })
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0]
    throw new ConfigError(`${source}: not valid YAML or JSON: ${msg}`)
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
