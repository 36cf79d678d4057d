// Request and audit logging: one line per request with the fields correlation needs,
// none for quiet routes, a scrubbed path only for unmatched requests, and an audit
// trail that no LOG_LEVEL switches off.
import t from 'tap'
import { pino } from 'pino'
import { build } from '../helpers/build.js'
import { keptChild, loggerOptions } from '../../src/observability/logger.js'

const parse = (lines: string[]): Array<Record<string, any>> => lines.map((l) => JSON.parse(l) as Record<string, any>)

t.test('one request line per request, written once the answer is sent', async (t) => {
  const h = await build(t)
  const ok = await h.vend(h.token({ sub: 'alice' }), {}, { 'x-request-id': 'req-one' })
  t.equal(ok.statusCode, 200)
  const denied = await h.vend('not.a.jwt', {}, { 'x-request-id': 'req-two' })
  t.equal(denied.statusCode, 401)
  const logs = parse(h.logs)
  t.equal(logs.filter((l) => l.msg === 'incoming request').length, 0, 'no "incoming request" line')
  const lines = logs.filter((l) => l.msg === 'request completed')
  t.equal(lines.length, 2, 'one line per request')
  t.match(lines[0], { level: 30, reqId: 'req-one', method: 'POST', route: '/credentials', statusCode: 200, responseTime: Number })
  t.match(lines[1], { level: 30, reqId: 'req-two', method: 'POST', route: '/credentials', statusCode: 401 })
  t.same(Object.keys(lines[0] ?? {}).sort(), ['hostname', 'level', 'method', 'msg', 'pid', 'reqId', 'responseTime', 'route', 'statusCode', 'time'], 'nothing else: no headers, no body, no URL')
})

t.test('probes and other quiet routes write no request line at info', async (t) => {
  const h = await build(t)
  for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
    t.equal((await h.app.inject(url)).statusCode, 200, url)
  }
  t.equal(parse(h.logs).filter((l) => l.msg === 'request completed').length, 0)
})

t.test('an unmatched request logs its path without query or anything token-shaped', async (t) => {
  const h = await build(t)
  const token = h.token({ sub: 'alice' })
  const res = await h.app.inject({ method: 'GET', url: `/x/${token}/y?token=${token}` })
  t.equal(res.statusCode, 404)
  const line = parse(h.logs).find((l) => l.msg === 'request completed')
  t.match(line, { route: null, statusCode: 404, url: '/x/[redacted-jwt]/y?[redacted]' })
})

const LEVELS = ['error', 'silent']
for (const level of LEVELS) {
  t.test(`LOG_LEVEL=${level}: every issuance still has its audit line`, async (t) => {
    const lines: string[] = []
    const h = await build(t, { deps: { logger: pino(loggerOptions(level), { write: (l: string) => { lines.push(l) } }) } })
    const token = h.token({ sub: 'carol' })
    const first = await h.vend(token)
    const second = await h.vend(token)
    t.equal(first.statusCode, 200)
    t.equal(second.statusCode, 200)
    const logs = parse(lines)
    t.same(logs.map((l) => l.event), ['credentials.issued', 'credentials.issued'], 'the audit lines, and nothing else')
    t.match(logs[1], { log: 'audit', level: 30, subject: 'carol', fromCache: true })
    const text = lines.join('')
    for (const secret of [token, first.json.accessKeySecret, first.json.securityToken, first.json.accessKeyId]) {
      t.notOk(text.includes(secret), 'no token, secret, security token or full key id')
    }
  })
}

t.test('request.log: made on first use, with the request id and the route\'s level, redacting as before', async (t) => {
  const lines: string[] = []
  const parent = pino(loggerOptions('info'), { write: (l: string) => { lines.push(l) } })
  let children = 0
  const counted = new Proxy(parent, {
    get (target, prop, receiver) {
      if (prop === 'child') return (...args: Parameters<typeof parent.child>) => { children++; return target.child(...args) }
      return Reflect.get(target, prop, receiver)
    }
  })
  const { lazyRequestLogger } = await import('../../src/observability/request-log.js')
  const quiet = lazyRequestLogger(counted, { reqId: 'r-1' }, { level: 'warn' })
  t.equal(quiet.level, 'warn', 'the route\'s level without making the child')
  t.equal(children, 0)
  const log = lazyRequestLogger(counted, { reqId: 'r-2' }, {})
  t.equal(log.level, 'info')
  log.info({ authorization: 'Bearer abc.def.ghi' }, 'first')
  log.error('second')
  t.equal(children, 1, 'one child, made by the first line')
  const grandchild = log.child({ part: 'x' })
  grandchild.warn('third')
  const parsed = parse(lines)
  t.match(parsed, [{ reqId: 'r-2', msg: 'first', authorization: '[redacted]' }, { reqId: 'r-2', level: 50, msg: 'second' }, { reqId: 'r-2', part: 'x', msg: 'third' }])
  quiet.info('not at warn')
  t.equal(lines.length, 3, 'the route\'s level holds once made')
})

t.test('a refusal is logged through request.log with its request id (the lazy request logger)', async (t) => {
  const h = await build(t)
  const res = await h.app.inject({ method: 'POST', url: '/credentials', headers: { 'content-type': 'application/json', 'x-request-id': 'req-bad' }, payload: '{}' })
  t.equal(res.statusCode, 401)
  const refused = parse(h.logs).filter((l) => l.msg === 'request refused')
  t.match(refused, [{ reqId: 'req-bad', code: 'STS_VENDING_MISSING_TOKEN', reason: 'malformed' }])
  t.notOk('err' in (refused[0] ?? {}), 'a refusal is not an error: no error object, no stack')
})

t.test('a kept child writes the same bytes as pino\'s own child', async (t) => {
  const out: string[] = []
  const root = pino({ level: 'info', timestamp: false, base: { pid: 1, hostname: 'h' } }, { write: (s: string) => { out.push(s) } })
  const bindings = { event: 'credentials.issued', subject: 'ünïcödé "quoted" \\ 中文', actions: ['list', 'read'], fromCache: true, n: 3600 }
  keptChild(root, bindings).info({ requestId: 'r-1' }, 'credentials issued')
  root.child(bindings).info({ requestId: 'r-1' }, 'credentials issued')
  t.equal(out.length, 2)
  t.equal(out[0], out[1], 'byte for byte')
  t.match(JSON.parse(out[0] ?? '{}'), { ...bindings, requestId: 'r-1', msg: 'credentials issued' })
})
