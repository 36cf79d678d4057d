// POST /credentials over the app, against the STS emulator through the real SDK.
import t from 'tap'
import { build, ROLE_ARN } from '../../helpers/build.js'
import { assertContract, exchange } from '../../helpers/contract.js'
import { isAllowedByAll } from '../../../devkit/policy/evaluate.js'

const DIR = 'dir111/dir111_secondline1/'

t.test('a valid caller gets credentials narrowed to its directory', async (t) => {
  const h = await build(t)
  const res = await h.vend(h.token({ sub: 'alice' }))
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.json, {
    accessKeyId: /^STS\./,
    accessKeySecret: String,
    securityToken: String,
    expiration: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    bucket: 'oss-test',
    region: 'cn-hangzhou',
    endpoint: 'https://oss-cn-hangzhou.aliyuncs.com',
    prefix: `${DIR}alice/`,
    actions: ['list', 'read', 'write']
  })
  t.same(Object.keys(res.json).sort(), ['accessKeyId', 'accessKeySecret', 'actions', 'bucket', 'endpoint', 'expiration', 'ossRegion', 'prefix', 'refreshAfterSeconds', 'region', 'securityToken'].sort(), 'no field beyond the contract')
  t.equal(h.emulator.callCount, 1)
  const call = h.emulator.calls[0]!
  t.equal(call.roleArn, ROLE_ARN)
  t.equal(call.durationSeconds, 3600)
  t.match(call.roleSessionName, /^[A-Za-z0-9.@_-]{2,64}$/)
  t.ok(call.roleSessionName.includes('alice'), 'ActionTrail shows who it was')

  // Evaluate the session policy that went upstream, not its text.
  const policy = JSON.parse(call.policy!)
  const obj = (action: string, key: string): boolean => isAllowedByAll([policy], { action, resource: `acs:oss:*:*:oss-test/${key}` })
  const list = (prefix: string): boolean => isAllowedByAll([policy], { action: 'oss:ListObjects', resource: 'acs:oss:*:*:oss-test', context: { 'oss:Prefix': prefix } })
  t.ok(obj('oss:PutObject', `${DIR}alice/photo.jpg`), 'put inside')
  t.ok(obj('oss:GetObject', `${DIR}alice/a/b/c.txt`), 'get deep inside')
  t.notOk(obj('oss:DeleteObject', `${DIR}alice/photo.jpg`), 'delete was not granted')
  t.notOk(obj('oss:PutObject', `${DIR}bob/photo.jpg`), 'not in bob\'s directory')
  t.notOk(obj('oss:PutObject', `${DIR}alice2/x`), 'not in a lookalike sibling')
  t.notOk(obj('oss:PutObject', `${DIR}x`), 'not in the parent')
  t.notOk(obj('oss:GetObject', 'other/alice/x'), 'not elsewhere in the bucket')
  t.ok(list(`${DIR}alice/`), 'list own directory')
  t.notOk(list(DIR), 'not the parent listing')
  t.notOk(list(''), 'not the bucket root')
})

t.test('the cache: a repeat makes no STS call, 100 concurrent first requests make one', async (t) => {
  const h = await build(t)
  const token = h.token({ sub: 'carol' })
  const first = await h.vend(token)
  const second = await h.vend(token)
  t.equal(h.emulator.callCount, 1, 'repeat served from cache')
  t.equal(second.json.accessKeyId, first.json.accessKeyId)

  const dave = h.token({ sub: 'dave' })
  const results = await Promise.all(Array.from({ length: 100 }, async () => h.vend(dave)))
  t.ok(results.every((r) => r.statusCode === 200), 'all 200')
  t.equal(new Set(results.map((r) => r.json.accessKeyId)).size, 1, 'identical credentials')
  t.equal(h.emulator.callCount, 2, 'exactly one more AssumeRole for 100 concurrent requests')

  const narrower = await h.vend(token, { actions: ['read'] })
  t.equal(narrower.statusCode, 200)
  t.not(narrower.json.accessKeyId, first.json.accessKeyId, 'a different scope is a different cache entry')
  t.same(narrower.json.actions, ['read'])
  t.equal(h.emulator.callCount, 3)
})

t.test('concurrent callers on a cold cache each get their own prefix', async (t) => {
  const h = await build(t)
  const subs = ['alice', 'bob', 'erin', 'frank']
  const res = await Promise.all(subs.flatMap((sub) => [1, 2, 3].map(async () => ({ sub, r: await h.vend(h.token({ sub })) }))))
  for (const { sub, r } of res) t.equal(r.json.prefix, `${DIR}${sub}/`)
  t.equal(h.emulator.callCount, subs.length)
  const byKey = new Map(h.emulator.calls.map((c) => [JSON.parse(c.policy!).Statement[0].Resource[0], c]))
  t.equal(byKey.size, subs.length, 'one policy per caller')
})

