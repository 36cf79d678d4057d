// The program as a whole: the command table, --help and --version, the entry point, and
// an install without the optional packages (as the server's image is built), where the
// commands that need one say so in one line and everything else still runs.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { commands } from '../../src/cli/main.js'
import { ROOT, cli, oneLine, runSpawned } from '../helpers/cli.js'
import { b64 } from '../helpers/jwt.js'
import { TSX_NODE_ARGS } from '../helpers/tsx.js'

// Each case spawns the CLI through a TypeScript loader: slow on a loaded 2-core machine.
t.setTimeout(240_000)

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
const JWT = `${b64({ alg: 'RS256' })}.${b64({ sub: 'alice' })}.c2ln`

t.test('usage errors of the program exit 2', async (t) => {
  const none = await cli([])
  t.equal(none.code, 2)
  t.match(none.stderr, /^Usage: sts-vending <command>/)
  const unknown = await cli(['deploy'])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown command "deploy" \(commands: provision, provision-rrsa, policy, verify, check-config, deny, allow, sidecar\)/)
  t.ok(oneLine(unknown.stderr))
  // Issue 24: a typo gets the nearest command; another word does not.
  for (const [typo, meant] of <Array<[string, string]>>[['provison', 'provision'], ['polcy', 'policy'], ['verfiy', 'verify'], ['Sidecar', 'sidecar'], ['provision-rsa', 'provision-rrsa']]) {
    const r = await cli([typo])
    t.equal(r.code, 2, typo)
    t.match(r.stderr, `unknown command "${typo}"; did you mean "${meant}"? (commands: `, typo)
    t.ok(oneLine(r.stderr))
  }
  t.notMatch(unknown.stderr, /did you mean/, 'no guess for a word that is not a typo')
  const inherited = await cli(['constructor'])
  t.equal(inherited.code, 2, 'only the table\'s own names are commands')
})

t.test('--help for the program and each command', async (t) => {
  const main = await cli(['--help'])
  t.equal(main.code, 0)
  for (const name of Object.keys(commands)) t.match(main.stdout, new RegExp(`^  ${name} `, 'm'))
  for (const name of Object.keys(commands)) {
    const run = await cli([name, '--help'])
    t.equal(run.code, 0, name)
    t.match(run.stdout, new RegExp(`^Usage: sts-vending ${name} `), name)
    t.match(run.stdout, /^ {2}-h, --help {2,}show this help$/m, `${name} lists --help`)
    t.match(run.stdout, /^Exit (codes|status): 0 /m, `${name} documents its exit codes`)
    const short = await cli([name, '-h'])
    t.equal(short.stdout, run.stdout)
    const bad = await cli([name, '--no-such-flag'])
    t.equal(bad.code, 2, `${name}: an unknown flag is a usage error`)
    t.equal(bad.stderr, `sts-vending ${name}: Unknown option '--no-such-flag' (see 'sts-vending ${name} --help')\n`)
  }
})

t.test('--version prints the package version, in-process and as the real entry point', async (t) => {
  const run = await cli(['--version'])
  t.same(run, { code: 0, stdout: `${VERSION}\n`, stderr: '' })
  const spawned = await runSpawned(['--version'])
  t.same(spawned, { code: 0, stdout: `${VERSION}\n`, stderr: '' })
})

t.test('the entry point is an executable script', async (t) => {
  const source = readFileSync(join(ROOT, 'src/cli.ts'), 'utf8')
  t.ok(source.startsWith('#!/usr/bin/env node\n'))
})

/**
 * A copy of src/ beside a node_modules that holds every installed package except
 * `missing` (links to this checkout's), as `npm ci --omit=optional` leaves it.
 */
function installWithout (t: { teardown: (fn: () => void) => void }, missing: string[]): string {
  // Outside this checkout: Node looks for packages in every parent directory's node_modules.
  const dir = mkdtempSync(join(tmpdir(), 'stsv-cli-install-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true })
  const modules = join(ROOT, 'node_modules')
  mkdirSync(join(dir, 'node_modules'))
  for (const entry of readdirSync(modules)) {
    if (entry.startsWith('@')) {
      mkdirSync(join(dir, 'node_modules', entry))
      for (const pkg of readdirSync(join(modules, entry))) {
        if (!missing.includes(`${entry}/${pkg}`)) symlinkSync(join(modules, entry, pkg), join(dir, 'node_modules', entry, pkg))
      }
    } else if (!missing.includes(entry)) {
      symlinkSync(join(modules, entry), join(dir, 'node_modules', entry))
    }
  }
  return dir
}

t.test('without the optional packages: one line for the commands that need them, the rest runs', async (t) => {
  const root = installWithout(t, ['ali-oss', '@alicloud/ram20150501'])
  const verify = await runSpawned(['verify', '--url', 'http://127.0.0.1:1', '--token', JWT], { root })
  t.same(verify, { code: 2, stdout: '', stderr: 'sts-vending verify: needs the optional package ali-oss (npm install ali-oss)\n' })

  const provisionArgs = ['provision', '--account-id', '1234567890123456', '--bucket', 'oss-test', '--prefix', 'dir111/', '--ram-user', 'devops_test']
  const provision = await runSpawned([...provisionArgs, '--endpoint', 'http://127.0.0.1:1'], { root })
  t.same(provision, { code: 2, stdout: '', stderr: 'sts-vending provision: needs the optional package @alicloud/ram20150501 (npm install @alicloud/ram20150501)\n' })

  const dryRun = await runSpawned([...provisionArgs, '--dry-run'], { root })
  t.equal(dryRun.code, 0, `a dry run needs no RAM SDK: ${dryRun.stderr}`)
  t.match(dryRun.stdout, /^Dry run: nothing is read from or changed in RAM\./)

  const policy = await runSpawned(['policy', '--bucket', 'oss-test', '--prefix', 'dir111/'], { root })
  t.equal(policy.code, 0, policy.stderr)
  t.ok(JSON.parse(policy.stdout), 'policy prints its document')

  const sidecar = await runSpawned(['sidecar', '--help'], { root })
  t.equal(sidecar.code, 0, `the sidecar's module loads: ${sidecar.stderr}`)

  // The server's modules (app.ts and everything it imports) and the sidecar's load too.
  const app = spawnSync(process.execPath, [...TSX_NODE_ARGS, '--input-type=module', '-e', "await import('./src/app.ts'); await import('./src/cli/commands/sidecar.ts'); console.log('loaded')"], { cwd: root, encoding: 'utf8' })
  t.equal(app.stdout, 'loaded\n', `the server's and the sidecar's modules load without them: ${app.stderr.split('\n')[0] ?? ''}`)
  const absent = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('ali-oss')"], { cwd: root, encoding: 'utf8' })
  t.not(absent.status, 0, 'and ali-oss really is absent there')
})
