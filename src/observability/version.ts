// The package's version, from the package.json beside dist/ (and src/, under tsx):
// for the start-up line, --version and stsv_build_info.
import { readFileSync } from 'node:fs'

let cached: string | undefined

export function packageVersion (): string {
  if (cached !== undefined) return cached
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
    cached = typeof pkg.version === 'string' ? pkg.version : 'unknown'
  } catch {
    cached = 'unknown'
  }
  return cached
}
