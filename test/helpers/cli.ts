// Running the command line as an operator does: in-process through runCli() with
// captured streams, or as a real process (`node --import tsx src/cli.ts …`) where
// signals, exit codes and module resolution are the point.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { runCli } from '../../src/cli/main.js'
import { type CliIo } from '../../src/cli/args.js'
import { TSX_NODE_ARGS } from './tsx.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface Run { code: number, stdout: string, stderr: string }

export async function cli (argv: string[], io: Partial<Pick<CliIo, 'env' | 'credential'>> = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await runCli(argv, {
    stdout: { write: (s: string) => { stdout += s } },
    stderr: { write: (s: string) => { stderr += s } },
    ...io
  })
  return { code, stdout, stderr }
}

/** The single-line, stack-free shape of every error. */
export function oneLine (stderr: string): boolean {
  return stderr.endsWith('\n') && !stderr.trimEnd().includes('\n') && !/\bat .*\(.*:\d+:\d+\)/.test(stderr)
}

export interface Spawned { child: ChildProcess, stdout: () => string, stderr: () => string, exit: Promise<{ code: number | null, signal: NodeJS.Signals | null }> }

/** `node --import tsx <root>/src/cli.ts …` with its cwd at `root` (default: this checkout). */
export function spawnCli (argv: string[], opts: { root?: string, env?: Record<string, string | undefined> } = {}): Spawned {
  const root = opts.root ?? ROOT
  const child = spawn(process.execPath, [...TSX_NODE_ARGS, 'src/cli.ts', ...argv], {
    cwd: root,
    env: { PATH: process.env.PATH, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exit = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  return { child, stdout: () => stdout, stderr: () => stderr, exit }
}

export async function runSpawned (argv: string[], opts: { root?: string, env?: Record<string, string | undefined> } = {}): Promise<Run> {
  const s = spawnCli(argv, opts)
  const { code } = await s.exit
  return { code: code ?? -1, stdout: s.stdout(), stderr: s.stderr() }
}
