// Start-up loads what readiness needs and nothing else (issue 17: start-up to /readyz
// under 1 s). In a fresh node process on the built dist/, as the image runs it: after
// the config is loaded and the app is ready, and after /readyz answered, no Alibaba
// Cloud SDK package and no undici (JWKS issuers only) is loaded; once the server
// listens, the STS SDK is warmed, and /readyz over HTTP says ready only then. These packages are CommonJS, so
// Node's require cache lists them even when ESM imports them.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

t.setTimeout(120_000)

const DIST = new URL('../dist/', import.meta.url).href

const CHILD = `
import { createRequire } from 'node:module'
const loaded = () => Object.keys(createRequire(import.meta.url).cache)
  .map((p) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(p)?.[1]).filter((p) => p !== undefined)
const { loadConfigFile } = await import(new URL('config/load.js', process.env.DIST).href)
const { buildApp } = await import(new URL('app.js', process.env.DIST).href)
const { prepare } = await import(new URL('prepare.js', process.env.DIST).href)
const config = await loadConfigFile(process.env.CONFIG)
const app = await buildApp(prepare(config, {}), { logger: false, defaultMetrics: false })
await app.ready()
const readyz = (await app.inject('/readyz')).statusCode
const atReady = [...new Set(loaded())]
await app.listen({ host: '127.0.0.1', port: 0 })
// Listening, /readyz waits for the warm-up (issue 25): the SDK is loaded when it says ready.
let readyOverHttp = 0
for (let i = 0; i < 1000 && readyOverHttp !== 200; i++) {
  const res = await fetch('http://127.0.0.1:' + app.server.address().port + '/readyz')
  await res.arrayBuffer()
  readyOverHttp = res.status
  if (readyOverHttp !== 200) await new Promise((resolve) => setTimeout(resolve, 10))
}
const warmed = loaded().includes('@alicloud/sts20150401')
await app.close()
process.stdout.write(JSON.stringify({ readyz, atReady, warmed, readyOverHttp }))
`

t.test('ready without the SDK packages or undici; the STS SDK is loaded before a listening server says ready', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sts-vending-startup-'))
  const publicKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const config = {
    sts: { endpoint: 'http://127.0.0.1:9' },
    issuers: [{ name: 'app', issuer: 'https://issuer.example', audience: 'sts-vending', publicKey, algorithms: ['ES256'] }],
    grants: [{ name: 'uploads', issuers: ['app'], roleArn: 'acs:ram::1234567890123456:role/up', bucket: 'oss-test', region: 'cn-hangzhou', prefix: 'u/{sub}/', actions: ['write'], durationSeconds: 3600 }]
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD], {
    env: { ...process.env, DIST, CONFIG: join(dir, 'config.json') },
    encoding: 'utf8',
    timeout: 60_000
  })
  t.equal(run.status, 0, run.stderr)
  const out = JSON.parse(run.stdout) as { readyz: number, atReady: string[], warmed: boolean, readyOverHttp: number }
  t.equal(out.readyz, 200)
  t.ok(out.atReady.includes('fastify'), 'the cache is read (fastify is there)')
  t.same(out.atReady.filter((p) => p.startsWith('@alicloud/') || p === 'undici'), [], 'no SDK package and no undici before ready')
  t.equal(out.readyOverHttp, 200, 'ready once listening and warm')
  t.ok(out.warmed, 'the STS SDK is loaded when /readyz first says ready')
})
