// The start-up walk of the upstream credential chain: which source is found, what
// "nothing" says, the RRSA token file that comes later, the ECS metadata probe (and
// ALIBABA_CLOUD_ECS_METADATA_DISABLED), and the built server's exit code.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { checkUpstreamCredential } from '../../src/alicloud/credential-check.js'
import { baseConfig } from '../helpers/build.js'
import { createDevIssuer } from '../../devkit/dev/issuer.js'

const SECRET = 'not-a-real-secret-0123456789abcdef'

async function fakeMetadata (t: { teardown: (fn: () => unknown) => void }, role: string | undefined): Promise<{ url: string, hits: () => number }> {
  let hits = 0
  const server = createServer((req, res) => {
    hits++
    if (req.method === 'PUT' && req.url === '/latest/api/token') { res.end('imds-token'); return }
    if (req.url === '/latest/meta-data/ram/security-credentials/' && role !== undefined && req.headers['x-aliyun-ecs-metadata-token'] === 'imds-token') { res.end(`${role}\n`); return }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits }
}

t.test('each source of the chain is found, in the chain\'s order; nothing found is one clear problem', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'stsv-home-'))
  const emptyHome = mkdtempSync(join(tmpdir(), 'stsv-home-'))
  mkdirSync(join(home, '.aliyun'))
  writeFileSync(join(home, '.aliyun', 'config.json'), '{"current":"default","profiles":[]}')
  const dir = mkdtempSync(join(tmpdir(), 'stsv-cred-'))
  const tokenFile = join(dir, 'token')
  writeFileSync(tokenFile, 'eyJ.oidc.token')
  const iniFile = join(dir, 'credentials')
  writeFileSync(iniFile, '[default]\ntype = access_key\n')
  const rrsa = { ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/r', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/p', ALIBABA_CLOUD_OIDC_TOKEN_FILE: tokenFile }
  const noMetadata = await fakeMetadata(t, undefined)

  const cases: Array<{ desc: string, env: Record<string, string>, home?: string, source?: RegExp, problem?: RegExp }> = [
    { desc: 'AccessKey pair', env: { ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAIexample', ALIBABA_CLOUD_ACCESS_KEY_SECRET: SECRET }, source: /^ALIBABA_CLOUD_ACCESS_KEY_ID/ },
    { desc: 'AccessKey pair wins over RRSA', env: { ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAIexample', ALIBABA_CLOUD_ACCESS_KEY_SECRET: SECRET, ...rrsa }, source: /^ALIBABA_CLOUD_ACCESS_KEY_ID/ },
    { desc: 'id without secret', env: { ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAIexample' }, problem: /ALIBABA_CLOUD_ACCESS_KEY_ID is set but ALIBABA_CLOUD_ACCESS_KEY_SECRET is not/ },
    { desc: 'secret without id', env: { ALIBABA_CLOUD_ACCESS_KEY_SECRET: SECRET }, problem: /ALIBABA_CLOUD_ACCESS_KEY_SECRET is set but ALIBABA_CLOUD_ACCESS_KEY_ID is not/ },
    { desc: 'empty id and secret are nothing', env: { ALIBABA_CLOUD_ACCESS_KEY_ID: '', ALIBABA_CLOUD_ACCESS_KEY_SECRET: '', ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true' }, problem: /^no upstream credential/ },
    { desc: 'RRSA with its token file', env: rrsa, source: /^RRSA/ },
    { desc: 'RRSA without the provider ARN is not RRSA', env: { ...rrsa, ALIBABA_CLOUD_OIDC_PROVIDER_ARN: '', ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true' }, problem: /^no upstream credential/ },
    { desc: 'aliyun CLI profile', env: {}, home, source: /aliyun CLI profile/ },
    { desc: 'aliyun CLI profile, disabled', env: { ALIBABA_CLOUD_CLI_PROFILE_DISABLED: 'true', ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'TRUE' }, home, problem: /^no upstream credential/ },
    { desc: 'credentials file', env: { ALIBABA_CLOUD_CREDENTIALS_FILE: iniFile }, source: /credentials file/ },
    { desc: 'credentials URI', env: { ALIBABA_CLOUD_CREDENTIALS_URI: 'http://127.0.0.1:8099/credentials' }, source: /ALIBABA_CLOUD_CREDENTIALS_URI/ },
    { desc: 'nothing, metadata disabled', env: { ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true' }, problem: /metadata service is disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED/ },
    { desc: 'nothing, metadata without a role', env: {}, problem: /metadata service gave no role/ }
  ]
  for (const c of cases) {
    const r = await checkUpstreamCredential({ env: c.env, home: c.home ?? emptyHome, metadataUrl: noMetadata.url })
    if (c.source !== undefined) {
      t.ok(r.ok, `${c.desc}: found`)
      if (r.ok) {
        t.match(r.source, c.source, `${c.desc}: source`)
        t.ok(r.ready(), `${c.desc}: ready`)
      }
    } else {
      t.notOk(r.ok, `${c.desc}: refused`)
      if (!r.ok) {
        t.match(r.problem, c.problem ?? /./, `${c.desc}: problem`)
        t.notOk(r.problem.includes('\n'), `${c.desc}: one line`)
        t.notOk(r.problem.includes(SECRET), `${c.desc}: no secret`)
      }
    }
  }
})

t.test('the ECS metadata service: a role is a source; ALIBABA_CLOUD_ECS_METADATA_DISABLED means no probe at all', async (t) => {
  const imds = await fakeMetadata(t, 'sts-vending-role')
  const home = mkdtempSync(join(tmpdir(), 'stsv-home-'))
  const found = await checkUpstreamCredential({ env: {}, home, metadataUrl: imds.url })
  t.match(found, { ok: true, source: /ECS RAM role sts-vending-role/ })
  const before = imds.hits()
  const disabled = await checkUpstreamCredential({ env: { ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true' }, home, metadataUrl: imds.url })
  t.match(disabled, { ok: false })
  t.equal(imds.hits(), before, 'no request reached the metadata service')

  // A metadata address that never answers costs at most the probe's deadline.
  const silent = createServer(() => {})
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { silent.closeAllConnections(); silent.close() })
  const started = Date.now()
  const r = await checkUpstreamCredential({ env: {}, home, metadataUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, metadataTimeoutMs: 200 })
  t.match(r, { ok: false, problem: /gave no role/ })
  t.ok(Date.now() - started < 2000, 'the probe ends at its deadline')
})

t.test('an RRSA token file that is not mounted yet: found, but not ready until it appears', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-rrsa-'))
  const tokenFile = join(dir, 'token')
  const r = await checkUpstreamCredential({ env: { ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/r', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/p', ALIBABA_CLOUD_OIDC_TOKEN_FILE: tokenFile, ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true' } })
  t.ok(r.ok)
  if (!r.ok) return
  t.match(r.pending, /RRSA token file .*token is not there yet/)
  t.notOk(r.ready())
  writeFileSync(tokenFile, '')
  t.notOk(r.ready(), 'an empty file is not a token')
  writeFileSync(tokenFile, 'eyJ.oidc.token')
  t.ok(r.ready(), 'ready once the token is there')
})

// The built server: `npm run build` (pretest) writes dist/.
const SERVER = new URL('../../dist/server.js', import.meta.url).pathname

function runServer (env: Record<string, string>, untilListening = false): Promise<{ code: number | null, stderr: string, stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SERVER], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    let stdout = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
      if (untilListening && stdout.includes('Server listening')) child.kill('SIGTERM')
    })
    child.on('exit', (code) => resolve({ code, stderr, stdout }))
  })
}

t.test('the built server: no credential is exit 2 with one line; the standard variables start it', { skip: existsSync(SERVER) ? false : 'dist/server.js not built' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-server-'))
  const config = join(dir, 'config.json')
  writeFileSync(config, JSON.stringify(baseConfig(createDevIssuer(), 'http://127.0.0.1:9')))
  const base = { STS_VENDING_CONFIG: config, PORT: '0', HOST: '127.0.0.1', HOME: dir, ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true' }

  const none = await runServer(base)
  t.equal(none.code, 2)
  t.match(none.stderr, /^sts-vending: no upstream credential: .+\n$/, 'one line')
  t.equal(none.stderr.split('\n').length, 2)
  t.equal(none.stdout, '', 'nothing half-started')

  const started = await runServer({ ...base, ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAIexample', ALIBABA_CLOUD_ACCESS_KEY_SECRET: SECRET }, true)
  t.match(started.stdout, /Server listening/, 'listens with the standard variables')
  t.notOk(started.stdout.includes(SECRET) || started.stderr.includes(SECRET), 'the secret is not logged')
})

t.test('the built server with an RRSA token file still to come: listening, /readyz 503 with the reason logged', { skip: existsSync(SERVER) ? false : 'dist/server.js not built' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-server-'))
  const config = join(dir, 'config.json')
  writeFileSync(config, JSON.stringify(baseConfig(createDevIssuer(), 'http://127.0.0.1:9')))
  const tokenFile = join(dir, 'token')
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH ?? '', STS_VENDING_CONFIG: config, PORT: '0', HOST: '127.0.0.1', HOME: dir, ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true', ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/r', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/p', ALIBABA_CLOUD_OIDC_TOKEN_FILE: tokenFile },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  t.teardown(async () => { child.kill('SIGKILL'); await exited })
  let stdout = ''
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
      const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)
      if (m !== null) resolve(Number(m[1]))
    })
    child.on('exit', (code) => reject(new Error(`exited ${String(code)}`)))
  })
  // Readiness: the warm-up finishes on its own shortly after listening (ready means
  // warm); the missing token file keeps it 503 after that, until the file is there.
  const readyz = async (): Promise<{ statusCode: number, body: any }> => {
    const res = await request(`http://127.0.0.1:${port}/readyz`)
    return { statusCode: res.statusCode, body: await res.body.json() }
  }
  let res = await readyz()
  for (let i = 0; i < 200 && JSON.stringify(res.body.failing) !== '["upstream-credential"]'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    res = await readyz()
  }
  t.equal(res.statusCode, 503)
  t.same(res.body, { status: 'not ready', failing: ['upstream-credential'] }, 'warm, and waiting for the token file only')
  t.match(stdout, /"reason":"the RRSA token file .*token is not there yet"/, 'the reason is logged')
  writeFileSync(tokenFile, 'eyJ.oidc.token')
  const again = await readyz()
  t.equal(again.statusCode, 200, 'ready once the token file is there')
  child.kill('SIGTERM')
  await exited
})
