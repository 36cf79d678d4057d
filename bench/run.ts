// `npm run bench`: the hot path (a cache hit) against what it cannot beat (the
// framework, the JWT verification), the cold path against the STS emulator, the naive
// no-cache design, memory per cached credential and start-up time, in one table.
//
// This process is the load generator; every server under test is a child process of
// its own. Throughput rows run in rounds, in a rotated order each round, and the table
// gives medians, with ratios taken within each round, so that a noisy machine moves
// the rows together rather than apart; issue 25's rows take turns with their baseline
// in half-second slices within each round (`bracketed`), for more rounds than the rest
// (`bracketedRounds`): their targets sit within a round's noise. `runBench({ smoke:
// true })` is the same code on tiny numbers, for the test suite.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import type { DevIssuer } from '../devkit/dev/issuer.js'
import { cyclingRequests, mergeLoads, roundRobinRequests, runLoad, signingRequests, type LoadResult, type SigningPath } from './lib/load.js'
import { benchModule, childEnv, NODE_ARGS, ROOT, SERVER_NODE_ARGS, serverEntry, devkitModule, startChild, type Child } from './lib/process.js'
import { machineInfo, renderMachine, renderTable, writeBenchmarks, type Machine, type Row } from './lib/report.js'
import { renderProfile, summariseProfile } from './lib/profile.js'
import type { MemoryResult } from './memory.js'
import type { VerifyInit } from './servers/verify.js'

export interface BenchParams {
  rounds: number
  /**
   * Rounds of the bracketed rows (issue 25's 3f, 3g, 7b, 7c), the rounds of every other
   * row first and then these rows alone: their targets sit within a round's noise on
   * this machine (single rounds of one row move by ±20 %), so their medians take more
   * rounds than rows far from their lines.
   */
  bracketedRounds: number
  /** Seconds per throughput run. */
  seconds: number
  warmupSeconds: number
  /**
   * Seconds of the same load on a timed row's server between the collection that precedes
   * every run and the measured run, so that each server is measured in its steady state
   * (see `measured`).
   */
  settleSeconds: number
  /**
   * Seconds of each turn of a bracketed row and its baseline within a round (`interleaved`):
   * short enough that the machine's slow phases fall on both sides alike.
   */
  sliceSeconds: number
  connections: number
  /** Rows 2c, 3d, 3e: issue 17's measurement, this many connections on one warm token. */
  manyConnections: number
  /** Cache-hit rows: distinct callers, and tokens minted for each (all warm). */
  hitCallers: number
  tokensPerCaller: number
  /** Miss and naive rows: distinct callers per round, each asking `requestsPerCaller` times. */
  missCallers: number
  requestsPerCaller: number
  missConnections: number
  /** Added by the emulator to every AssumeRole. */
  upstreamLatencyMs: number
  memoryEntries: number[]
  startupRuns: number
  /** All servers under test in one child process: for the smoke test only (fewer TypeScript loads). */
  oneProcess: boolean
  /** Signing row: distinct callers of one grant, each with one token. */
  signCallers: number
  /** Rows 2e/3g (issue 25): distinct warm callers, each with its own token, taken round-robin. */
  manyCallers: number
}

export const FULL: BenchParams = {
  rounds: 3,
  bracketedRounds: 5,
  seconds: 5,
  warmupSeconds: 2,
  settleSeconds: 1,
  sliceSeconds: 0.5,
  connections: 10,
  manyConnections: 50,
  hitCallers: 20,
  tokensPerCaller: 5,
  missCallers: 100,
  requestsPerCaller: 5,
  // 5 connections × (1 / ~55 ms) stays under the 100 calls/s budget: the budget is its own row.
  missConnections: 5,
  upstreamLatencyMs: 50,
  memoryEntries: [10_000, 100_000],
  startupRuns: 3,
  oneProcess: false,
  signCallers: 1000,
  manyCallers: 2000
}

export const SMOKE: BenchParams = {
  rounds: 1,
  bracketedRounds: 1,
  seconds: 0.3,
  warmupSeconds: 0.1,
  settleSeconds: 0.05,
  sliceSeconds: 0.15,
  connections: 4,
  manyConnections: 8,
  hitCallers: 2,
  tokensPerCaller: 2,
  missCallers: 8,
  requestsPerCaller: 4,
  missConnections: 2,
  upstreamLatencyMs: 20,
  memoryEntries: [500, 1000],
  startupRuns: 1,
  oneProcess: true,
  signCallers: 20,
  manyCallers: 10
}

export interface BenchOptions {
  smoke?: boolean
  params?: Partial<BenchParams>
  /** Write the table into BENCHMARKS.md. */
  write?: boolean
  /** Also run rows 2a and 3a under --cpu-prof and print where the time goes. */
  profile?: boolean
  /** With profile: copy each row's .cpuprofile here (`<row>.cpuprofile`), for Chrome DevTools or a closer look. */
  keepProfiles?: string
  /** Only these rows (and the baselines they are compared with): a quicker look while working. */
  only?: string[]
  log?: (line: string) => void
}

export interface BenchResult {
  machine: Machine
  params: BenchParams
  rows: Row[]
  table: string
  profile?: string
}

const ROLE_ARN = 'acs:ram::1234567890123456:role/oss-upload'

