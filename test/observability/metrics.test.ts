// Observability: counters move exactly with a scripted sequence; the audit trail
// records issuances and refusals without secrets; request ids correlate log lines.
import t from 'tap'
import { build } from '../helpers/build.js'

function value (text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels === '' ? ' ' : `{${labels}} `}`))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

t.test('metrics after misses, hits, a throttle and a 401', async (t) => {
  const sleeps: number[] = []
  const h = await build(t, { deps: { sleep: async (ms) => { sleeps.push(ms) } } })
  const alice = h.token({ sub: 'alice' })
  t.equal((await h.vend(alice)).statusCode, 200) // miss
  t.equal((await h.vend(alice)).statusCode, 200) // hit
  t.equal((await h.vend(alice)).statusCode, 200) // hit
  h.emulator.inject({ kind: 'throttle', count: 1, retryAfterSeconds: 1 })
  t.equal((await h.vend(h.token({ sub: 'bob' }))).statusCode, 200) // miss, throttled once then ok
  t.equal((await h.vend('not.a.jwt')).statusCode, 401)
  t.equal((await h.vend(undefined)).statusCode, 401)

  const res = await h.app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/plain/)
  const m = res.body
  t.equal(value(m, 'stsv_cache_hits_total'), 2)
  t.equal(value(m, 'stsv_cache_misses_total'), 2)
  t.equal(value(m, 'stsv_cache_entries'), 2)
  t.equal(value(m, 'stsv_sts_assume_role_total', 'outcome="ok"'), 2)
  t.equal(value(m, 'stsv_sts_assume_role_total', 'outcome="throttled"'), 1)
  t.equal(value(m, 'stsv_sts_retries_total'), 1)
  t.equal(value(m, 'stsv_sts_circuit_state'), 0)
  // A missing token is `malformed` too: the labels are the refusal reasons (auth/refusal.ts).
  t.equal(value(m, 'stsv_jwt_failures_total', 'reason="malformed"'), 2)
  t.equal(value(m, 'stsv_credentials_issued_total', 'grant="uploads",source="sts"'), 2)
  t.equal(value(m, 'stsv_credentials_issued_total', 'grant="uploads",source="cache"'), 2)
  t.equal(value(m, 'stsv_http_requests_total', 'route="/credentials",method="POST",status="200"'), 4)
  t.equal(value(m, 'stsv_http_requests_total', 'route="/credentials",method="POST",status="401"'), 2)
  t.ok(value(m, 'stsv_http_request_duration_seconds_count', 'route="/credentials",method="POST",status="200"') === 4)
  t.match(m, /stsv_nodejs_eventloop_lag_seconds/, 'process and event-loop metrics')
  t.notMatch(m, /alice|bob|dir111/, 'no subjects or prefixes in labels')

  // The tallied counters: what was counted since the last scrape is added once, no more.
  t.equal((await h.vend(alice)).statusCode, 200) // hit
  const again = (await h.app.inject('/metrics')).body
  t.equal(value(again, 'stsv_credentials_issued_total', 'grant="uploads",source="cache"'), 3, 'one more hit, counted once')
  t.equal(value(again, 'stsv_http_requests_total', 'route="/credentials",method="POST",status="200"'), 5)
  const third = (await h.app.inject('/metrics')).body
  t.equal(value(third, 'stsv_credentials_issued_total', 'grant="uploads",source="cache"'), 3, 'a scrape with nothing new adds nothing')
  t.equal(value(third, 'stsv_http_requests_total', 'route="/metrics",method="GET",status="200"'), 2, 'the scrapes themselves, as they finished')
})

t.test('metrics on a separate port are not served on the main one', async (t) => {
  const h = await build(t, { config: (c) => ({ ...c, metrics: { port: 0 + 39_000 + Math.floor(Math.random() * 1000) } }) })
  t.equal((await h.app.inject('/metrics')).statusCode, 404)
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const res = await fetch(`http://127.0.0.1:${h.config.metrics.port}/metrics`)
  t.equal(res.status, 200)
  t.match(await res.text(), /stsv_cache_hits_total/)
})

t.test('audit lines for issuance and refusal; request ids correlate', async (t) => {
  const h = await build(t)
  const token = h.token({ sub: 'alice' })
  const ok = await h.vend(token, {}, { 'x-request-id': 'ingress-abc-123' })
  t.equal(ok.headers['x-request-id'], 'ingress-abc-123', 'the incoming id is returned')
  const bad = await h.vend(token, { prefix: 'elsewhere/' })
  t.equal(bad.statusCode, 403)
  t.match(bad.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'generated when absent')
  const hostile = await h.vend(token, {}, { 'x-request-id': 'bad id\u0001' })
  t.not(hostile.headers['x-request-id'], 'bad id\u0001', 'an unsafe incoming id is replaced')

  const audit = h.logs.map((l) => JSON.parse(l)).filter((l) => l.log === 'audit')
  const issued = audit.find((l) => l.event === 'credentials.issued')
  t.match(issued, {
    requestId: 'ingress-abc-123',
    issuer: 'app',
    subject: 'alice',
    grant: 'uploads',
    prefix: 'dir111/dir111_secondline1/alice/',
    actions: ['list', 'read', 'write'],
    roleSessionName: String,
    durationSeconds: 3600,
    expiration: ok.json.expiration,
    fromCache: false,
    accessKeyIdPrefix: ok.json.accessKeyId.slice(0, 12)
  })
  t.ok(typeof issued.time === 'number')
  const line = JSON.stringify(issued)
  t.notOk(line.includes(ok.json.accessKeySecret) || line.includes(ok.json.securityToken) || line.includes(ok.json.accessKeyId), 'no secret, token or full key id')
  t.match(audit.find((l) => l.event === 'credentials.refused'), { statusCode: 403, code: 'STS_VENDING_PREFIX_NOT_ALLOWED', subject: 'alice', requestId: bad.headers['x-request-id'] })
  const ofRequest = h.logs.filter((l) => l.includes('"reqId":"ingress-abc-123"') || l.includes('"requestId":"ingress-abc-123"')).map((l) => JSON.parse(l))
  t.same(ofRequest.map((l) => l.msg).sort(), ['credentials issued', 'request completed'], 'the request line and the audit line both carry the id')
})
