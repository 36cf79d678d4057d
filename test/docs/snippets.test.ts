// Issue 24 item 7: every fenced JavaScript block of README.md and docs/*.md that calls
// the service runs as written, against the dev stack (its emulators, the real routes).
// A block that calls the service and that no runner below knows how to run fails the
// test, so a new snippet cannot go untested.
//
// How a block is run depends on what it is:
//   - a browser snippet (relative `fetch('/…')`): in-process, as the body of an async
//     function, with what a page has: `fetch` relative to the service, `myIdToken()`,
//     a `file` (File) and `bytes`, and `OSS` (ali-oss) for its import;
//   - a Node snippet (`require(`, `process.env`, `node:` imports): written to a file and
//     run by node in a child process (.cjs or .mjs), with the environment it names
//     (ALIBABA_CLOUD_CREDENTIALS_URI served by the sidecar, the secretEnv secret); a
//     preload sends `http://127.0.0.1:3000` (what `npm run dev` listens on) to the stack.
// Each must finish without an error and get credentials or a signature from the service
// (an audit line), and a block that uploads must have stored an object in the OSS emulator.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { pino } from 'pino'
import { parse } from 'yaml'
import OSS from 'ali-oss'
import { parseConfig } from '../../src/config/load.js'
import { startSidecar } from '../../src/cli/commands/sidecar.js'
import { createDevIssuer } from '../../devkit/dev/issuer.js'
import { startDevStack } from '../../devkit/dev/stack.js'
import { DEV_ROLE_ARN } from '../../devkit/dev/emulators.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEV_URL = 'http://127.0.0.1:3000'
const SECRET = 'a-shared-secret-of-more-than-32-bytes-é'
const ISSUER_MARKER = '<!-- test/docs/snippets.test.ts adds this issuer to the config it runs the snippets against -->'

interface Block { file: string, line: number, lang: string, code: string }

export function fencedBlocks (file: string, text: string): Block[] {
  const out: Block[] = []
  for (const m of text.matchAll(/^```(js|javascript|mjs|cjs|ts|typescript)\n([\s\S]*?)^```$/gm)) {
    out.push({ file, line: text.slice(0, m.index).split('\n').length, lang: m[1] as string, code: m[2] as string })
  }
  return out
}

