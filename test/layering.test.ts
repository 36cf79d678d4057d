// Layers run one way (docs/architecture.md): an import from a lower layer to a higher
// one is a design question, not a convenience, so it fails here, and so does any import
// loop between files of src/ (within one layer too). src/ never imports devkit/, test/
// or bench/. Imports are read with TypeScript's own pre-processor (static, re-exports,
// type-only and dynamic import() alike): a type-only loop is still two modules that
// cannot be understood one without the other.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, posix, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SRC = join(ROOT, 'src')

/**
 * Bottom to top. A folder (or a top-level file) of src/ may import its own rank and
 * below. New folders must be placed here: an unplaced file fails the test.
 */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ['core'], // domain words only
  ['config', 'errors.ts'], // the one schema and loading; the one error registry
  ['policy', 'grants'], // the pure core: session policies, grant compilation and resolution
  ['auth', 'cache', 'alicloud'], // adapters: tokens and keys, the in-process cache, the SDK
  ['redis'], // shared state: the second cache level, the fleet's budgets, built on cache/ and alicloud/ types
  ['credential-source.ts', 'vend.ts', 'sign.ts', 'callback.ts', 'prepare.ts'], // the use cases, the one source of credentials, the one preparation step
  ['http', 'observability'], // the HTTP surface; metrics, audit, logger
  ['app.ts'], // the composition root
  ['server.ts', 'cli.ts', 'cli'] // process shells and CLI commands
]

/** Back arrows allowed by name, each with its way out (none today). */
const KNOWN: ReadonlyMap<string, string> = new Map()

function unitOf (file: string): string {
  const [first = ''] = file.split('/')
  return first
}

function rankOf (file: string): number | undefined {
  const unit = unitOf(file)
  const i = LAYERS.findIndex((names) => names.includes(unit))
  return i === -1 ? undefined : i
}

/** Every problem in a graph of src-relative files and the specifiers they import. */
function violations (graph: ReadonlyMap<string, readonly string[]>): string[] {
  const out: string[] = []
  for (const [file, specifiers] of graph) {
    const from = rankOf(file)
    if (from === undefined) {
      out.push(`${file}: not in any layer; place "${unitOf(file)}" in LAYERS (test/layering.test.ts) and docs/architecture.md`)
      continue
    }
    for (const spec of specifiers) {
      if (!spec.startsWith('.')) continue // packages and node: builtins
      const target = resolveSpec(file, spec)
      if (target.startsWith('../')) {
        out.push(`${file} -> ${spec}: src/ imports from outside src/ (${target.slice(3)})`)
        continue
      }
      const to = rankOf(target)
      if (to === undefined || to <= from) continue
      const arrow = `${file} -> ${target}`
      if (KNOWN.has(arrow)) continue
      out.push(`${arrow}: "${unitOf(file)}" (layer ${from}) imports "${unitOf(target)}" (layer ${to}), a higher layer`)
    }
  }
  return out
}

function resolveSpec (file: string, spec: string): string {
  return posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts')
}

/**
 * Every import loop in a graph of src-relative files, each as the files around it
 * (`a.ts -> b.ts -> a.ts`), found by a depth-first walk; each loop is named once, from
 * its first file in walk order.
 */
function cycles (graph: ReadonlyMap<string, readonly string[]>): string[] {
  const edges = new Map<string, string[]>()
  for (const [file, specs] of graph) {
    edges.set(file, [...new Set(specs.filter((s) => s.startsWith('.')).map((s) => resolveSpec(file, s)))].filter((to) => graph.has(to)))
  }
  const out: string[] = []
  const done = new Set<string>()
  const path: string[] = []
  const onPath = new Set<string>()
  function walk (file: string): void {
    path.push(file)
    onPath.add(file)
    for (const to of edges.get(file) ?? []) {
      if (onPath.has(to)) out.push([...path.slice(path.indexOf(to)), to].join(' -> '))
      else if (!done.has(to)) walk(to)
    }
    path.pop()
    onPath.delete(file)
    done.add(file)
  }
  for (const file of [...edges.keys()].sort()) if (!done.has(file)) walk(file)
  return out
}

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(path)
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : []
  })
}

function srcGraph (): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const path of sourceFiles(SRC)) {
    const info = ts.preProcessFile(readFileSync(path, 'utf8'), true, true)
    graph.set(relative(SRC, path).split(sep).join('/'), info.importedFiles.map((f) => f.fileName))
  }
  return graph
}

t.test('no import in src/ runs from a lower layer to a higher one', async (t) => {
  const graph = srcGraph()
  t.ok(graph.size > 20, `${graph.size} files read`)
  t.same(violations(graph), [])
  for (const [arrow, why] of KNOWN) {
    const [from = '', to = ''] = arrow.split(' -> ')
    const still = (graph.get(from) ?? []).some((s) => resolveSpec(from, s) === to)
    if (!still) t.comment(`known back arrow gone, remove it from KNOWN: ${arrow} (${why})`)
  }
})