t.test('narrowing: allowed when inside, refused (not clipped) when wider', async (t) => {
  const h = await build(t)
  const token = h.token({ sub: 'alice' })
  const ok = await h.vend(token, { grant: 'uploads', prefix: `${DIR}alice/photos/`, actions: ['write'], durationSeconds: 1800 })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json.prefix, `${DIR}alice/photos/`)
  t.same(ok.json.actions, ['write'])
  t.equal(h.emulator.calls[0]?.durationSeconds, 1800)
  const calls = h.emulator.callCount

  const cases: Array<{ desc: string, body: unknown, status: number, code: string }> = [
    { desc: 'unknown grant', body: { grant: 'admin' }, status: 403, code: 'STS_VENDING_GRANT_NOT_ALLOWED' },
    { desc: 'prefix outside the directory', body: { prefix: `${DIR}bob/` }, status: 403, code: 'STS_VENDING_PREFIX_NOT_ALLOWED' },
    { desc: 'prefix that is the parent', body: { prefix: DIR }, status: 403, code: 'STS_VENDING_PREFIX_NOT_ALLOWED' },
    { desc: 'prefix with ..', body: { prefix: `${DIR}alice/../bob/` }, status: 403, code: 'STS_VENDING_PREFIX_NOT_ALLOWED' },
    { desc: 'prefix with a wildcard', body: { prefix: `${DIR}alice/*/` }, status: 403, code: 'STS_VENDING_PREFIX_NOT_ALLOWED' },
    { desc: 'prefix not ending in /', body: { prefix: `${DIR}alice/x` }, status: 403, code: 'STS_VENDING_PREFIX_NOT_ALLOWED' },
    { desc: 'lookalike prefix', body: { prefix: `${DIR}alice2/` }, status: 403, code: 'STS_VENDING_PREFIX_NOT_ALLOWED' },
    { desc: 'wider actions', body: { actions: ['write', 'delete'] }, status: 403, code: 'STS_VENDING_ACTIONS_NOT_ALLOWED' },
    { desc: 'unknown action', body: { actions: ['admin'] }, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'longer duration', body: { durationSeconds: 7200 }, status: 403, code: 'STS_VENDING_DURATION_NOT_ALLOWED' },
    { desc: 'duration under the freshness margin', body: { durationSeconds: 900 }, status: 403, code: 'STS_VENDING_DURATION_NOT_ALLOWED' },
    { desc: 'duration as a string', body: { durationSeconds: '1800' }, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'unknown body field', body: { bucket: 'other' }, status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'malformed JSON', body: '{"grant":', status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'body is an array', body: '[]', status: 400, code: 'STS_VENDING_BAD_REQUEST' },
    { desc: 'oversized body', body: JSON.stringify({ prefix: 'x'.repeat(5000) }), status: 413, code: 'STS_VENDING_BODY_TOO_LARGE' }
  ]
  for (const c of cases) {
    const r = await h.vend(token, c.body)
    t.equal(r.statusCode, c.status, `${c.desc}: status`)
    t.equal(r.json?.code, c.code, `${c.desc}: code`)
  }
  const wrongType = await h.vend(token, 'grant=uploads', { 'content-type': 'text/plain' })
  t.equal(wrongType.statusCode, 415, 'a non-JSON body type')
  t.equal(h.emulator.callCount, calls, 'no STS call for any refused request')
})

t.test('hostile subjects never reach STS', async (t) => {
  const h = await build(t)
  const hostile = ['*', 'a*', 'a?b', '$x', '{sub}', 'a/b', '/alice', 'a\\b', '.', '..', 'al"ice', 'a\u0000b', 'a\u2028b', 'ａlice', 'é', 'x'.repeat(129), ' alice']
  for (const sub of hostile) {
    const r = await h.vend(h.token({ sub }))
    const shown = JSON.stringify(sub).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    t.equal(r.statusCode, 403, `sub ${shown} refused`)
    t.equal(r.json.code, 'STS_VENDING_CLAIM_NOT_USABLE')
  }
  t.equal(h.emulator.callCount, 0)
})

t.test('a POST without a body uses the grant defaults', async (t) => {
  const h = await build(t)
  const token = h.token()
  const res = await h.app.inject({ method: 'POST', url: '/credentials', headers: { authorization: `Bearer ${token}` } })
  assertContract(t, exchange(res))
  t.equal(res.statusCode, 200)
  h.secret(res.json().accessKeySecret)
  h.secret(res.json().securityToken)
})

t.test('per-caller rate limit', async (t) => {
  const h = await build(t, { config: (c) => ({ ...c, rateLimit: { max: 3, timeWindowMs: 60_000 } }) })
  const alice = h.token({ sub: 'alice' })
  for (let i = 0; i < 3; i++) t.equal((await h.vend(alice)).statusCode, 200)
  const limited = await h.vend(alice)
  t.equal(limited.statusCode, 429)
  t.equal(limited.json.code, 'STS_VENDING_RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After')
  t.equal((await h.vend(h.token({ sub: 'bob' }))).statusCode, 200, 'another caller is not affected')
})
