// check-config: the server's start-up checks, before deploy. Each config below passes
// the schema (and so the chart's values.schema.json) but is refused by the server at
// start; check-config refuses it with the server's own line, exit 2.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { cli, oneLine } from '../../helpers/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'stsv-check-config-'))
const SECRET = 'k'.repeat(40)

function config (patch: (c: Record<string, any>) => void = () => {}): string {
  const c: Record<string, any> = {
    issuers: [{ name: 'app', issuer: 'https://idp.example', audience: 'sts-vending', secretEnv: 'APP_SECRET', algorithms: ['HS256'] }],
    grants: [{ name: 'uploads', issuers: ['app'], roleArn: 'acs:ram::1234567890123456:role/oss-upload', bucket: 'oss-test', region: 'cn-hangzhou', prefix: 'users/{sub}/', actions: ['read', 'write'], durationSeconds: 3600 }]
  }
  patch(c)
  const path = join(dir, `${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(path, stringify(c))
  return path
}

t.test('a good config: exit 0 and a summary of issuers and grants', async (t) => {
  const r = await cli(['check-config', '--config', config()], { env: { APP_SECRET: SECRET } })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /: ok\n/)
  t.match(r.stdout, /issuers: app \(secretEnv APP_SECRET\)/)
  t.match(r.stdout, /uploads: oss:\/\/oss-test\/users\/\{sub\}\/ \[read, write\] for app, 3600 s/)
  t.notMatch(r.stdout, SECRET, 'a secret is never printed')
  const example = await cli(['check-config'], { env: { STS_VENDING_CONFIG: 'config.example.yaml' } })
  t.equal(example.code, 0, `the documented example passes: ${example.stderr}`)
})

const refused: Array<{ desc: string, patch: (c: Record<string, any>) => void, line: RegExp }> = [
  { desc: 'a durationSeconds within the cache margin', patch: (c) => { c.grants[0].durationSeconds = 1200 }, line: /^sts-vending: config: grants\[0\]\.durationSeconds: / },
  { desc: 'a grant naming a missing issuer', patch: (c) => { c.grants[0].issuers = ['partner'] }, line: /^sts-vending: config: grants\[0\]\.issuers: / },
  { desc: 'a malformed placeholder', patch: (c) => { c.grants[0].prefix = 'users/{sub/' }, line: /^sts-vending: config: grants\[0\]\.prefix: / },
  { desc: 'a signing lifetime that does not fit the credential', patch: (c) => { c.grants[0].signing = { maxBytes: 1000, expiresSeconds: 3000 } }, line: /^sts-vending: config: grants\[0\]\.durationSeconds: must be at least signing\.expiresSeconds/ }
]

t.test('configs the schema passes but the server refuses: exit 2 with one line, with and without --no-env', async (t) => {
  for (const row of refused) {
    const path = config(row.patch)
    for (const flags of [[], ['--no-env']]) {
      const r = await cli(['check-config', '--config', path, ...flags], { env: { APP_SECRET: SECRET } })
      t.equal(r.code, 2, `${row.desc} ${flags.join(' ')}`)
      t.match(r.stderr, row.line, row.desc)
      t.ok(oneLine(r.stderr), `${row.desc}: one line, no stack`)
      t.equal(r.stdout, '')
    }
  }
})

t.test('the environment the config names is checked, unless --no-env', async (t) => {
  const path = config()
  const missing = await cli(['check-config', '--config', path], { env: {} })
  t.equal(missing.code, 2)
  t.equal(missing.stderr, 'sts-vending: config: issuers[0].secretEnv: the environment variable APP_SECRET is not set\n')
  const short = await cli(['check-config', '--config', path], { env: { APP_SECRET: 'short-secret-value' } })
  t.equal(short.code, 2)
  t.notMatch(short.stderr, 'short-secret-value', 'the value is never echoed')
  const skipped = await cli(['check-config', '--config', path, '--no-env'], { env: {} })
  t.equal(skipped.code, 0, skipped.stderr)
  t.match(skipped.stdout, /environment not checked: --no-env/)
  const nothing = await cli(['check-config'], { env: {} })
  t.equal(nothing.code, 2)
  t.match(nothing.stderr, /set STS_VENDING_CONFIG or pass --config/)
  const unreadable = await cli(['check-config', '--config', join(dir, 'absent.yaml')], { env: {} })
  t.equal(unreadable.code, 2)
  t.match(unreadable.stderr, /cannot read .*ENOENT/)
})

t.test('the line is the one the server prints before exiting 2', async (t) => {
  const server = new URL('../../../dist/server.js', import.meta.url).pathname
  for (const row of refused.slice(0, 2)) {
    const path = config(row.patch)
    const r = await cli(['check-config', '--config', path], { env: { APP_SECRET: SECRET } })
    const s = spawnSync(process.execPath, [server, '--config', path], { env: { PATH: process.env.PATH, APP_SECRET: SECRET, ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-test', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'not-a-real-secret' }, encoding: 'utf8', timeout: 20_000 })
    t.equal(s.status, 2, row.desc)
    t.equal(r.stderr, s.stderr, `${row.desc}: the same line`)
  }
})
