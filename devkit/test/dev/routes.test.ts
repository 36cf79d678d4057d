// The dev stack's own routes: the demo page and what a browser fetches with it.
import t from 'tap'
import { pino } from 'pino'
import { startDevStack } from '../../dev/stack.js'

t.test('the demo page has an icon: no favicon 404 in the dev stack', async (t) => {
  const stack = await startDevStack({ port: 0, logger: pino({ level: 'silent' }) })
  t.teardown(stack.close)
  const page = await stack.app.inject('/demo')
  t.equal(page.statusCode, 200)
  t.match(page.body, /<link rel="icon" href="\/favicon\.svg"/)
  for (const url of ['/favicon.ico', '/favicon.svg']) {
    const res = await stack.app.inject(url)
    t.equal(res.statusCode, 200, url)
    t.match(res.headers['content-type'], /^image\/svg\+xml/, url)
    t.match(res.body, /^<svg /, url)
  }
})