function median (xs: number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

function rotate<T> (xs: T[], by: number): T[] {
  const k = by % xs.length
  return [...xs.slice(k), ...xs.slice(0, k)]
}

async function freePort (): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address() as { port: number }
  srv.close()
  await once(srv, 'close')
  return port
}

/** The bench's service config; `budget` is sts.maxCallsPerSecond (undefined: the default). */
function serviceConfig (rs: DevIssuer, es: DevIssuer, stsUrl: string, o: { maxEntries?: number, budget?: number | undefined } = { budget: 100 }): Record<string, unknown> {
  return {
    sts: { endpoint: stsUrl, ...(o.budget !== undefined ? { maxCallsPerSecond: o.budget } : {}) },
    issuers: [
      { name: 'rs', issuer: rs.issuer, audience: rs.audience, publicKey: rs.publicKeyPem, algorithms: ['RS256'] },
      { name: 'es', issuer: es.issuer, audience: es.audience, publicKey: es.publicKeyPem, algorithms: ['ES256'] }
    ],
    grants: [{
      name: 'uploads',
      issuers: ['rs', 'es'],
      roleArn: ROLE_ARN,
      bucket: 'oss-bench',
      region: 'cn-hangzhou',
      prefix: 'uploads/{issuer}/{sub}/',
      actions: ['list', 'read', 'write'],
      durationSeconds: 3600,
      // Row 7: signed uploads with one grant-level credential.
      signing: { maxBytes: 104_857_600, expiresSeconds: 600 }
    }],
    cache: { maxEntries: o.maxEntries ?? 100_000, minRemainingSeconds: 1200 },
    // High enough never to answer 429 here: the per-caller limits are not what is measured
    // (the naive rows make one AssumeRole per request, which the upstream budget would refuse).
    rateLimit: { max: 1_000_000, timeWindowMs: 60_000, upstreamPerCaller: { max: 0 } }
  }
}

/**
 * Every server under test runs with its young generation held at the size a loaded Node
 * 20 server grows it to (16 MB semi-spaces, V8's default maximum), the baselines as much
 * as the service. Otherwise its size depends on each process's history: the collection
 * before every run (`measured`) shrinks it to 1 MB in a process that allocated a little
 * while idle (the service, whose timers run) and leaves it in one that allocated nothing
 * (the baselines), and the shrunk server pays for growing it back inside its measured
 * run. With the same build in two processes, the one shrunk this way used up to 1.19×
 * the CPU per request of the other; held, 0.99-1.0× (BENCHMARKS.md, issue 25).
 */
const YOUNG_GENERATION = ['--min-semi-space-size=16', '--max-semi-space-size=16']

const EXIT_WITH_PARENT = `--import=data:text/javascript,${encodeURIComponent('process.on("disconnect", () => process.exit(1))')}`

/**
 * Time from spawning `node dist/server.js` to the first 200 from /readyz; `afterReady`,
 * if given, runs against the server (its base URL) before it is stopped.
 */
async function measureStartup (configPath: string, accessKey: { id: string, secret: string }, afterReady?: (base: string) => Promise<void>): Promise<number> {
  const port = await freePort()
  const started = performance.now()
  // The IPC channel only lets the server notice that we died (a killed test run) and go too.
  const child = spawn(process.execPath, [...SERVER_NODE_ARGS, EXIT_WITH_PARENT, serverEntry(), '--config', configPath], {
    // server.ts refuses to start without an upstream credential (exit 2): the bench's AccessKey.
    env: childEnv({ HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ALIBABA_CLOUD_ACCESS_KEY_ID: accessKey.id, ALIBABA_CLOUD_ACCESS_KEY_SECRET: accessKey.secret }),
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  const exited = once(child, 'exit')
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode} before it was ready`)
      if (performance.now() - started > 60_000) throw new Error('the server was not ready within 60 s')
      try {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`)
        await res.arrayBuffer()
        if (res.status === 200) {
          const ready = performance.now() - started
          await afterReady?.(`http://127.0.0.1:${port}`)
          return ready
        }
      } catch {
        // not listening yet
      }
      await sleep(5)
    }
  } finally {
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}

/** Rows 8: bench/fleet.ts (three replicas on a real redis-server), or nothing without one. */
async function fleetRows (): Promise<Row[]> {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) return []
  const child = spawn(process.execPath, [...NODE_ARGS, benchModule('fleet'), '--json'], { env: childEnv(), stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`bench/fleet.ts exited with ${String(code)}`)
  const rows = JSON.parse(out.trim().split('\n').pop() ?? '[]') as Array<[string, string]>
  return rows.map(([label, value], i) => ({ id: `8${String.fromCharCode(97 + i)}`, scenario: `Fleet: ${label}`, note: value }))
}

