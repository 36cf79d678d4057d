// Node flags for a child process that runs this project's TypeScript: tsx, and the
// source-map hook every test process loads (package.json, tap's node-arg), by absolute
// path so that a child in another directory finds it. Every node child of the suite
// writes coverage; one without the hook keeps tsx's `"sourcesContent": [null]`, so its
// copy of each file is a different script from the suite's, and c8, which reads one
// source map per file for the merged counts of all of them, dropped or garbled whole
// files depending on which map it read last (functions at 88 % and a branch figure under
// its threshold from one run to the next, for the same code).
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export const TSX_NODE_ARGS: readonly string[] = ['--import', 'tsx', '--import', pathToFileURL(join(ROOT, 'scripts/tsx-source-maps.mjs')).href]