/** Calls the service: a caller route by fetch, or the credentials_uri provider (through the sidecar). */
export function callsService (code: string): boolean {
  return /fetch\(\s*['`"][^'`"]*\/(credentials|uploads|grants)\b/.test(code) || /@alicloud\/credentials/.test(code)
}

export function kindOf (code: string): 'browser' | 'cjs' | 'esm' | undefined {
  if (/\brequire\(/.test(code)) return 'cjs'
  if (/process\.env|from 'node:|^import [\w{},\s]+ from '@alicloud\/credentials'/m.test(code)) return 'esm'
  if (/fetch\(\s*['`"]\//.test(code)) return 'browser'
  return undefined
}

const docs = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
const texts = new Map(docs.map((f) => [f, readFileSync(join(ROOT, f), 'utf8')]))
const blocks = docs.flatMap((f) => fencedBlocks(f, texts.get(f) as string)).filter((b) => callsService(b.code))

const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<unknown>

/** The issuers the README's secretEnv block configures. */
function readmeIssuers (): Array<Record<string, unknown>> {
  const readme = texts.get('README.md') as string
  const at = readme.indexOf(ISSUER_MARKER)
  if (at < 0) throw new Error('README.md: the secretEnv issuer marker is missing')
  const block = /^```yaml\n([\s\S]*?)^```$/m.exec(readme.slice(at))
  return (parse(block?.[1] ?? '') as { issuers: Array<Record<string, unknown>> }).issuers
}

t.test('the extraction finds the snippets and knows how to run each', async (t) => {
  t.ok(blocks.length >= 6, `${blocks.length} blocks call the service`)
  for (const b of blocks) t.ok(kindOf(b.code) !== undefined, `${b.file}:${b.line} has a runner`)
  t.ok(fencedBlocks('x', '```js\nfetch(\'/grants\')\n```\n').length === 1)
  t.notOk(callsService('const x = 1'), 'a block that calls nothing is not run')
})

t.test('every README/docs snippet that calls the service runs as written', async (t) => {
  // The dev stack with one grant for two issuers: a test identity provider (the page's
  // and the pod's tokens) and the README's secretEnv backend. Each caller's directory
  // names its issuer, so the two never share one.
  const idp = createDevIssuer()
  const config = parseConfig({
    issuers: [
      { name: 'app', issuer: idp.issuer, audience: idp.audience, publicKey: idp.publicKeyPem, algorithms: [idp.alg] },
      ...readmeIssuers()
    ],
    grants: [{ name: 'uploads', issuers: ['app', 'backend'], roleArn: DEV_ROLE_ARN, bucket: 'dev-bucket', region: 'cn-hangzhou', prefix: 'users/{issuer}/{sub}/', actions: ['list', 'read', 'write', 'delete'], durationSeconds: 3600, signing: { maxBytes: 10_485_760, expiresSeconds: 600 } }]
  })
  const logs: string[] = []
  const stack = await startDevStack({ logger: pino({ level: 'info' }, { write: (l: string) => { logs.push(l) } }), config, env: { MY_JWT_SECRET: SECRET } })
  t.teardown(stack.close)
  const dir = await mkdtemp(join(ROOT, '.snippets-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const tokenFile = join(dir, 'pod-token')
  await writeFile(tokenFile, idp.mint({ sub: 'pod' }))
  const sidecar = await startSidecar({ serviceUrl: stack.url, tokenFile, port: 0 })
  t.teardown(() => sidecar.close())
  const preload = join(dir, 'preload.mjs')
  await writeFile(preload, `const real = globalThis.fetch
globalThis.fetch = (url, init) => real(typeof url === 'string' && url.startsWith(${JSON.stringify(DEV_URL)}) ? process.env.SNIPPET_SERVICE_URL + url.slice(${DEV_URL.length}) : url, init)
`)

  const handedOut = (): number => logs.filter((l) => /"event":"(credentials\.issued|upload\.signed)"/.test(l)).length
  const stored = (): number => stack.oss.keys().length

  for (const [i, b] of blocks.entries()) {
    const where = `${b.file}:${b.line}`
    const before = { handedOut: handedOut(), stored: stored() }
    const kind = kindOf(b.code)
    if (kind === 'browser') {
      const code = b.code.replace(/^import OSS from 'ali-oss'$/m, '')
      const pageFetch = async (url: string | URL, init?: RequestInit): Promise<Response> => await fetch(typeof url === 'string' && url.startsWith('/') ? `${stack.url}${url}` : url, init)
      const myIdToken = async (): Promise<string> => idp.mint({ sub: 'alice' })
      // ali-oss in Node takes a Buffer where a page hands it a File.
      const content = `from ${where}\n`
      const file = /client\.put\(/.test(code) ? Buffer.from(content) : new File([content], `snippet-${i}.txt`, { type: 'text/plain' })
      const bytes = Buffer.from(`bytes from ${where}\n`)
      await t.resolves(new AsyncFunction('OSS', 'fetch', 'myIdToken', 'file', 'bytes', code)(OSS, pageFetch, myIdToken, file, bytes), `${where}: runs`)
    } else if (kind !== undefined) {
      const path = join(dir, `snippet-${i}.${kind === 'cjs' ? 'cjs' : 'mjs'}`)
      await writeFile(path, b.code)
      const r = await runNode(path, preload, { ALIBABA_CLOUD_CREDENTIALS_URI: sidecar.url, MY_JWT_SECRET: SECRET, SNIPPET_SERVICE_URL: stack.url })
      t.equal(r.code, 0, `${where}: node runs it (${kind})${r.stderr !== '' ? `: ${r.stderr.split('\n').slice(0, 8).join(' ')}` : ''}`)
    } else {
      t.fail(`${where}: calls the service, but no runner knows how to run it`)
      continue
    }
    t.ok(handedOut() > before.handedOut, `${where}: the service handed out credentials or a signature`)
    if (/client\.put\(|fetch\(url/.test(b.code)) t.ok(stored() > before.stored, `${where}: its upload is in the OSS emulator`)
  }
  t.ok(stack.oss.keys().some((k) => k.startsWith('users/app/alice/')), 'uploads went into the caller\'s directory')

  // The runner can fail: the README's former line, as an ES module, is what users hit.
  const former = join(dir, 'former.mjs')
  await writeFile(former, "import Credential, { Config } from '@alicloud/credentials'\nconst cred = new Credential(new Config({ type: 'credentials_uri', credentialsURI: process.env.ALIBABA_CLOUD_CREDENTIALS_URI }))\nawait cred.getCredential()\n")
  const r = await runNode(former, preload, { ALIBABA_CLOUD_CREDENTIALS_URI: sidecar.url })
  t.not(r.code, 0, 'the former snippet fails under the same runner')
  t.match(r.stderr, /Credential is not a constructor/)
})

async function runNode (file: string, preload: string, env: Record<string, string>): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(process.execPath, ['--import', preload, file], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  clearTimeout(timer)
  return { code, stderr }
}
