// The package's own files are found from the package root, wherever the module runs:
// src/ here, dist/ and the bundled dist/server.js (test/server.test.ts runs that one).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { packageFile, packageVersion } from '../../src/observability/version.js'

const ROOT = new URL('../../', import.meta.url)

t.test('packageFile names a file in the package root', async (t) => {
  t.equal(packageFile('package.json').href, new URL('package.json', ROOT).href)
  t.equal(packageFile('openapi.yaml').href, new URL('openapi.yaml', ROOT).href)
})

t.test('packageVersion is package.json\'s version', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { version: string }
  t.equal(packageVersion(), pkg.version)
})