t.test('no import loop in src/, type-only imports included', async (t) => {
  t.same(cycles(srcGraph()), [])
})

t.test('core imports nothing of ours; config only core', async (t) => {
  const graph = srcGraph()
  for (const [file, specs] of graph) {
    const unit = unitOf(file)
    if (unit !== 'core' && unit !== 'config') continue
    for (const spec of specs.filter((s) => s.startsWith('.'))) {
      const target = posix.normalize(posix.join(posix.dirname(file), spec))
      const allowed = unit === 'core' ? ['core'] : ['core', 'config']
      t.ok(allowed.includes(unitOf(target)), `${file} -> ${spec}`)
    }
  }
})

t.test('the checker finds what it is for', async (t) => {
  const rows: Array<[string, Array<[string, string[]]>, RegExp | undefined]> = [
    ['a downward import', [['vend.ts', ['./grants/resolve.js', './core/index.js', 'fastify', 'node:crypto']]], undefined],
    ['within one layer', [['grants/compile.ts', ['../policy/build.js']]], undefined],
    ['config reaching up into grants', [['config/validate.ts', ['../grants/template.js']]], /config\/validate\.ts -> grants\/template\.ts: "config" \(layer 1\) imports "grants" \(layer 2\)/],
    ['core importing config', [['core/names.ts', ['../config/schema.js']]], /"core" \(layer 0\) imports "config"/],
    ['an adapter importing a route', [['observability/audit.ts', ['../http/credentials/route.js']]], undefined],
    ['the audit trail importing the app', [['observability/audit.ts', ['../app.js']]], /imports "app\.ts"/],
    ['a dynamic import upward', [['auth/plugin.ts', ['../vend.js']]], /"auth" \(layer 3\) imports "vend\.ts" \(layer 5\)/],
    ['the in-process cache reaching into shared state', [['cache/credential-cache.ts', ['../redis/shared-cache.js']]], /"cache" \(layer 3\) imports "redis" \(layer 4\)/],
    ['the SDK adapter reaching into shared state', [['alicloud/sts-client.ts', ['../redis/entries.js']]], /"alicloud" \(layer 3\) imports "redis" \(layer 4\)/],
    ['shared state using the cache and the SDK types', [['redis/shared-cache.ts', ['../cache/credential-cache.js', '../alicloud/sts-types.js']]], undefined],
    ['the credential source using shared state', [['credential-source.ts', ['./redis/shared-cache.js', './cache/credential-cache.js']]], undefined],
    ['src importing the devkit', [['app.ts', ['../devkit/dev/stack.js']]], /src\/ imports from outside src\/ \(devkit\/dev\/stack\.ts\)/],
    ['src importing a test helper', [['http/health.ts', ['../../test/helpers/build.js']]], /outside src\/ \(test\/helpers/],
    ['a folder in no layer', [['plugins/x.ts', []]], /plugins\/x\.ts: not in any layer/]
  ]
  for (const [why, graph, want] of rows) {
    const found = violations(new Map(graph))
    if (want === undefined) t.same(found, [], why)
    else t.match(found.join('\n'), want, why)
  }

  const loops: Array<[string, Array<[string, string[]]>, string[]]> = [
    ['a chain without a loop', [['a.ts', ['./b.js']], ['b.ts', ['./c.js', 'fastify']], ['c.ts', []]], []],
    ['two files importing each other (a type-only loop counts)', [['auth/verifier.ts', ['./verified-tokens.js']], ['auth/verified-tokens.ts', ['./verifier.js']]], ['auth/verified-tokens.ts -> auth/verifier.ts -> auth/verified-tokens.ts']],
    ['a loop across folders', [['cache/a.ts', ['../redis/b.js']], ['redis/b.ts', ['./c.js']], ['redis/c.ts', ['../cache/a.js']]], ['cache/a.ts -> redis/b.ts -> redis/c.ts -> cache/a.ts']],
    ['a file importing itself', [['x.ts', ['./x.js']]], ['x.ts -> x.ts']],
    ['an import of a file outside the graph', [['x.ts', ['./gone.js', '../devkit/y.js']]], []]
  ]
  for (const [why, graph, want] of loops) t.same(cycles(new Map(graph)), want, why)

  const dynamic = ts.preProcessFile("const m = await import('../vend.js')\nexport type { X } from './x.js'", true, true)
  t.same(dynamic.importedFiles.map((f) => f.fileName), ['../vend.js', './x.js'], 'dynamic imports and re-exports are read')
})
