// `npm run build`'s second step: dist/server.js, the process shell tsc emitted, bundled
// with everything it imports into one module, so that start-up reads one file instead
// of resolving and loading some 800 (issue 25: start-up to a warm /readyz under 1 s;
// on this 2-core machine the bundle is ready in about 0.55 s where the module tree took
// 0.85 s). What the server imports on demand (the STS SDK, the Redis fleet's modules,
// yaml for the JSON form of openapi.yaml) is split into chunks under dist/server-chunks/,
// loaded only when imported. The rest of dist/ stays as tsc emitted it, for the CLI and
// for importers of single modules (tests, the bench). Left in node_modules, loaded as
// before: what the server requires through createRequire at run time (the route schema
// compilers, http/lazy-compilers.ts), and ioredis and undici, which read their own
// files relative to their modules (ioredis its package.json for CLIENT SETINFO and
// its error stacks) and are only imported on demand (a Redis fleet; JWKS, the ECS
// metadata probe), so start-up does not load them either way.
//
// Source maps chain through tsc's maps back to src/ and keep only src/: the bundled
// dependencies' code maps to nothing. Stack traces (with --enable-source-maps) name the
// TypeScript sources, and the test runner's coverage, which drops a whole file when any
// of its sources lies in node_modules, still counts what the shell runs in src/.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import { build } from 'esbuild'
import { decode, encode } from '@jridgewell/sourcemap-codec'

const ROOT = new URL('../', import.meta.url).pathname
const DIST = new URL('../dist/', import.meta.url)
const BANNER = [
  "import { createRequire as __bundleRequire } from 'node:module';",
  "import { fileURLToPath as __bundlePath } from 'node:url';",
  "import { dirname as __bundleDirname } from 'node:path';",
  'const require = __bundleRequire(import.meta.url);',
  'const __filename = __bundlePath(import.meta.url);',
  'const __dirname = __bundleDirname(__filename);'
].join(' ')

// The bundle replaces tsc's dist/server.js: bundling it again would declare everything twice.
if ((await readFile(new URL('server.js', DIST), 'utf8')).startsWith(BANNER)) {
  console.error('dist/server.js is already bundled: run `npm run build`, which runs tsc first')
  process.exit(1)
}

const { metafile } = await build({
  // The metafile names its outputs relative to this directory.
  absWorkingDir: ROOT,
  entryPoints: [new URL('server.js', DIST).pathname],
  outdir: DIST.pathname,
  chunkNames: 'server-chunks/[name]-[hash]',
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  metafile: true,
  external: ['ioredis', 'undici'],
  // CommonJS packages inside an ES module bundle call require() for Node's built-ins,
  // and some name __dirname or __filename on paths the server never takes (pino's
  // transports): they are defined, as the bundle file's own, rather than a ReferenceError.
  banner: { js: BANNER },
  logLevel: 'warning'
})

/** The map without the sources under node_modules/: their segments keep their column and lose their source. */
function ownSourcesOnly (map) {
  const kept = []
  const index = map.sources.map((source, i) => source.includes('node_modules/') ? -1 : kept.push(i) - 1)
  const lines = decode(map.mappings).map((line) => line.map((segment) => {
    if (segment.length === 1) return segment
    const to = index[segment[1]]
    return to === -1 ? [segment[0]] : [segment[0], to, ...segment.slice(2)]
  }))
  return {
    ...map,
    sources: kept.map((i) => map.sources[i]),
    ...(map.sourcesContent !== undefined ? { sourcesContent: kept.map((i) => map.sourcesContent[i]) } : {}),
    mappings: encode(lines)
  }
}

const outputs = Object.keys(metafile.outputs)
const maps = outputs.filter((file) => file.endsWith('.js.map'))
if (maps.length === 0) throw new Error('the bundle wrote no source map')
for (const file of maps) {
  const path = resolve(ROOT, file)
  await writeFile(path, JSON.stringify(ownSourcesOnly(JSON.parse(await readFile(path, 'utf8')))))
}
// Chunks of an earlier build are never imported again: removed.
const current = new Set(outputs.map((file) => basename(file)))
for (const name of await readdir(new URL('server-chunks/', DIST)).catch(() => [])) {
  if (!current.has(name)) await rm(new URL(`server-chunks/${name}`, DIST))
}
