// The package's own files, found from wherever this module runs: two levels below the
// package root in src/ (under tsx) and dist/, one level in the bundled dist/server.js
// (scripts/bundle-server.mjs); /app in the image. The root is the nearest directory
// above holding package.json. The package's version is read from it for the start-up
// line, --version and stsv_build_info.
import { existsSync, readFileSync } from 'node:fs'

let root: URL | undefined

/** `name` in the package root (package.json, openapi.yaml). */
export function packageFile (name: string): URL {
  if (root === undefined) {
    let dir = new URL('./', import.meta.url)
    for (;;) {
      if (existsSync(new URL('package.json', dir))) break
      const up = new URL('../', dir)
      // Nothing above holds one (never so in a checkout or the image): where it should be.
      if (up.href === dir.href) {
        dir = new URL('../../', import.meta.url)
        break
      }
      dir = up
    }
    root = dir
  }
  return new URL(name, root)
}

let cached: string | undefined

export function packageVersion (): string {
  if (cached !== undefined) return cached
  try {
    const pkg = JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version?: unknown }
    cached = typeof pkg.version === 'string' ? pkg.version : 'unknown'
  } catch {
    cached = 'unknown'
  }
  return cached
}
