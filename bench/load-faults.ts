// `npm run load`: the service against the STS emulator while STS fails and recovers.
// A population of callers, some already cached, asks continuously through five
// phases; the table shows what callers saw and what reached STS in each. Loopback
// only, bounded in time (about 20 s). Not a benchmark: the point is the behaviour.
import autocannon, { type Result } from 'autocannon'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { buildApp } from '../src/app.js'
import { parseConfig } from '../src/config/load.js'
import { createDevIssuer } from '../devkit/dev/issuer.js'
import { startStsEmulator, type Fault } from '../devkit/emulator/sts.js'
import { createStsClient } from '../src/alicloud/sts-client.js'
import { createStaticCredential } from '../src/alicloud/credentials.js'

const ROLE = 'acs:ram::1000000000000000:role/load'
const PHASE_SECONDS = Number(process.env.LOAD_PHASE_SECONDS ?? 4)

interface Phase { name: string, fault?: Fault, newCallers: boolean }
const PHASES: Phase[] = [
  { name: 'healthy', newCallers: true },
  { name: 'STS 5xx', fault: { kind: 'server-error', status: 503 }, newCallers: true },
  { name: 'STS throttling', fault: { kind: 'throttle', retryAfterSeconds: 1 }, newCallers: true },
  { name: 'STS hangs', fault: { kind: 'hang' }, newCallers: true },
  { name: 'recovered', newCallers: true }
]

async function main (): Promise<void> {
  const id = `load${randomBytes(4).toString('hex')}`
  const secret = randomBytes(24).toString('base64url')
  const sts = await startStsEmulator({ accessKeys: { [id]: secret }, roles: { [ROLE]: { maxSessionDuration: 3600 } }, latencyMs: 20 })
  const issuer = createDevIssuer()
  const config = parseConfig({
    sts: { endpoint: sts.url, timeoutMs: 500, deadlineMs: 1500, maxCallsPerSecond: 50, breaker: { minimumRequests: 5, openMs: 1000, maxOpenMs: 4000 } },
    issuers: [{ name: 'app', issuer: issuer.issuer, audience: issuer.audience, publicKey: issuer.publicKeyPem, algorithms: ['RS256'] }],
    grants: [{ name: 'uploads', issuers: ['app'], roleArn: ROLE, bucket: 'load-bucket', region: 'cn-hangzhou', prefix: 'users/{sub}/', actions: ['list', 'read', 'write'], durationSeconds: 3600 }],
    rateLimit: { max: 1_000_000 },
    server: { maxEventLoopDelayMs: 0 }
  })
  const app = await buildApp(config, { logger: pino({ level: 'silent' }), stsClient: createStsClient({ endpoint: sts.url, timeoutMs: 500, credential: createStaticCredential(id, secret) }) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

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
    const statuses = new Map<number, number>()
    let i = 0
    const result = await new Promise<Result>((resolve, reject) => {
      const instance = autocannon({
        url,
        connections: 20,
        duration: PHASE_SECONDS,
        timeout: 5,
        requests: [{
          method: 'POST',
          path: '/credentials',
          setupRequest: (req) => ({ ...req, headers: { authorization: `Bearer ${tokens[i++ % tokens.length] ?? ''}` } })
        }]
      }, (err, res) => { if (err !== null) reject(err); else resolve(res) })
      instance.on('response', (_client: unknown, statusCode: number) => { statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1) })
    })
    const byStatus = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(' ')
    rows.push([phase.name, String(result.requests.total), byStatus, String(sts.callCount - before), String(result.latency.p99)])
  }
  sts.clearFaults()
  await app.close()
  await sts.close()

  const header = ['phase', 'requests', 'by status', 'STS calls', 'p99 ms']
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ')
  process.stdout.write([line(header), ...rows.map(line)].join('\n') + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`load: ${(err as Error).message}\n`)
  process.exit(1)
})
