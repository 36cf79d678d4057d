// The demo page in a real browser (Debian's Chromium, driven by playwright-core): a user
// signs in, uploads a file with ali-oss straight to the OSS emulator using credentials
// from POST /credentials, sees it listed, and is refused when uploading outside their
// directory. The screenshot goes to test-artifacts/demo.png, or to docs/demo.png (the
// README's picture) with UPDATE_SCREENSHOT=1.
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { pino } from 'pino'
import { startDevStack } from '../../devkit/dev/stack.js'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing: install it with scripts/install-system-deps.sh (CI does) to run the browser test`)
} else {
  t.test('the demo page uploads inside the user\'s directory and is refused outside it', async (t) => {
    const { chromium } = await import('playwright-core')
    const stack = await startDevStack({ logger: pino({ level: 'silent' }) })
    t.teardown(stack.close)
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 30_000 })
    t.teardown(() => browser.close())
    const page = await browser.newPage({ viewport: { width: 900, height: 760 } })
    const pageErrors: string[] = []
    page.on('pageerror', (err) => pageErrors.push(err.message))
    const cspViolations: string[] = []
    page.on('console', (msg) => { if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text()) })
    // Chrome compiles `pattern` with the `v` flag; one it cannot compile is ignored with
    // only this console message, and the client-side check is silently off.
    const patternErrors: string[] = []
    page.on('console', (msg) => { if (/pattern attribute/i.test(msg.text())) patternErrors.push(msg.text()) })

    // Issue 24: nothing the page loads is missing (a favicon 404 read as a broken stack).
    const notFound: string[] = []
    page.on('response', (res) => { if (res.status() === 404) notFound.push(new URL(res.url()).pathname) })
    await page.goto(`${stack.url}/demo`)
    const names = [
      { value: 'alice', valid: true, desc: 'the default' },
      { value: 'a-b_c9', valid: true, desc: 'dash, underscore and digits' },
      { value: 'a'.repeat(32), valid: true, desc: '32 characters' },
      { value: 'Alice', valid: false, desc: 'upper case' },
      { value: '-alice', valid: false, desc: 'a leading dash' },
      { value: 'al ice', valid: false, desc: 'a space' },
      { value: 'a'.repeat(33), valid: false, desc: '33 characters' },
      { value: '../x', valid: false, desc: 'a path' }
    ]
    for (const n of names) {
      await page.fill('#user', n.value)
      const mismatch = await page.$eval('#user', (el) => (el as HTMLInputElement).validity.patternMismatch)
      t.equal(mismatch, !n.valid, `user name check in the page: ${n.desc}`)
    }
    t.same(patternErrors, [], 'the browser compiled the pattern')
    await page.fill('#user', 'alice')
    await page.click('#signin')
    await page.waitForSelector('#who:not([hidden])', { timeout: 30_000 })
    t.equal(await page.textContent('#prefix'), 'users/alice/')

    const content = Buffer.from('hello from a real browser\n')
    await page.setInputFiles('#file', { name: 'hello.txt', mimeType: 'text/plain', buffer: content })
    await page.click('#upload')
    await page.waitForSelector('#status.ok >> text=Uploaded users/alice/hello.txt', { timeout: 30_000 })
    t.ok(stack.oss.object('users/alice/hello.txt')?.body.equals(content), 'the file is in the OSS emulator under the user\'s prefix')
    await page.waitForSelector('#listing li >> text=users/alice/hello.txt')

    await page.click('#outside')
    await page.waitForSelector('#status.denied', { timeout: 30_000 })
    const denial = await page.textContent('#status')
    t.match(denial, /users\/someone-else\/hello\.txt failed with AccessDenied/, 'the page shows OSS\'s denial')
    t.same(stack.oss.keys(), ['users/alice/hello.txt'], 'nothing was stored outside')
    t.ok(stack.oss.requests.some((r) => r.operation === 'PutObject' && r.key === 'users/someone-else/hello.txt' && r.outcome === 'AccessDenied'), 'the emulator refused it')
    t.ok(stack.oss.requests.some((r) => r.operation === 'Preflight' && r.outcome === 'ok'), 'cross-origin, through a CORS preflight')

    // A signed form: no credentials on the page, the file posted straight to OSS.
    const formContent = Buffer.from('posted with a signed form\n')
    await page.setInputFiles('#file', { name: 'form.txt', mimeType: 'text/plain', buffer: formContent })
    const signedForm = page.waitForResponse((r) => r.url().endsWith('/uploads/form'))
    await page.click('#form-upload')
    const form = await (await signedForm).json() as { url: string, fields: Record<string, string> }
    await page.waitForSelector('#status.ok >> text=/Uploaded users\\/alice\\/[0-9a-f]{32}\\/form\\.txt with a signed form; the app answered: the app received users\\/alice\\/[0-9a-f]{32}\\/form\\.txt \\(26 bytes\\)/', { timeout: 30_000 })
    t.equal(stack.appServer.events.length, 1, 'OSS called back, the service verified and forwarded once')
    t.match(stack.appServer.events[0], { type: 'upload.completed', grant: 'uploads', key: form.fields.key, size: formContent.length })
    t.ok(form.fields.callback !== undefined && form.fields['x-oss-forbid-overwrite'] === 'true', 'a callback form, written once')
    // The same form again, as a client would re-post it: refused by OSS (the emulator).
    const again = new FormData()
    for (const [k, v] of Object.entries(form.fields)) again.append(k, v)
    again.append('file', new Blob(['replayed']), 'form.txt')
    const replay = await fetch(form.url, { method: 'POST', body: again })
    t.equal(replay.status, 409, 'a second post of the same form: FileAlreadyExists')
    t.equal(stack.appServer.events.length, 1, 'and no second event')
    const formKey = stack.oss.keys().find((k) => /^users\/alice\/[0-9a-f]{32}\/form\.txt$/.test(k))
    t.ok(formKey !== undefined && stack.oss.object(formKey)?.body.equals(formContent), 'the form upload landed under a key the service picked in the user\'s directory')
    t.ok(stack.oss.requests.some((r) => r.operation === 'PostObject' && r.key === formKey && r.outcome === 'ok'), 'through PostObject')
    await page.waitForSelector(`#listing li >> text=${formKey ?? 'missing'}`)

    const target = process.env.UPDATE_SCREENSHOT === '1' ? `${ROOT}docs/demo.png` : `${ROOT}test-artifacts/demo.png`
    await mkdir(dirname(target), { recursive: true })
    await page.screenshot({ path: target, fullPage: true })
    t.ok(existsSync(target), `screenshot at ${target}`)
    t.same(notFound, [], 'no 404 for anything the page loads, the favicon included')
    t.same(pageErrors, [], 'no script errors on the page')
    t.same(cspViolations, [], 'nothing blocked by the Content-Security-Policy')
  })
}