export async function runBench (opts: BenchOptions = {}): Promise<BenchResult> {
  const params: BenchParams = { ...(opts.smoke === true ? SMOKE : FULL), ...opts.params }
  const t0 = performance.now()
  const log = (line: string): void => { opts.log?.(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${line}`) }
  const machine = machineInfo()
  const children: Array<Child<unknown>> = []
  const tmp = await mkdtemp(join(tmpdir(), 'sts-vending-bench-'))
  async function child<R> (name: string, init: unknown, o?: Parameters<typeof startChild>[2]): Promise<Child<R>> {
    const c = await startChild<R>(name, init, o)
    children.push(c as Child<unknown>)
    return c
  }
  /** A server under test, in a host process of its own (or, in the smoke test, a shared one). */
  interface Server { port: number, host: Child<unknown> }
  let sharedHost: Promise<Child<unknown>> | undefined
  // Every running server's host: all are collected before each run (`measured`).
  const hosts = new Set<Child<unknown>>()
  async function server (kind: 'floor' | 'verify' | 'service', init: unknown, execArgv: string[] = []): Promise<Server> {
    const host = params.oneProcess && execArgv.length === 0
      ? await (sharedHost ??= child('servers/host', {}))
      : await child('servers/host', {}, { execArgv: ['--expose-gc', ...YOUNG_GENERATION, ...execArgv] })
    const { port } = await host.call({ kind, init }) as { port: number }
    hosts.add(host)
    return { port, host }
  }
  const url = (s: Server): string => `http://127.0.0.1:${s.port}`

  const only = opts.only !== undefined ? new Set(opts.only) : undefined
  const wanted = (id: string): boolean => only === undefined || only.has(id)
  try {
    log('minting tokens and starting the servers')
    const { createDevIssuer } = await devkitModule<typeof import('../devkit/dev/issuer.js')>('dev/issuer')
    const rs = createDevIssuer({ alg: 'RS256', issuer: 'https://rs.bench.sts-vending.local/' })
    const es = createDevIssuer({ alg: 'ES256', issuer: 'https://es.bench.sts-vending.local/' })
    const hitPool = (issuer: DevIssuer): string[] => Array.from({ length: params.hitCallers * params.tokensPerCaller },
      (_, i) => issuer.mint({ sub: `hit-${i % params.hitCallers}` }, { expiresInSeconds: 7200 }))
    const rsHit = hitPool(rs)
    const signPool = Array.from({ length: params.signCallers }, (_, i) => rs.mint({ sub: `signer-${i}` }, { expiresInSeconds: 7200 }))
    const esHit = hitPool(es)
    // Rows 2e/3g: 2,000 callers, each its own token (issue 25).
    const manyPool = Array.from({ length: params.manyCallers }, (_, i) => rs.mint({ sub: `caller-${i}` }, { expiresInSeconds: 7200 }))
    // Fresh callers for every round of the miss row (and a warm-up population), so each round starts cold.
    const populations = Array.from({ length: params.rounds + 1 }, (_, r) =>
      Array.from({ length: params.missCallers }, (_, i) => rs.mint({ sub: `miss-${r}-${i}` }, { expiresInSeconds: 7200 })))

    const accessKeyId = `bench${randomBytes(6).toString('hex')}`
    const accessKeySecret = randomBytes(24).toString('base64url')
    const emulator = await child<{ url: string }>('servers/emulator', {
      accessKeys: { [accessKeyId]: accessKeySecret },
      roles: { [ROLE_ARN]: { maxSessionDuration: 43_200 } },
      latencyMs: params.upstreamLatencyMs
    })
    const stsUrl = emulator.ready.url
    log('emulator ready')
    const stsCalls = async (): Promise<number> => await emulator.call('count') as number
    const service = async (config: Record<string, unknown>, logLevel = 'warn', execArgv: string[] = []): Promise<Server> =>
      await server('service', { config, accessKeyId, accessKeySecret, logLevel }, execArgv)

    const [svc, svcInfo, svcNaive, svcNaiveDefault] = await Promise.all([
      service(serviceConfig(rs, es, stsUrl)),
      service(serviceConfig(rs, es, stsUrl), 'info'),
      service(serviceConfig(rs, es, stsUrl, { maxEntries: 0, budget: 100 })),
      service(serviceConfig(rs, es, stsUrl, { maxEntries: 0 }))
    ])

    log('services ready')
    // Warm the hit callers' cache entries, and take a real response as the floor's body.
    let body: Record<string, unknown> | undefined
    for (const s of [svc, svcInfo]) {
      for (const t of [...rsHit, ...esHit]) {
        for (let attempt = 1; ; attempt++) {
          const res = await fetch(`${url(s)}/credentials`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: '{}' })
          const json = await res.json() as Record<string, unknown>
          if (res.status === 200) {
            body ??= json
            break
          }
          // Load shedding right after start (module loading lags the event loop) passes in a moment.
          if (res.status !== 503 || attempt === 50) throw new Error(`the service answered ${res.status} ${JSON.stringify(json)} while warming up`)
          await sleep(200)
        }
      }
    }
    if (body === undefined) throw new Error('no warm-up response')
    // Every hit caller's one AssumeRole per service, made here; the hit rows must add none.
    const warmupAssumeRoles = await stsCalls()
    // The 2,000 callers of row 3g, warmed on the default-logging service, 50 at a time
    // (the STS budget, 100 calls/s, makes this about 20 s; a 503 for it is retried).
    const warmCallers = async (base: string, tokens: readonly string[]): Promise<void> => {
      const pending = [...tokens]
      await Promise.all(Array.from({ length: 50 }, async () => {
        for (let t = pending.pop(); t !== undefined; t = pending.pop()) {
          for (let attempt = 1; ; attempt++) {
            const res = await fetch(`${base}/credentials`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: '{}' })
            await res.arrayBuffer()
            if (res.status === 200) break
            if ((res.status !== 503 && res.status !== 429) || attempt === 50) throw new Error(`the service answered ${res.status} while warming the many callers`)
            await sleep(200)
          }
        }
      }))
    }
    if (wanted('3g') || wanted('2e')) await warmCallers(url(svcInfo), manyPool)
    const verifyInit = (issuer: DevIssuer): VerifyInit =>
      ({ body, publicKey: issuer.publicKeyPem, alg: issuer.alg, issuer: issuer.issuer, audience: issuer.audience })
    const [floor, verifyRs, verifyEs, verifyCached] = await Promise.all([
      server('floor', { body }),
      server('verify', verifyInit(rs)),
      server('verify', verifyInit(es)),
      // Issue 25's bar: @fastify/jwt with fast-jwt's verify cache, in front of the same body.
      server('verify', { ...verifyInit(rs), cache: 10_000 })
    ])

    log('baselines ready')
    // Row 7c presigns a PUT of one key in the one warm caller's directory (the form's keyPrefix).
    const form = await fetch(`${url(svcInfo)}/uploads/form`, { method: 'POST', headers: { authorization: `Bearer ${rsHit[0] ?? ''}`, 'content-type': 'application/json' }, body: '{}' })
    const urlBody = JSON.stringify({ key: `${(await form.json() as { keyPrefix: string }).keyPrefix}bench.bin`, method: 'PUT' })
    /**
     * `bracketed`: in each round the row and its baseline take turns in short slices, and
     * its ratios are taken against the baseline's slices together (issue 25's rows,
     * `interleaved`): on a machine whose speed drifts within seconds, a baseline measured
     * even a few seconds away says more about the drift than about the service.
     */
    interface Timed { id: string, scenario: string, target: Server, tokens: string[], baseline?: string, bracketed?: true, signing?: SigningPath, body?: string, connections?: number, roundRobin?: boolean }
    // Issue 17's own measurement: many connections, one warm token.
    const oneToken = rsHit.slice(0, 1)
    const many = params.manyConnections
    const timed: Timed[] = [
      { id: '1', scenario: 'Floor: bare Fastify route, same JSON body and schema', target: floor, tokens: rsHit },
      { id: '2a', scenario: 'Verify baseline: @fastify/jwt RS256, no cache', target: verifyRs, tokens: rsHit },
      { id: '2b', scenario: 'Verify baseline: @fastify/jwt ES256, no cache', target: verifyEs, tokens: esHit },
      { id: '3a', scenario: 'Service, cache hit, RS256', target: svc, tokens: rsHit, baseline: '2a' },
      { id: '3b', scenario: 'Service, cache hit, ES256', target: svc, tokens: esHit, baseline: '2b' },
      { id: '3c', scenario: 'Service, cache hit, RS256, LOG_LEVEL=info (the default)', target: svcInfo, tokens: rsHit, baseline: '2a' },
      { id: '2c', scenario: `Verify baseline: @fastify/jwt RS256, one token, ${many} connections`, target: verifyRs, tokens: oneToken, connections: many },
      { id: '3d', scenario: `Service, cache hit, RS256, one token, ${many} connections`, target: svc, tokens: oneToken, baseline: '2c', connections: many },
      { id: '3e', scenario: `Service, cache hit, RS256, one token, ${many} connections, LOG_LEVEL=info`, target: svcInfo, tokens: oneToken, baseline: '2c', connections: many },
      { id: '7', scenario: `Signing: POST /uploads/form, ${params.signCallers.toLocaleString('en-US')} distinct callers of one grant, RS256`, target: svc, tokens: signPool, baseline: '3a', signing: '/uploads/form' },
      // Issue 25: the service as users run it (LOG_LEVEL=info) against @fastify/jwt + fast-jwt's verify cache.
      { id: '2d', scenario: `Verify baseline: @fastify/jwt RS256 + verify cache (10,000), one token, ${many} connections`, target: verifyCached, tokens: oneToken, connections: many },
      { id: '3f', scenario: `Service, cache hit, RS256, one token, ${many} connections, LOG_LEVEL=info`, target: svcInfo, tokens: oneToken, baseline: '2d', bracketed: true, connections: many },
      { id: '2e', scenario: `Verify baseline: @fastify/jwt RS256 + verify cache, ${params.manyCallers.toLocaleString('en-US')} callers (own tokens, round-robin), ${many} connections`, target: verifyCached, tokens: manyPool, connections: many, roundRobin: true },
      { id: '3g', scenario: `Service, cache hit, ${params.manyCallers.toLocaleString('en-US')} warm callers (same tokens, round-robin), ${many} connections, LOG_LEVEL=info`, target: svcInfo, tokens: manyPool, baseline: '2e', bracketed: true, connections: many, roundRobin: true },
      { id: '7b', scenario: `Signing: POST /uploads/form, one warm caller, ${many} connections, LOG_LEVEL=info`, target: svcInfo, tokens: oneToken, baseline: '3f', bracketed: true, signing: '/uploads/form', connections: many },
      { id: '7c', scenario: `Signing: POST /uploads/url (PUT), one warm caller, ${many} connections, LOG_LEVEL=info`, target: svcInfo, tokens: oneToken, baseline: '3f', bracketed: true, signing: '/uploads/url', body: urlBody, connections: many }
    ]
    if (only !== undefined) for (const t of timed) if (only.has(t.id) && t.baseline !== undefined) only.add(t.baseline)
    for (let i = timed.length - 1; i >= 0; i--) if (!wanted((timed[i] as Timed).id)) timed.splice(i, 1)
    interface Counted { id: string, scenario: string, target: Server }
    const ideal = 1 / params.requestsPerCaller
    const counted: Counted[] = [
      { id: '4', scenario: `Service, cache miss: ${params.missCallers} new callers × ${params.requestsPerCaller} requests, STS +${params.upstreamLatencyMs} ms (ideal ${ideal.toFixed(3)} calls/req)`, target: svc },
      { id: '5a', scenario: 'Naive: same traffic, cache.maxEntries 0, STS budget 100/s', target: svcNaive },
      { id: '5b', scenario: 'Naive: same traffic, default STS budget (20/s)', target: svcNaiveDefault }
    ].filter((c) => wanted(c.id))

    type Measured = LoadResult & { sts: number, cpuMicros: number }
    const cpu = async (s: Server): Promise<number> => await s.host.call('cpu') as number
    const measured = async (s: Server, load: () => Promise<LoadResult>, settle?: () => Promise<LoadResult>): Promise<Measured> => {
      // Every server, not only this one: a server loaded by an earlier row must not
      // collect its garbage on the other core while this row runs.
      await Promise.all([...hosts].map(async (h) => await h.call('gc')))
      // That collection can shrink a server's young generation to its minimum: V8 does so
      // when the process allocated a little while idle (the service's timers), not when it
      // allocated nothing (the baselines), so the service would start each run with 1 MB
      // of new space against the baselines' 32 and spend the run growing it back (seen
      // with v8.getHeapSpaceStatistics() at the start of each run). A short run of the
      // same load first lets every server reach its steady state before it is measured.
      // Its upstream calls and refusals count as the row's (a hit row must make none).
      const calls = await stsCalls()
      const settled = await settle?.()
      const used = await cpu(s)
      const r = await load()
      return { ...r, non2xx: r.non2xx + (settled?.non2xx ?? 0), errors: r.errors + (settled?.errors ?? 0), sts: await stsCalls() - calls, cpuMicros: await cpu(s) - used }
    }
    const timedLoad = (t: Timed, seconds: number) => async (): Promise<LoadResult> =>
      await runLoad({ url: url(t.target), connections: t.connections ?? params.connections, duration: seconds, requests: t.signing !== undefined ? signingRequests(t.tokens, t.signing, t.body) : t.roundRobin === true ? roundRobinRequests(t.tokens) : cyclingRequests(t.tokens) })
    const timedRun = async (t: Timed, seconds: number): Promise<Measured> => await measured(t.target, timedLoad(t, seconds), timedLoad(t, params.settleSeconds))
    /**
     * A bracketed row and its baseline in one round: after the collection and a settling
     * run of each, they take turns in slices of `sliceSeconds` (baseline, row, row,
     * baseline, and again) until each has had the round's seconds, and each side's slices
     * are merged into one run. Both sides have the same time, the same number of starts
     * and the same mean position in time, and no slowdown of this machine (phases of a few
     * seconds, moving a 5 s row by up to 40 %) can fall on one side only. Every upstream
     * call of the round is counted as the row's.
     */
    const interleaved = async (t: Timed, base: Timed): Promise<{ row: Measured, around: Measured }> => {
      await Promise.all([...hosts].map(async (h) => await h.call('gc')))
      const calls = await stsCalls()
      const settledBase = await timedLoad(base, params.settleSeconds)()
      const settledRow = await timedLoad(t, params.settleSeconds)()
      const groups = Math.max(1, Math.round(params.seconds / (2 * params.sliceSeconds)))
      const seconds = params.seconds / (2 * groups)
      const slice = async (side: Timed): Promise<Measured> => {
        const used = await cpu(side.target)
        const r = await timedLoad(side, seconds)()
        return { ...r, sts: 0, cpuMicros: await cpu(side.target) - used }
      }
      let row: Measured | undefined
      let around: Measured | undefined
      for (let g = 0; g < groups; g++) {
        for (const side of [base, t, t, base]) {
          const m = await slice(side)
          if (side === t) row = row === undefined ? m : merge(row, m)
          else around = around === undefined ? m : merge(around, m)
        }
      }
      if (row === undefined || around === undefined) throw new Error('no slices')
      return {
        row: { ...row, sts: await stsCalls() - calls, non2xx: row.non2xx + settledRow.non2xx, errors: row.errors + settledRow.errors },
        around: { ...around, non2xx: around.non2xx + settledBase.non2xx, errors: around.errors + settledBase.errors }
      }
    }
    const countedRun = async (c: Counted, tokens: string[]): Promise<Measured> => await measured(c.target, async () =>
      await runLoad({ url: url(c.target), connections: params.missConnections, amount: tokens.length * params.requestsPerCaller, requests: roundRobinRequests(tokens) }))

    log('warming up')
    const warmSts = new Map<string, number>()
    for (const t of timed) warmSts.set(t.id, (await timedRun(t, params.warmupSeconds)).sts)
    const warmPopulation = populations[params.rounds] as string[]
    for (const c of counted) await countedRun(c, warmPopulation.slice(0, Math.max(2, params.missConnections * 4)))

    const results = new Map<string, Measured[]>()
    // A bracketed row's baseline, per round: its slices interleaved with the row's, as one run.
    const brackets = new Map<string, Measured[]>()
    const push = (into: Map<string, Measured[]>, id: string, r: Measured): void => { into.set(id, [...(into.get(id) ?? []), r]) }
    const merge = (a: Measured, b: Measured): Measured => ({ ...mergeLoads(a, b), sts: a.sts + b.sts, cpuMicros: a.cpuMicros + b.cpuMicros })
    const described = (r: Measured): string => `${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${(r.cpuMicros / Math.max(1, r.requests)).toFixed(0)} µs CPU/req, non-2xx ${r.non2xx}`
    const rounds = Math.max(params.rounds, params.bracketedRounds)
    for (let round = 0; round < rounds; round++) {
      for (const t of rotate(timed, round)) {
        if (round >= (t.bracketed === true ? params.bracketedRounds : params.rounds)) continue
        const base = t.bracketed === true ? timed.find((b) => b.id === t.baseline) : undefined
        if (base === undefined) {
          const r = await timedRun(t, params.seconds)
          push(results, t.id, r)
          log(`round ${round + 1}/${params.rounds} ${t.id}: ${described(r)}`)
          continue
        }
        const { row: r, around } = await interleaved(t, base)
        push(results, t.id, r)
        push(brackets, t.id, around)
        log(`round ${round + 1}/${params.bracketedRounds} ${t.id}: ${described(r)}; ${base.id} interleaved with it: ${around.rps.toFixed(0)} req/s`)
      }
      for (const c of round < params.rounds ? rotate(counted, round) : []) {
        const r = await countedRun(c, populations[round] as string[])
        push(results, c.id, r)
        log(`round ${round + 1}/${params.rounds} ${c.id}: ${r.rps.toFixed(0)} req/s, ${r.sts} STS calls for ${r.requests} requests, non-2xx ${r.non2xx}`)
      }
    }

    const rows: Row[] = []
    for (const s of [...timed, ...counted]) {
      const runs = results.get(s.id) ?? []
      const requests = runs.reduce((a, r) => a + r.requests, 0)
      const row: Row = {
        id: s.id,
        scenario: s.scenario,
        rps: median(runs.map((r) => r.rps)),
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
        cpuPerRequest: median(runs.map((r) => r.cpuMicros / Math.max(1, r.requests))),
        stsPerRequest: runs.reduce((a, r) => a + r.sts, 0) / Math.max(1, requests),
        requests,
        non2xx: runs.reduce((a, r) => a + r.non2xx + r.errors, 0),
        rounds: runs.length
      }
      const baselineId = (s as { baseline?: string }).baseline
      const base = baselineId !== undefined ? brackets.get(s.id) ?? results.get(baselineId) : undefined
      if (baselineId !== undefined && base !== undefined) {
        const vs = {
          baseline: baselineId,
          rps: median(runs.map((r, i) => r.rps / (base[i]?.rps ?? Number.NaN))),
          p99: median(runs.map((r, i) => r.p99 / (base[i]?.p99 ?? Number.NaN))),
          cpu: median(runs.map((r, i) => (r.cpuMicros / Math.max(1, r.requests)) / ((base[i]?.cpuMicros ?? Number.NaN) / Math.max(1, base[i]?.requests ?? 0))))
        }
        row.vsBaseline = vs
        // A bracketed row's verdict rests on the median of its rounds: the note shows it
        // unrounded and every round's ratio, so that a "1.00×, missed" reads as what it is.
        const perRound = (): string => `median ${vs.rps.toFixed(3)}×; per round ${runs.map((r, i) => `${(r.rps / (base[i]?.rps ?? Number.NaN)).toFixed(2)}×`).join(', ')}`
        // The whole run's upstream calls for these callers: one each, at warm-up, none after.
        const upstream = `STS: ${warmupAssumeRoles} AssumeRole at warm-up (one per caller and service), ${runs.reduce((a, r) => a + r.sts, 0) + (warmSts.get(s.id) ?? 0)} after`
        if (s.id === '3a' || s.id === '3b' || s.id === '3d') {
          const met = vs.rps >= 0.9 && vs.p99 <= 1.5
          row.note = `target ≥ 0.90× req/s and ≤ 1.5× p99: ${met ? 'met' : 'missed'}; ${upstream}`
        }
        if (s.id === '3c' || s.id === '3e') row.note = `target ≥ 0.75× req/s: ${vs.rps >= 0.75 ? 'met' : 'missed'}; ${upstream}`
        if (s.id === '3f') row.note = `target ≥ 1.00× req/s and ≤ 1.5× p99 of 2d (interleaved with it in ${params.sliceSeconds} s turns in each round): ${vs.rps >= 1 && vs.p99 <= 1.5 ? 'met' : 'missed'} (${perRound()}); ${upstream}`
        if (s.id === '3g') row.note = `target ≥ 1.00× req/s of 2e (interleaved with it in ${params.sliceSeconds} s turns in each round): ${vs.rps >= 1 ? 'met' : 'missed'} (${perRound()}); STS: ${params.manyCallers.toLocaleString('en-US')} callers warmed at start, ${runs.reduce((a, r) => a + r.sts, 0) + (warmSts.get(s.id) ?? 0)} AssumeRole after`
        if (s.id === '7b' || s.id === '7c') row.note = `target ≥ 0.80× req/s of the /credentials hit (3f, interleaved with it in ${params.sliceSeconds} s turns in each round): ${vs.rps >= 0.8 ? 'met' : 'missed'} (${perRound()}); ${runs.reduce((a, r) => a + r.sts, 0)} AssumeRole during the rounds`
      }
      if (s.id === '4') row.note = `ideal ${ideal.toFixed(3)}`
      if (s.id === '7') {
        const calls = (warmSts.get('7') ?? 0) + runs.reduce((a, r) => a + r.sts, 0)
        row.signingAssumeRoles = calls
        row.note = `${calls} AssumeRole for ${params.signCallers.toLocaleString('en-US')} callers (goal: 1 per grant per credential lifetime); goal ≥ 1.00× row 3a req/s: ${(row.vsBaseline?.rps ?? 0) >= 1 ? 'met' : 'missed'}`
      }
      rows.push(row)
    }

    log('memory per cached credential')
    for (const [i, entries] of params.memoryEntries.entries()) {
      if (!wanted(`6${String.fromCharCode(97 + i)}`)) continue
      const m = await child<{ result: MemoryResult }>('memory', { entries }, { execArgv: ['--expose-gc'] })
      rows.push({ id: `6${String.fromCharCode(97 + i)}`, scenario: `Memory: ${entries.toLocaleString('en-US')} cached credentials`, memory: m.ready.result })
      await m.close()
    }

    log('start-up time')
    const configPath = join(tmp, 'config.json')
    await writeFile(configPath, JSON.stringify(serviceConfig(rs, es, stsUrl)))
    const startups: number[] = []
    for (let i = 0; i < (wanted('6c') ? params.startupRuns : 0); i++) startups.push(await measureStartup(configPath, { id: accessKeyId, secret: accessKeySecret }))
    if (wanted('6c')) rows.push({ id: '6c', scenario: `Start-up: \`node ${serverEntry().slice(ROOT.length + 1)}\` to /readyz 200`, startupMs: median(startups), note: `runs: ${startups.map((s) => Math.round(s)).join(', ')} ms; target < 1,000 ms: ${median(startups) < 1000 ? 'met' : 'missed'}` })

    // Row 6d (issue 25): start-up on a busy machine, one busy loop per core, and the first
    // requests after ready (new callers, so misses, hits and signed forms): a pod that says
    // ready must not shed them with 503 OVERLOADED.
    if (wanted('6d') && !params.oneProcess) {
      log('start-up on a busy machine')
      const hogs = Array.from({ length: machine.nproc }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }))
      const statuses = new Map<number, number>()
      let afterReadyMs = 0
      try {
        await sleep(500)
        const callers = Array.from({ length: 20 }, (_, i) => rs.mint({ sub: `busy-${i}` }, { expiresInSeconds: 3600 }))
        const readyMs = await measureStartup(configPath, { id: accessKeyId, secret: accessKeySecret }, async (base) => {
          const t0 = performance.now()
          await Promise.all(callers.map(async (token) => {
            for (let k = 0; k < 10; k++) {
              const res = await fetch(`${base}${k % 3 === 2 ? '/uploads/form' : '/credentials'}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' })
              await res.arrayBuffer()
              statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
            }
          }))
          afterReadyMs = performance.now() - t0
        })
        const shed = statuses.get(503) ?? 0
        const answered = [...statuses].sort((a, b) => a[0] - b[0]).map(([status, n]) => `${n}× ${status}`).join(', ')
        rows.push({ id: '6d', scenario: `Start-up with ${machine.nproc} busy loops (one per core), then the first 200 requests after ready (20 new callers: credentials and signed forms, 20 at a time)`, note: `/readyz 200 ${Math.round(readyMs)} ms from spawn; then answered ${answered} in ${Math.round(afterReadyMs)} ms; target no 503 OVERLOADED: ${shed === 0 ? 'met' : 'missed'}` })
      } finally {
        for (const hog of hogs) hog.kill('SIGKILL')
      }
    }

    // The fleet rows need a redis-server; the smoke test leaves them to test/fleet/.
    if (!params.oneProcess && [...'abcdef'].some((l) => wanted(`8${l}`))) {
      log('fleet on Redis (bench/fleet.ts)')
      rows.push(...await fleetRows())
    }

    let profile: string | undefined
    if (opts.profile === true) {
      // 2e/3g only when asked for by --only: warming 2,000 callers on a fresh service takes 20 s.
      const profiled = ['2a', '3a', '2d', '3f', '7b', '7c', '2e', '3g'].filter((id) => only === undefined ? !['2e', '3g'].includes(id) : only.has(id))
      log(`profiling rows ${profiled.join(', ')}`)
      const parts: string[] = []
      const prof = ['--cpu-prof', '--cpu-prof-dir']
      const one = rsHit.slice(0, 1)
      for (const [id, start, connections, requests] of [
        ['2a', async (dir: string) => await server('verify', verifyInit(rs), [...prof, dir]), params.connections, cyclingRequests(rsHit)],
        ['3a', async (dir: string) => await service(serviceConfig(rs, es, stsUrl), 'warn', [...prof, dir]), params.connections, cyclingRequests(rsHit)],
        // Issue 25: one token, many connections, default logging, against @fastify/jwt + verify cache.
        ['2d', async (dir: string) => await server('verify', { ...verifyInit(rs), cache: 10_000 }, [...prof, dir]), params.manyConnections, cyclingRequests(one)],
        ['3f', async (dir: string) => await service(serviceConfig(rs, es, stsUrl), 'info', [...prof, dir]), params.manyConnections, cyclingRequests(one)],
        // Issue 25: signing for one warm caller, as 7b and 7c ask.
        ['7b', async (dir: string) => await service(serviceConfig(rs, es, stsUrl), 'info', [...prof, dir]), params.manyConnections, signingRequests(one, '/uploads/form')],
        ['7c', async (dir: string) => await service(serviceConfig(rs, es, stsUrl), 'info', [...prof, dir]), params.manyConnections, signingRequests(one, '/uploads/url', urlBody)],
        // Issue 25: 2,000 warm callers round-robin, against @fastify/jwt + verify cache on the same tokens.
        ['2e', async (dir: string) => await server('verify', { ...verifyInit(rs), cache: 10_000 }, [...prof, dir]), params.manyConnections, roundRobinRequests(manyPool)],
        ['3g', async (dir: string) => {
          const s = await service(serviceConfig(rs, es, stsUrl), 'info', [...prof, dir])
          await warmCallers(url(s), manyPool)
          return s
        }, params.manyConnections, roundRobinRequests(manyPool)]
      ] as const) {
        if (!profiled.includes(id)) continue
        const dir = join(tmp, `prof-${id}`)
        const target = await start(dir)
        await runLoad({ url: url(target), connections, duration: params.warmupSeconds, requests })
        const r = await runLoad({ url: url(target), connections, duration: params.seconds, requests })
        hosts.delete(target.host)
        await target.host.close()
        const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'))
        if (file === undefined) throw new Error(`no CPU profile for ${id}`)
        if (opts.keepProfiles !== undefined) {
          await mkdir(opts.keepProfiles, { recursive: true })
          await copyFile(join(dir, file), join(opts.keepProfiles, `${id}.cpuprofile`))
        }
        parts.push(renderProfile(`row ${id} (${r.rps.toFixed(0)} req/s while profiled)`, await summariseProfile(join(dir, file), params.seconds, 25)))
      }
      profile = parts.join('\n\n')
    }

    machine.loadAverageEnd = machineInfo().loadAverage
    const table = renderTable(rows)
    if (opts.write === true) {
      await writeBenchmarks(join(ROOT, 'BENCHMARKS.md'), `${renderMachine(machine, params as unknown as Record<string, unknown>)}\n\n${table}`)
    }
    return { machine, params, rows, table, ...(profile !== undefined ? { profile } : {}) }
  } finally {
    await Promise.allSettled(children.map(async (c) => { await c.close() }))
    await rm(tmp, { recursive: true, force: true })
  }
}

const USAGE = `Usage: npm run bench [-- options]

Builds the service (dist/), runs every row against it on loopback and writes the table
into BENCHMARKS.md between its markers. About twelve minutes on 2 cores.

Options:
  --rounds N      rounds of every throughput row (default ${FULL.rounds}; ${FULL.bracketedRounds} for 3f, 3g, 7b and 7c)
  --bracketed-rounds N  rounds of 3f, 3g, 7b and 7c (default: --rounds when given, else ${FULL.bracketedRounds})
  --seconds S     seconds per throughput run (default ${FULL.seconds})
  --no-write      print the table only; leave BENCHMARKS.md alone
  --profile       also run rows 2a, 3a, 2d, 3f, 7b and 7c (or those of --only, 2e and 3g too) under --cpu-prof and say where the time goes
  --keep-profiles DIR  with --profile: keep each row's .cpuprofile as DIR/<row>.cpuprofile
  --only IDS      only these rows (comma-separated, e.g. 3a,3c), with their baselines
  --connections N load connections of the throughput rows (default ${FULL.connections})
  --tokens N      distinct warm tokens of the cache-hit rows, one caller each (default ${FULL.hitCallers} callers × ${FULL.tokensPerCaller} tokens)
  --smoke         tiny numbers, seconds (what test/bench/smoke.test.ts runs); never writes
  -h, --help      this text
`

async function main (): Promise<void> {
  let values
  try {
    values = parseArgs({
      options: {
        smoke: { type: 'boolean', default: false },
        rounds: { type: 'string' },
        'bracketed-rounds': { type: 'string' },
        seconds: { type: 'string' },
        'no-write': { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        'keep-profiles': { type: 'string' },
        only: { type: 'string' },
        connections: { type: 'string' },
        tokens: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false }
      },
      strict: true
    }).values
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  if (values.help) {
    process.stdout.write(USAGE)
    return
  }
  const params: Partial<BenchParams> = {}
  if (values.rounds !== undefined) params.rounds = params.bracketedRounds = Number(values.rounds)
  if (values['bracketed-rounds'] !== undefined) params.bracketedRounds = Number(values['bracketed-rounds'])
  if (values.connections !== undefined) params.connections = Number(values.connections)
  if (values.tokens !== undefined) Object.assign(params, { hitCallers: Number(values.tokens), tokensPerCaller: 1 })
  if (values.seconds !== undefined) params.seconds = Number(values.seconds)
  const result = await runBench({
    smoke: values.smoke,
    params,
    write: !values.smoke && !values['no-write'] && values.only === undefined,
    profile: values.profile,
    ...(values['keep-profiles'] !== undefined ? { keepProfiles: values['keep-profiles'] } : {}),
    ...(values.only !== undefined ? { only: values.only.split(',').map((id) => id.trim()) } : {}),
    log: (line) => process.stderr.write(`bench: ${line}\n`)
  })
  process.stdout.write(`${renderMachine(result.machine, result.params as unknown as Record<string, unknown>)}\n\n${result.table}\n`)
  if (result.profile !== undefined) process.stdout.write(`\n${result.profile}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
