// The process refuses a bad config the same way whatever rule catches it: one line on
// stderr and exit 2, before it listens. Runs the built entry point, as server.test.ts
// does (`npm test` builds dist/ first).
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// Five processes at once on a busy 2-core machine can take most of a minute.
t.setTimeout(180_000)

const SERVER = fileURLToPath(new URL('../../dist/server.js', import.meta.url))

const ISSUER = (source: string, algs: string): string => `issuers:
  - name: app
    issuer: https://id.example.com/
    audience: sts-vending
    ${source}
    algorithms: [${algs}]
`
const GRANT = (name: string, prefix: string): string => `  - name: ${name}
    issuers: [app]
    roleArn: acs:ram::1234567890123456:role/oss-upload
    bucket: oss-test
    region: cn-hangzhou
    prefix: "${prefix}"
    actions: [read]
    durationSeconds: 3600
`
const JWKS = 'jwksUri: https://id.example.com/jwks'

function run (config: string, env: Record<string, string> = {}): Promise<{ code: number | null, stderr: string, stdout: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-exit-'))
  const file = join(dir, 'config.yaml')
  writeFileSync(file, config)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER, '--config', file], {
      // PORT 0: should a config slip through, the server would listen and the test time out.
      env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stderr = ''
    let stdout = ''
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, stderr, stdout }))
  })
}

t.test('every kind of config error is one line and exit 2', async (t) => {
  const rows: Array<[string, string, Record<string, string>, RegExp]> = [
    ['an unset secretEnv variable', ISSUER('secretEnv: APP_SECRET', 'HS256') + 'grants:\n' + GRANT('g', 'u/{sub}/'), {},
      /^sts-vending: config: issuers\[0\]\.secretEnv: the environment variable APP_SECRET is not set\n$/],
    ['a secretEnv variable too short', ISSUER('secretEnv: APP_SECRET', 'HS256') + 'grants:\n' + GRANT('g', 'u/{sub}/'), { APP_SECRET: 'short' },
      /^sts-vending: config: issuers\[0\]\.secretEnv: the environment variable APP_SECRET must hold a secret of at least 32 bytes\n$/],
    ['a typo in a key', ISSUER(JWKS, 'RS256') + 'grants:\n' + GRANT('g', 'u/{sub}/') + 'sts:\n  timeOutMs: 100\n', {},
      /^sts-vending: config: sts\.timeOutMs: unknown key; did you mean sts\.timeoutMs\?\n$/],
    ['two grants whose directories nest', ISSUER(JWKS, 'RS256') + 'grants:\n' + GRANT('root', '{sub}/') + GRANT('home', 'home/{sub}/'), {},
      /^sts-vending: config: grants\[1\]\.prefix: grant "home" and grant "root" \(grants\[0\]\) could give two callers of "app" the same or nested directories[^\n]*\n$/],
    ['two issuers with one iss', ISSUER(JWKS, 'RS256') + ISSUER(JWKS, 'RS256').replace('issuers:\n', '').replace('name: app', 'name: other') + 'grants:\n' + GRANT('g', 'u/{sub}/'), {},
      /^sts-vending: config: issuers\[1\]\.issuer: issuers\[0\] \("app"\) already has this iss[^\n]*\n$/]
  ]
  const results = await Promise.all(rows.map(async ([, config, env]) => run(config, env)))
  for (const [i, [why, , env, line]] of rows.entries()) {
    const r = results[i]
    t.equal(r?.code, 2, `${why}: exit 2`)
    t.match(r?.stderr, line, `${why}: one line`)
    t.equal(r?.stdout, '', `${why}: nothing else`)
    for (const v of Object.values(env)) t.notMatch(r?.stderr ?? '', v, `${why}: the variable's value is not shown`)
  }
})
