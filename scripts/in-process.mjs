// Loaded (node --import) into every test process of `npm run test:fast`: the fast tier
// is in-process only, so starting any child process (a server from dist/, the CLI,
// redis-server, Chromium, the benchmark) throws. A test file that starts one fails the
// fast tier loudly instead of slowing it down: it belongs in test/integration.txt.
import childProcess from 'node:child_process'
import { syncBuiltinESMExports } from 'node:module'

for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  childProcess[name] = () => {
    throw new Error(`test:fast runs in-process only, and this file starts a child process (child_process.${name}): list it in test/integration.txt`)
  }
}
// Named ESM imports of node:child_process read the patched functions too.
syncBuiltinESMExports()
