// Child processes of the benchmark. Every server under test runs in its own process,
// apart from the load generator (the parent), so that on a 2-core machine one core
// serves and the other loads. bench/ and devkit/ always run from source (through tsx
// for `npm run bench`, through the test runner's loader under the suite); the service
// runs from dist/ (what `npm run build` makes and the image ships), except under the
// test suite, which loads src/ so that the smoke test needs no build.
import { fork, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = fileURLToPath(import.meta.url)

/** True under the test suite (tap sets TAP=1 in its test processes). */
export const UNDER_TEST = process.env.TAP === '1'
const BENCH_DIR = dirname(dirname(here))

function findRoot (from: string): string {
  let dir = from
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('bench: cannot find the project root')
    dir = up
  }
  return dir
}

export const ROOT = findRoot(BENCH_DIR)

/**
 * Node flags a bench child needs to load TypeScript: the test runner's loader under the
 * suite (not its coverage and mock hooks, which would slow every server down), tsx
 * otherwise. The service's own process shell (dist/server.js) is started without them.
 */
export const NODE_ARGS: readonly string[] = UNDER_TEST ? process.execArgv.filter((a) => !/@tapjs\/(processinfo|mock)\b/.test(a)) : ['--import', 'tsx']

/** Flags for the service's process shell: none for dist/server.js, the loader for src/server.ts. */
export const SERVER_NODE_ARGS: readonly string[] = UNDER_TEST ? NODE_ARGS : []

/** The environment for children: ours, less V8 coverage collection (set by the test runner). */
export function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  delete env.NODE_V8_COVERAGE
  return env
}

/** A module of bench/ by its extensionless path, e.g. 'servers/floor'. */
export function benchModule (name: string): string {
  return join(BENCH_DIR, `${name}.ts`)
}

/** A module of the service by its extensionless path under src/, e.g. 'app': from dist/, or src/ under the test suite. */
export async function serviceModule<T> (name: string): Promise<T> {
  return await import(pathToFileURL(join(ROOT, UNDER_TEST ? 'src' : 'dist', `${name}${UNDER_TEST ? '.ts' : '.js'}`)).href) as T
}

/** A module of devkit/ (emulators, dev issuer) by its extensionless path; always from source. */
export async function devkitModule<T> (name: string): Promise<T> {
  return await import(pathToFileURL(join(ROOT, 'devkit', `${name}.ts`)).href) as T
}

/** The service's process shell: dist/server.js (built by `npm run build`), or src/server.ts under the test suite. */
export function serverEntry (): string {
  return UNDER_TEST ? join(ROOT, 'src', 'server.ts') : join(ROOT, 'dist', 'server.js')
}

export interface Child<Ready> {
  ready: Ready
  pid: number
  /** Ask the child something; it answers through its `handle`. */
  call (body: unknown): Promise<unknown>
  close (): Promise<void>
}

interface Message { type: string, id?: number, result?: unknown, error?: string, [k: string]: unknown }

/**
 * Start bench/<name> (which calls `serve` from ./child.js), hand it `init`, and wait
 * for it to report ready.
 */
export async function startChild<Ready> (name: string, init: unknown, opts: { execArgv?: string[], stdout?: 'ignore' | 'inherit' } = {}): Promise<Child<Ready>> {
  const child: ChildProcess = fork(benchModule(name), [], {
    execArgv: [...NODE_ARGS, ...(opts.execArgv ?? [])],
    env: childEnv(),
    stdio: ['ignore', opts.stdout ?? 'ignore', 'inherit', 'ipc'],
    serialization: 'advanced'
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  let nextId = 1

  const ready = await new Promise<Ready>((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`bench child ${name} exited (${String(code)}) before it was ready`))
    child.once('exit', onExit)
    child.on('message', (m: Message) => {
      if (m.type === 'ready') {
        child.off('exit', onExit)
        resolve(m as unknown as Ready)
      } else if (m.type === 'failed') {
        reject(new Error(`bench child ${name}: ${String(m.error)}`))
      } else if (m.type === 'answer' && m.id !== undefined) {
        const p = pending.get(m.id)
        pending.delete(m.id)
        if (m.error !== undefined) p?.reject(new Error(m.error))
        else p?.resolve(m.result)
      }
    })
    child.send({ type: 'init', init })
  })

  return {
    ready,
    pid: child.pid ?? -1,
    async call (body) {
      const id = nextId++
      return await new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject })
        child.send({ type: 'call', id, body })
      })
    },
    async close () {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.send({ type: 'close' })
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
  }
}
