// `npm run load`: the service against the STS emulator while STS fails and recovers.
// A population of callers, some already cached, asks continuously through five
// phases; the table shows what callers saw and what reached STS in each. Loopback
// only, bounded in time (about 20 s). Not a benchmark: the point is the behaviour.
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { Pool } from 'undici'
import { buildApp } from '../src/app.js'
import { prepare } from '../src/prepare.js'
import { parseConfig } from '../src/config/load.js'
import { createDevIssuer } from '../devkit/dev/issuer.js'
import { startStsEmulator, type Fault } from '../devkit/emulator/sts.js'
import { createStsClient } from '../src/alicloud/sts-client.js'
import { createStaticCredential } from '../src/alicloud/credentials.js'

const ROLE = 'acs:ram::1000000000000000:role/load'
const PHASE_SECONDS = Number(process.env.LOAD_PHASE_SECONDS ?? 4)

interface Phase { name: string, fault?: Fault, expect: string }
const PHASES: Phase[] = [
  { name: 'healthy', expect: 'all 200, one STS call per new caller, except 503 STS_BUDGET_EXHAUSTED while new callers arrive faster than the budget (50/s here)' },
  { name: 'STS 5xx', fault: { kind: 'server-error', status: 503 }, expect: 'cached callers 200; new callers 503 UPSTREAM_UNAVAILABLE, then CIRCUIT_OPEN once the breaker opens; few STS calls' },
  { name: 'STS throttling', fault: { kind: 'throttle', retryAfterSeconds: 1 }, expect: 'cached callers 200; new callers 503 (throttled or circuit open) with Retry-After; no retry storm' },
  { name: 'STS hangs', fault: { kind: 'hang' }, expect: 'cached callers 200; new callers 504 UPSTREAM_TIMEOUT within the deadline, then CIRCUIT_OPEN' },
  { name: 'recovered', expect: 'all 200 again once a probe closes the breaker (budget 503s as in the first phase)' }
]
const CONNECTIONS = 20

async function main (): Promise<void> {
  const id = `load${randomBytes(4).toString('hex')}`
  const secret = randomBytes(24).toString('base64url')
  const sts = await startStsEmulator({ accessKeys: { [id]: secret }, roles: { [ROLE]: { maxSessionDuration: 3600 } }, latencyMs: 20 })
  const issuer = createDevIssuer()
  const config = parseConfig({
    sts: { endpoint: sts.url, timeoutMs: 500, deadlineMs: 1500, maxCallsPerSecond: 50, breaker: { minimumRequests: 5, windowMs: 4000, openMs: 1000, maxOpenMs: 4000 } },
    issuers: [{ name: 'app', issuer: issuer.issuer, audience: issuer.audience, publicKey: issuer.publicKeyPem, algorithms: ['RS256'] }],
    grants: [{ name: 'uploads', issuers: ['app'], roleArn: ROLE, bucket: 'load-bucket', region: 'cn-hangzhou', prefix: 'users/{sub}/', actions: ['list', 'read', 'write'], durationSeconds: 3600 }],
    // The per-caller upstream budget would answer most of a failing phase with 429s (each
    // new caller asks again and again); switched off here to show the breaker and budgets.
    rateLimit: { max: 1_000_000, upstreamPerCaller: { max: 0 } },
    server: { maxEventLoopDelayMs: 0 }
  })
  // The audit trail writes at every level: into /dev/null here, to keep the table readable.
  const app = await buildApp(prepare(config, {}), { logger: pino({ level: 'silent' }, pino.destination('/dev/null')), stsClient: createStsClient({ endpoint: sts.url, timeoutMs: 500, credential: createStaticCredential(id, secret) }) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const pool = new Pool(url, { connections: CONNECTIONS })

  // 50 regulars warmed up front, plus fresh callers minted per phase.
  const regulars = Array.from({ length: 50 }, (_v, i) => issuer.mint({ sub: `regular${i}` }))
  for (const token of regulars) await fetch(`${url}/credentials`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  let fresh = 0
  const rows: string[][] = []
  for (const phase of PHASES) {
    sts.clearFaults()
    if (phase.fault !== undefined) sts.inject(phase.fault)
    const tokens = [...regulars, ...Array.from({ length: 200 }, () => issuer.mint({ sub: `new${fresh++}` }))]
    const before = sts.callCount
    process.stderr.write(`load: phase ${phase.name} (${PHASE_SECONDS} s): expect ${phase.expect}\n`)
    const statuses = new Map<string, number>()
    const latencies: number[] = []
    let i = 0
    const until = performance.now() + PHASE_SECONDS * 1000
    const progress = setInterval(() => {
      process.stderr.write(`load:   ${latencies.length} answers so far, ${sts.callCount - before} STS calls\n`)
    }, 1000)
    // A fixed number of workers, each asking again as soon as it has its answer.
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until) {
        const token = tokens[i++ % tokens.length] ?? ''
        const started = performance.now()
        const res = await pool.request({ method: 'POST', path: '/credentials', headers: { authorization: `Bearer ${token}` }, headersTimeout: 5000, bodyTimeout: 5000 })
        const text = await res.body.text()
        latencies.push(performance.now() - started)
        const key = res.statusCode < 300 ? String(res.statusCode) : `${res.statusCode} ${(JSON.parse(text) as { code?: string }).code ?? '?'}`
        statuses.set(key, (statuses.get(key) ?? 0) + 1)
      }
    }))
    clearInterval(progress)
    latencies.sort((a, b) => a - b)
    const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0
    const byStatus = [...statuses].sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${s.replace(/^(\d+) STS_VENDING_/, '$1 ')}: ${n}`).join(', ')
    rows.push([phase.name, String(latencies.length), byStatus, String(sts.callCount - before), p99.toFixed(0)])
  }
  sts.clearFaults()
  await pool.close()
  await app.close()
  await sts.close()

  const header = ['phase', 'requests', 'answers by status and code', 'STS calls', 'p99 ms']
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ')
  process.stdout.write([line(header), ...rows.map(line), '', 'What each phase should show:', ...PHASES.map((p) => `  ${p.name}: ${p.expect}`)].join('\n') + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`load: ${(err as Error).message}\n`)
  process.exit(1)
})
