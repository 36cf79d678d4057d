#!/usr/bin/env node
// Keeps helm/sts-vending/values.schema.json's `config` property equal to the
// service's own config schema (src/config/schema.ts, compiled to dist/), so a
// wrong `config:` value fails `helm install` with the same rule the service
// would apply at start. The service fills defaults before validating; Helm
// validates as written, so every property with a default is made optional.
//
//   node scripts/chart-config-schema.mjs           check for drift (exit 1)
//   node scripts/chart-config-schema.mjs --write   update values.schema.json
//   --from <schema.js>                             default dist/config/schema.js
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { resolve, dirname } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isDeepStrictEqual } from 'node:util'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const VALUES_SCHEMA = resolve(ROOT, 'helm/sts-vending/values.schema.json')

/** The service's TypeBox schema as a Helm values (sub)schema. */
export function toValuesSchema (schema) {
  const walk = (node) => {
    if (Array.isArray(node)) return node.map(walk)
    if (node === null || typeof node !== 'object') return node
    const out = {}
    for (const [k, v] of Object.entries(node)) out[k] = k === 'default' ? v : walk(v)
    if (out.type === 'object' && out.properties && Array.isArray(out.required)) {
      out.required = out.required.filter((p) => !('default' in out.properties[p]))
      if (out.required.length === 0) delete out.required
    }
    return out
  }
  return walk(JSON.parse(JSON.stringify(schema)))
}

export async function loadServiceSchema (from = resolve(ROOT, 'dist/config/schema.js')) {
  if (!existsSync(from)) return undefined
  const mod = await import(pathToFileURL(from).href)
  return toValuesSchema(mod.ConfigSchema)
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const fromIdx = args.indexOf('--from')
  const from = fromIdx >= 0 ? resolve(args[fromIdx + 1]) : undefined
  const want = await loadServiceSchema(from)
  if (!want) {
    console.log('SKIP chart config schema drift check: dist/config/schema.js not built (npm run build)')
    process.exit(0)
  }
  const values = JSON.parse(readFileSync(VALUES_SCHEMA, 'utf8'))
  if (args.includes('--write')) {
    values.properties.config = { description: 'The service configuration (schema generated from src/config/schema.ts by scripts/chart-config-schema.mjs).', ...want }
    writeFileSync(VALUES_SCHEMA, JSON.stringify(values, null, 2) + '\n')
    console.log(`wrote ${VALUES_SCHEMA}`)
  } else {
    const { description, ...have } = values.properties.config ?? {}
    if (!isDeepStrictEqual(have, want)) {
      console.log('FAIL values.schema.json `config` differs from src/config/schema.ts; run: npm run build && node scripts/chart-config-schema.mjs --write')
      process.exit(1)
    }
    console.log('PASS values.schema.json `config` matches the service config schema')
  }
}
