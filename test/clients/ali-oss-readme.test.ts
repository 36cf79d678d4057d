// The README's ali-oss snippet, run as written: the fenced block under the marker comment
// is extracted from README.md and run in-process (as the body of an async function)
// with the real ali-oss against the real service, the STS emulator and the OSS
// emulator. Only `fetch` (to prefix the service's URL), `myIdToken` and `file` are
// supplied, as a page would have them.
//
// The clock is Node's mocked Date, shared by the service, both emulators, the token
// minter and ali-oss: credentials are handed out near the freshness margin, then time
// moves past `refreshAfterSeconds` (ali-oss must refresh before expiration) and past
// the first credentials' expiration. The same block with the README's former fixed
// interval (30 minutes) fails there with SecurityTokenExpired, which proves the test
// can fail.
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { mock } from 'node:test'
import t, { type Test } from 'tap'
import OSS from 'ali-oss'
import { buildE2e, outcome } from '../helpers/oss.js'
import { assertContract } from '../helpers/contract.js'

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
const MARKER = '<!-- test/clients/ali-oss-readme.test.ts runs this block as written -->'

/** The fenced js block right after the marker, without its import (supplied as a parameter). */
function readmeSnippet (readme: string): string {
  const at = readme.indexOf(MARKER)
  if (at < 0) throw new Error('README.md: the ali-oss snippet marker is missing')
  const block = /^```js\n([\s\S]*?)^```$/m.exec(readme.slice(at + MARKER.length))
  if (block?.[1] === undefined || readme.slice(at + MARKER.length).trimStart().startsWith('```js') === false) {
    throw new Error('README.md: no ```js block right after the ali-oss snippet marker')
  }
  const body = block[1]
  if (!/^import OSS from 'ali-oss'$/m.test(body)) throw new Error('README.md: the snippet no longer imports ali-oss as OSS')
  return body.replace(/^import OSS from 'ali-oss'$/m, '')
}

const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<unknown>

const MARGIN = 1200 // cache.minRemainingSeconds (the harness's default)
const DURATION = MARGIN + 300 // the shortest grant the service accepts
const NEAR_MARGIN = 290 // seconds between the first vend and the snippet: the snippet gets credentials 10 s above the margin

async function run (t: Test, snippet: string): Promise<{ steps: string[], refreshedBeforeExpiry: boolean, remaining: number, refreshAfter: number }> {
  // Mocked before anything starts, so that every clock (`Date.now` captured at build included) is this one.
  mock.timers.enable({ apis: ['Date'], now: Date.now() })
  t.teardown(() => { mock.timers.reset() })
  const h = await buildE2e(t, {
    config: (c) => ({ ...c, grants: (c.grants as object[]).map((g) => ({ ...g, durationSeconds: DURATION })) })
  })
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`

  // Another session of alice's warmed the service's cache; time passes.
  t.equal((await h.vend(h.token({ sub: 'alice' }))).statusCode, 200)
  mock.timers.tick(NEAR_MARGIN * 1000)

  const answers: any[] = []
  const pageFetch = async (path: string, init: RequestInit): Promise<Response> => {
    const res = await fetch(`${base}${path}`, init)
    const json = await res.json()
    h.secret(json.accessKeySecret)
    h.secret(json.securityToken)
    const headers: Record<string, string> = {}
    res.headers.forEach((value, name) => { headers[name] = value })
    assertContract(t, { method: 'POST', path, statusCode: res.status, headers, body: json })
    answers.push(json)
    return Response.json(json, { status: res.status })
  }
  const myIdToken = async (): Promise<string> => h.token({ sub: 'alice' })
  const file = Buffer.from('hello from the README\n')
  const body = `${snippet}\nreturn { client, c }`
  const { client, c } = await new AsyncFunction('OSS', 'fetch', 'myIdToken', 'file', body)(OSS, pageFetch, myIdToken, file) as { client: any, c: any }
  t.ok(h.oss.object(`${c.prefix}photo.jpg`)?.body.equals(file), 'the snippet\'s upload landed, at the grant\'s endpoint')
  const remaining = (Date.parse(c.expiration) - Date.now()) / 1000
  const steps = ['ok']

  // Past refreshAfterSeconds, before the first credentials expire.
  mock.timers.tick((c.refreshAfterSeconds + 150) * 1000)
  t.ok(Date.now() < Date.parse(c.expiration), 'still before the first expiration')
  steps.push(await outcome(client.put(`${c.prefix}second.txt`, file)))
  const refreshedBeforeExpiry = client.options.accessKeyId !== c.accessKeyId

  // Past the first credentials' expiration, still short of the former 30-minute interval.
  mock.timers.tick((Date.parse(c.expiration) - Date.now()) + 60_000)
  t.ok((Date.now() - Date.parse(c.expiration)) / 1000 + remaining < 30 * 60, 'short of 30 minutes after the first upload')
  steps.push(await outcome(client.put(`${c.prefix}third.txt`, file)))
  t.ok(answers.length >= 1 && answers.every((a) => typeof a.refreshAfterSeconds === 'number'), 'every answer says when to refresh')
  return { steps, refreshedBeforeExpiry, remaining, refreshAfter: c.refreshAfterSeconds }
}

t.test('the README\'s ali-oss snippet keeps uploading across a refresh, with credentials near the margin', async (t) => {
  const r = await run(t, readmeSnippet(README))
  t.ok(r.remaining > MARGIN && r.remaining <= MARGIN + 10, `credentials near the margin (${r.remaining} s left)`)
  t.equal(r.refreshAfter, Math.floor(r.remaining) - 300, 'refreshAfterSeconds: the time left less five minutes')
  t.ok(r.refreshedBeforeExpiry, 'ali-oss fetched new credentials before the first ones expired')
  t.same(r.steps, ['ok', 'ok', 'ok'], 'every upload succeeded')
})

t.test('the same snippet with the former fixed 30-minute interval signs with expired credentials', async (t) => {
  const current = readmeSnippet(README)
  const former = current.replace(/\b[cn]\.refreshAfterSeconds \* 1000/g, '30 * 60 * 1000')
  t.equal(current.match(/\b[cn]\.refreshAfterSeconds \* 1000/g)?.length, 2, 'the snippet sets the interval at creation and on each refresh')
  const r = await run(t, former)
  t.notOk(r.refreshedBeforeExpiry, 'no refresh on a 30-minute timer')
  t.same(r.steps, ['ok', 'ok', 'SecurityTokenExpired'], 'OSS refuses the expired credentials')
})

t.test('the extractor refuses a README without the marked block', async (t) => {
  t.throws(() => readmeSnippet('# nothing here'), /marker is missing/)
  t.throws(() => readmeSnippet(`${MARKER}\n\nSome text\n\`\`\`js\nimport OSS from 'ali-oss'\n\`\`\`\n`), /right after/)
  t.throws(() => readmeSnippet(`${MARKER}\n\`\`\`js\nconst x = 1\n\`\`\`\n`), /imports ali-oss/)
})
