// Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by
// where the code lives (our src/ file, an npm package, or Node's internals).
import { readFile } from 'node:fs/promises'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

export interface ProfileLine { name: string, share: number }
export interface ProfileSummary { functions: ProfileLine[], places: ProfileLine[], idle: number }

function place (url: string, fn: string): string {
  if (url === '') return fn === '(garbage collector)' || fn === '(program)' || fn === '(idle)' ? fn : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg?.[1] !== undefined) return pkg[1]
  const ours = /\/(src|dist|bench)\/(.+)$/.exec(url)
  if (ours !== null) return `${ours[1] ?? ''}/${ours[2] ?? ''}`
  if (url.startsWith('node:')) return url.replace(/^node:internal\/([^/]+).*$/, 'node:$1')
  return url
}

function top (m: Map<string, number>, total: number, n: number): ProfileLine[] {
  return [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, hits]) => ({ name, share: hits / total }))
}

/** Only the samples of the last `windowSeconds` of the profile count (the load, not the start-up). */
export async function summariseProfile (path: string, windowSeconds: number, n = 15): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const hits = new Map<number, number>()
  let t = profile.startTime
  const from = profile.endTime - windowSeconds * 1e6
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0
    if (t < from) continue
    const id = profile.samples[i] as number
    hits.set(id, (hits.get(id) ?? 0) + 1)
  }
  const fns = new Map<string, number>()
  const places = new Map<string, number>()
  let busy = 0
  let idle = 0
  for (const [id, count] of hits) {
    const node = byId.get(id)
    if (node === undefined) continue
    if (node.callFrame.functionName === '(idle)') {
      idle += count
      continue
    }
    busy += count
    const where = place(node.callFrame.url, node.callFrame.functionName)
    const fn = `${node.callFrame.functionName || '(anonymous)'} ${where}:${node.callFrame.lineNumber + 1}`
    fns.set(fn, (fns.get(fn) ?? 0) + count)
    places.set(where, (places.get(where) ?? 0) + count)
  }
  return { functions: top(fns, busy, n), places: top(places, busy, n), idle: idle / Math.max(1, idle + busy) }
}

export function renderProfile (title: string, s: ProfileSummary): string {
  const pct = (l: ProfileLine): string => `${(l.share * 100).toFixed(1).padStart(5)}%  ${l.name}`
  return [`${title}: idle ${(s.idle * 100).toFixed(1)}% of the time; shares of the busy samples`, '  by place:', ...s.places.map((l) => `    ${pct(l)}`), '  by function:', ...s.functions.map((l) => `    ${pct(l)}`)].join('\n')
}
