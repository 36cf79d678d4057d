// The machine a run was made on, the one table, and BENCHMARKS.md: the script owns the
// part between the markers and leaves the hand-written discussion around it alone.
import { existsSync, readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, totalmem } from 'node:os'
import type { MemoryResult } from '../memory.js'

export interface Machine {
  date: string
  nproc: number
  cpu: string
  memoryGiB: number
  node: string
  loadAverage: string
  /** At the end of the run (the machine is shared: other work moves both). */
  loadAverageEnd?: string
}

export function machineInfo (): Machine {
  let cpu = 'unknown'
  if (existsSync('/proc/cpuinfo')) {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1] !== undefined) cpu = m[1].trim()
  }
  return {
    date: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    nproc: availableParallelism(),
    cpu,
    memoryGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    node: process.version,
    loadAverage: loadavg().map((l) => l.toFixed(2)).join(' ')
  }
}

export interface Row {
  id: string
  scenario: string
  /** 2xx responses per second (median of the rounds). */
  rps?: number
  p50?: number
  p99?: number
  /** The server process's CPU time (user + system) per request, µs (median of the rounds). */
  cpuPerRequest?: number
  /** Medians of the per-round ratios to the row named. */
  vsBaseline?: { baseline: string, rps: number, p99: number, cpu: number }
  /** AssumeRole calls received by the emulator per request sent, over all rounds. */
  stsPerRequest?: number
  requests?: number
  non2xx?: number
  /** Throughput and counted rows: how many rounds were measured. */
  rounds?: number
  memory?: MemoryResult
  startupMs?: number
  /** Row 7: AssumeRole calls over the warm-up and every round. */
  signingAssumeRoles?: number
  note?: string
}

const dash = '—'

function num (v: number | undefined, digits: number): string {
  if (v === undefined) return dash
  if (!Number.isFinite(v)) return String(v)
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

function kb (bytes: number): string {
  return `${(bytes / 1024).toFixed(2)} KB`
}

export function renderTable (rows: Row[]): string {
  const head = ['#', 'Scenario', 'req/s (2xx)', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'vs baseline: req/s, p99, CPU', 'STS calls/req', 'non-2xx/req', 'Notes']
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => i >= 2 && i <= 8 ? '---:' : '---').join('|')}|`]
  for (const r of rows) {
    const notes: string[] = []
    if (r.memory !== undefined) {
      const m = r.memory
      notes.push(`heap ${kb(m.heapBytesPerEntry)}, RSS ${kb(m.rssBytesPerEntry)} per entry (strings ${kb(m.payloadBytesPerEntry)}); filled in ${(m.fillMs / 1000).toFixed(2)} s; target < 3 KB heap: ${m.heapBytesPerEntry < 3072 ? 'met' : 'missed'}`)
    }
    if (r.startupMs !== undefined) notes.push(`${Math.round(r.startupMs)} ms from spawn to /readyz 200 (median)`)
    if (r.note !== undefined) notes.push(r.note)
    lines.push(`| ${[
      r.id,
      r.scenario,
      num(r.rps, 0),
      num(r.p50, 2),
      num(r.p99, 2),
      num(r.cpuPerRequest, 0),
      r.vsBaseline === undefined ? dash : `${r.vsBaseline.rps.toFixed(2)}×, ${r.vsBaseline.p99.toFixed(2)}×, ${r.vsBaseline.cpu.toFixed(2)}× (${r.vsBaseline.baseline})`,
      r.stsPerRequest === undefined ? dash : r.stsPerRequest.toFixed(3),
      r.non2xx === undefined || r.requests === undefined ? dash : (r.non2xx / Math.max(1, r.requests)).toFixed(3),
      notes.join('; ') || dash
    ].join(' | ')} |`)
  }
  return lines.join('\n')
}

export function renderMachine (m: Machine, params: Record<string, unknown>): string {
  return [
    `Run ${m.date} on ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB RAM, Node ${m.node}; load average at start ${m.loadAverage}${m.loadAverageEnd !== undefined ? `, at end ${m.loadAverageEnd}` : ''}.`,
    '',
    `Parameters: \`${JSON.stringify(params)}\``
  ].join('\n')
}

const START = '<!-- bench:start (written by `npm run bench`; edit outside the markers) -->'
const END = '<!-- bench:end -->'

/** Replace the generated section of BENCHMARKS.md (or create the file around it). */
export async function writeBenchmarks (path: string, section: string): Promise<void> {
  const block = `${START}\n${section}\n${END}`
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    text = `# Benchmarks\n\n${block}\n`
    await writeFile(path, text)
    return
  }
  const a = text.indexOf(START)
  const b = text.indexOf(END)
  text = a !== -1 && b > a ? text.slice(0, a) + block + text.slice(b + END.length) : `${text.trimEnd()}\n\n${block}\n`
  await writeFile(path, text)
}
