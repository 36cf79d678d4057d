// npm run test:fast | test:integration: one tap run over one tier. test/integration.txt
// names the files that start child processes (the built server and CLI, redis-server,
// Chromium, the benchmark); every other file matched by package.json's tap.include is
// the fast tier, which runs with scripts/in-process.mjs so that a file which starts a
// process and is not listed fails there. `npm test` ignores the tiers: one tap run over
// every file, with the coverage gate.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const [tier, ...rest] = process.argv.slice(2)
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
const listed = readFileSync(new URL('../test/integration.txt', import.meta.url), 'utf8')
  .split('\n').map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '')
const missing = listed.filter((f) => !existsSync(new URL(`../${f}`, import.meta.url)))
if (missing.length > 0) {
  console.error(`test/integration.txt names files that do not exist: ${missing.join(', ')}`)
  process.exit(1)
}

let args
if (tier === 'fast') {
  // tap's own default exclude, which an --exclude replaces.
  const exclude = ['**/@(fixture*(s)|dist)/**', ...listed]
  // --node-arg on the command line replaces the configured list: repeat it.
  const nodeArgs = [...(pkg.tap['node-arg'] ?? []), '--import=./scripts/in-process.mjs']
  // Three at once: the in-process files wait on loopback I/O enough that a third keeps
  // both cores busy (83 s against 90 s with two, on this 2-core machine).
  args = ['--disable-coverage', '--jobs=3', ...nodeArgs.map((a) => `--node-arg=${a}`), ...exclude.map((f) => `--exclude=${f}`), ...rest]
} else if (tier === 'integration') {
  args = ['--disable-coverage', ...rest, ...listed]
} else {
  console.error('usage: node scripts/test-tier.mjs fast|integration [tap options]')
  process.exit(2)
}
const r = spawnSync(join(root, 'node_modules/.bin/tap'), args, { cwd: root, stdio: 'inherit' })
process.exit(r.status ?? 1)
