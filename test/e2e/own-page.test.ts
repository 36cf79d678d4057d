// Issue 24 item 5: a front-end developer's own page, served from another origin (here
// another loopback port, as a Vite dev server on :5173 would be), allowed with
// `--allow-origin`, reads GET /grants, gets credentials from POST /credentials and
// uploads with ali-oss straight to the OSS emulator, in Chromium. Without the flag the
// same page is refused by the service's CORS (403 origin-not-allowed).
import { existsSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { pino } from 'pino'
import { startDevStack } from '../../devkit/dev/stack.js'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const SDK = readFileSync(createRequire(import.meta.url).resolve('ali-oss/dist/aliyun-oss-sdk.min.js'))

// The page: the service's URL and the token come in the fragment (never sent to a server).
const PAGE = `<!doctype html><meta charset="utf-8"><title>my app</title>
<script src="/aliyun-oss-sdk.min.js"></script>
<pre id="out">…</pre>
<script>
(async () => {
  const [service, jwt] = decodeURIComponent(location.hash.slice(1)).split(' ')
  const auth = { authorization: 'Bearer ' + jwt }
  const out = (s) => { document.getElementById('out').textContent = s }
  try {
    const g = await fetch(service + '/grants', { headers: auth })
    if (!g.ok) throw new Error('GET /grants: ' + g.status + ' ' + (await g.json()).code)
    const { grants: [grant] } = await g.json()
    const res = await fetch(service + '/credentials', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ grant: grant.name }) })
    if (!res.ok) throw new Error('POST /credentials: ' + res.status)
    const c = await res.json()
    const client = new OSS({ region: c.ossRegion, endpoint: c.endpoint, bucket: c.bucket, accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, stsToken: c.securityToken })
    await client.put(grant.prefix + 'from-my-page.txt', new Blob(['uploaded from my own page\\n'], { type: 'text/plain' }))
    out('done ' + grant.prefix)
  } catch (err) {
    out('failed ' + err.message)
  }
})()
</script>`

async function servePage (): Promise<{ origin: string, server: Server }> {
  const server = createServer((req, res) => {
    if (req.url === '/aliyun-oss-sdk.min.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(SDK)
    else if (req.url === '/' || req.url === '/index.html') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE)
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing: install it with scripts/install-system-deps.sh (CI does) to run the browser test`)
} else {
  t.test('a page on another origin, allowed by --allow-origin, lists its grants, gets credentials and uploads', async (t) => {
    const { chromium } = await import('playwright-core')
    const page = await servePage()
    t.teardown(() => { page.server.close() })
    const allowed = await startDevStack({ logger: pino({ level: 'silent' }), allowOrigins: [page.origin] })
    t.teardown(allowed.close)
    const refused = await startDevStack({ logger: pino({ level: 'silent' }) })
    t.teardown(refused.close)
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 30_000 })
    t.teardown(() => browser.close())

    const tab = await browser.newPage()
    const errors: string[] = []
    tab.on('pageerror', (err) => errors.push(err.message))
    await tab.goto(`${page.origin}/#${encodeURIComponent(`${allowed.url} ${allowed.issuer.mint({ sub: 'carol' })}`)}`)
    await tab.waitForSelector('#out:text-matches("^(done|failed)")', { timeout: 30_000 })
    t.equal(await tab.textContent('#out'), 'done users/carol/', 'the page read its directory from GET /grants and uploaded')
    t.equal(allowed.oss.object('users/carol/from-my-page.txt')?.body.toString(), 'uploaded from my own page\n', 'the object is in the OSS emulator')
    t.ok(allowed.oss.requests.some((r) => r.operation === 'Preflight' && r.outcome === 'ok'), 'through the OSS emulator\'s CORS preflight')
    t.same(errors, [], 'no script errors')

    const other = await browser.newPage()
    await other.goto(`${page.origin}/#${encodeURIComponent(`${refused.url} ${refused.issuer.mint({ sub: 'carol' })}`)}`)
    await other.waitForSelector('#out:text-matches("^(done|failed)")', { timeout: 30_000 })
    t.match(await other.textContent('#out'), /^failed /, 'without --allow-origin the page is refused')
    t.same(refused.oss.keys(), [], 'and nothing is uploaded')
  })
}
