// The key sources on their own: key strength rules, the JWKS fetch deadline against a
// dripping host, refetch throttling and backoff with fake time, and the log lines that
// say why a JWKS could not be used.
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { JWKS_BACKOFF_JITTER, jwksKeySource, keyProblem, staticKeySource, type KeyLog } from '../../src/auth/keys.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

async function startServer (t: { teardown: (fn: () => unknown) => void }, handler: { current: Handler }): Promise<{ url: string, hits: () => number }> {
  let hits = 0
  const server = createServer((req, res) => { hits++; handler.current(req, res) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`, hits: () => hits }
}

const rsa = (bits: number): KeyObject => generateKeyPairSync('rsa', { modulusLength: bits }).publicKey
const ec = (namedCurve: string): KeyObject => generateKeyPairSync('ec', { namedCurve }).publicKey
const jwk = (key: KeyObject, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...key.export({ format: 'jwk' }), use: 'sig', ...extra })
const pem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString()
const serveKeys = (keys: Array<Record<string, unknown>>): Handler => (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys })) }

function captureLog (): KeyLog & { lines: Array<{ level: string, obj: Record<string, unknown>, msg: string }> } {
  const lines: Array<{ level: string, obj: Record<string, unknown>, msg: string }> = []
  return {
    lines,
    warn: (obj, msg) => { lines.push({ level: 'warn', obj, msg }) },
    info: (obj, msg) => { lines.push({ level: 'info', obj, msg }) }
  }
}

const settle = async (ms = 20): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
/** Real-time polling for background work that cannot be awaited (a loaded CI machine is slow). */
async function until (cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await settle(5)
}

t.test('key strength: weak RSA, foreign curves and curve/alg mismatches are refused', async (t) => {
  const rsa2048 = rsa(2048)
  const p256 = ec('prime256v1')
  const p384 = ec('secp384r1')
  const p521 = ec('secp521r1')
  const cases: Array<{ desc: string, key: KeyObject, alg?: string, problem?: RegExp }> = [
    { desc: 'RSA 512', key: rsa(512), alg: 'RS256', problem: /RSA key of 512 bits is too weak/ },
    { desc: 'RSA 1024', key: rsa(1024), problem: /RSA key of 1024 bits is too weak/ },
    { desc: 'RSA 2048 for RS256', key: rsa2048, alg: 'RS256' },
    { desc: 'RSA 2048 for PS512', key: rsa2048, alg: 'PS512' },
    { desc: 'RSA 2048 for ES256', key: rsa2048, alg: 'ES256', problem: /RSA key cannot verify ES256/ },
    { desc: 'secp256k1 for ES256', key: ec('secp256k1'), alg: 'ES256', problem: /curve secp256k1 is not allowed/ },
    { desc: 'secp256k1 without alg', key: ec('secp256k1'), problem: /curve secp256k1 is not allowed/ },
    { desc: 'P-256 for ES256', key: p256, alg: 'ES256' },
    { desc: 'P-256 for ES384', key: p256, alg: 'ES384', problem: /P-256 key cannot verify ES384/ },
    { desc: 'P-384 for ES384', key: p384, alg: 'ES384' },
    { desc: 'P-384 for ES256', key: p384, alg: 'ES256', problem: /P-384 key cannot verify ES256/ },
    { desc: 'P-521 for ES512', key: p521, alg: 'ES512' },
    { desc: 'P-521 for ES256', key: p521, alg: 'ES256', problem: /P-521 key cannot verify ES256/ },
    { desc: 'P-256 for RS256', key: p256, alg: 'RS256', problem: /cannot verify RS256/ },
    { desc: 'Ed25519 for EdDSA', key: generateKeyPairSync('ed25519').publicKey, alg: 'EdDSA' },
    { desc: 'Ed25519 for ES256', key: generateKeyPairSync('ed25519').publicKey, alg: 'ES256', problem: /cannot verify ES256/ }
  ]
  for (const c of cases) {
    const problem = keyProblem(c.key, c.alg)
    if (c.problem === undefined) t.equal(problem, undefined, `${c.desc}: accepted`)
    else t.match(problem, c.problem, `${c.desc}: refused`)
  }
})

t.test('a static public key that is weak or does not fit the algorithms is refused', async (t) => {
  t.throws(() => staticKeySource(pem(rsa(1024)), ['RS256']), /1024 bits/)
  t.throws(() => staticKeySource(pem(ec('secp256k1')), ['ES256']), /secp256k1/)
  t.throws(() => staticKeySource(pem(ec('secp384r1')), ['ES256']), /P-384 key cannot verify ES256/)
  t.throws(() => staticKeySource(pem(ec('prime256v1')), ['ES256', 'ES384']), /cannot verify ES384/)
  t.throws(() => staticKeySource('-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n', ['RS256']), /not a readable public key/)
  const ok = staticKeySource(pem(rsa(2048)), ['RS256', 'PS256'])
  t.ok(ok.ready())
  t.match((await ok.getKey(undefined, 'RS256')).material, /BEGIN PUBLIC KEY/)
})

t.test('JWKS keys that are weak or mismatched are skipped and logged without key material', async (t) => {
  const weak = rsa(1024)
  const k1 = ec('secp256k1')
  const good = rsa(2048)
  const p384 = ec('secp384r1')
  const handler = {
    current: serveKeys([
      jwk(weak, { kid: 'weak', alg: 'RS256' }),
      jwk(k1, { kid: 'k1' }),
      jwk(p384, { kid: 'p384-as-es256', alg: 'ES256' }),
      jwk(p384, { kid: 'p384' }),
      jwk(good, { kid: 'good', alg: 'RS256' })
    ])
  }
  const server = await startServer(t, handler)
  const log = captureLog()
  const keys = jwksKeySource({ uri: server.url, name: 'app', refreshMs: 600_000, minRefetchMs: 60_000, log })
  t.teardown(() => keys.close())
  await t.resolveMatch(keys.getKey('good', 'RS256'), { material: pem(good) })
  await t.rejects(keys.getKey('weak', 'RS256'), { code: 'STS_VENDING_INVALID_TOKEN' }, 'a 1024-bit key does not verify')
  await t.rejects(keys.getKey('k1', 'ES256'), { code: 'STS_VENDING_INVALID_TOKEN' }, 'a secp256k1 key does not verify ES256')
  await t.rejects(keys.getKey('p384-as-es256', 'ES256'), { code: 'STS_VENDING_INVALID_TOKEN' })
  await t.rejects(keys.getKey('p384', 'ES256'), { code: 'STS_VENDING_INVALID_TOKEN' }, 'a P-384 key without alg does not verify ES256')
  await t.resolveMatch(keys.getKey('p384', 'ES384'), { material: pem(p384) }, 'but does verify ES384')
  const line = log.lines.find((l) => l.msg === 'JWKS keys refused and skipped')
  t.ok(line, 'the skipped keys are logged')
  t.same((line?.obj.skipped as Array<{ kid: string }>).map((s) => s.kid), ['weak', 'k1', 'p384-as-es256'])
  const text = JSON.stringify(log.lines)
  for (const k of [weak, k1, good]) {
    const n = k.export({ format: 'jwk' }).n ?? k.export({ format: 'jwk' }).x ?? ''
    t.notOk(text.includes(n.slice(0, 24)), 'no key material in the log')
  }
})

t.test('kids are any printable ASCII, compared exactly', async (t) => {
  const key = rsa(2048)
  const kid = 'q1+/ZmFrZS9raWQ=' // standard base64, as some providers publish
  const server = await startServer(t, { current: serveKeys([jwk(key, { kid, alg: 'RS256' })]) })
  const keys = jwksKeySource({ uri: server.url, refreshMs: 600_000, minRefetchMs: 60_000 })
  t.teardown(() => keys.close())
  await t.resolveMatch(keys.getKey(kid, 'RS256'), { material: pem(key) })
  for (const other of ['q1+/ZmFrZS9raWQ', 'q1-_ZmFrZS9raWQ=', 'Q1+/ZmFrZS9raWQ=', ` ${kid}`]) {
    await t.rejects(keys.getKey(other, 'RS256'), { code: 'STS_VENDING_INVALID_TOKEN' }, `${JSON.stringify(other)} is another kid`)
  }
})

t.test('a dripping JWKS host: the fetch ends at its deadline and the next lookup starts afresh', async (t) => {
  const key = rsa(2048)
  const drip: Handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"keys":[')
    const timer = setInterval(() => res.write(' '), 50)
    res.on('close', () => clearInterval(timer))
  }
  const handler = { current: drip }
  const server = await startServer(t, handler)
  const log = captureLog()
  let clock = 1_000_000
  const keys = jwksKeySource({ uri: server.url, refreshMs: 600_000, minRefetchMs: 60_000, fetchDeadlineMs: 300, coldRetryMs: 1000, now: () => clock, setTimer: () => () => {}, random: () => 0, log })
  t.teardown(() => keys.close())

  const started = Date.now()
  await t.rejects(keys.getKey('a', 'RS256'), { code: 'STS_VENDING_KEYS_UNAVAILABLE' }, 'cold: 503, not a hang')
  const waited = Date.now() - started
  t.ok(waited < 1500, `the request waited ${waited} ms, about the fetch deadline`)
  await until(() => log.lines.length > 0)
  t.equal(server.hits(), 1)
  t.match(log.lines.at(-1), { level: 'warn', obj: { cause: 'no complete answer within 300 ms', keysLoaded: false } }, 'the cause is logged')

  clock += 1000 // the first cold retry
  handler.current = serveKeys([jwk(key, { kid: 'a', alg: 'RS256' })])
  await t.resolveMatch(keys.getKey('a', 'RS256'), { material: pem(key) }, 'a fresh fetch, not the wedged one')
  t.equal(server.hits(), 2)
  t.ok(keys.ready())

  // Warm, then the host starts dripping during a key rotation: the unknown kid waits at
  // most the deadline, known kids do not wait at all.
  handler.current = drip
  clock += 61_000
  const t0 = Date.now()
  await t.rejects(keys.getKey('rotated', 'RS256'), { code: 'STS_VENDING_INVALID_TOKEN' })
  t.ok(Date.now() - t0 < 1500, 'the unknown kid is answered within the deadline')
  await t.resolveMatch(keys.getKey('a', 'RS256'), { material: pem(key) }, 'the loaded key keeps verifying')
  await until(() => log.lines.length > 1)
  t.match(log.lines.at(-1), { obj: { cause: 'no complete answer within 300 ms', keysLoaded: true } })
})

t.test('stale keys with a failing provider: one fetch per interval, backing off, keys kept', async (t) => {
  const key = rsa(2048)
  const handler = { current: serveKeys([jwk(key, { kid: 'a', alg: 'RS256' })]) }
  const server = await startServer(t, handler)
  const log = captureLog()
  let clock = 1_000_000
  const keys = jwksKeySource({ uri: server.url, refreshMs: 600_000, minRefetchMs: 60_000, now: () => clock, setTimer: () => () => {}, random: () => 0, log })
  t.teardown(() => keys.close())
  await keys.getKey('a', 'RS256')
  t.equal(server.hits(), 1)

  handler.current = (_req, res) => { res.writeHead(500).end('oops') }
  clock += 600_000 // stale
  const fetchesAt: number[] = []
  let last = keys.fetches()
  let refused = 0
  const failuresLogged = (): number => log.lines.filter((l) => l.msg.startsWith('JWKS fetch failed')).length
  // 30 simulated minutes, a burst of lookups (known and unknown kids) every 5 s.
  for (let step = 0; step < 360; step++) {
    for (let i = 0; i < 5; i++) {
      await keys.getKey('a', 'RS256').catch(() => { refused++ })
      await keys.getKey(randomUUID(), 'RS256').catch(() => {})
    }
    if (keys.fetches() !== last) {
      fetchesAt.push(clock)
      last = keys.fetches()
      await until(() => failuresLogged() === fetchesAt.length) // the failure lands before time moves on
    }
    clock += 5000
  }
  t.equal(server.hits(), keys.fetches())
  t.equal(refused, 0, 'the loaded key verified throughout')
  const gaps = fetchesAt.slice(1).map((at, i) => (at - (fetchesAt[i] as number)) / 1000)
  t.same(gaps, [60, 120, 240, 480, 600], `refetches back off: ${gaps.join(', ')} s`)
  const failures = log.lines.filter((l) => l.msg.startsWith('JWKS fetch failed'))
  t.equal(failures.length, fetchesAt.length, 'each failure logged once (they are an interval or more apart)')
  t.match(failures[0]?.obj, { cause: 'HTTP status 500', keysLoaded: true, jwksUri: server.url })

  handler.current = serveKeys([jwk(key, { kid: 'a', alg: 'RS256' })])
  clock += 600_000
  await keys.getKey('a', 'RS256')
  await until(() => log.lines.at(-1)?.msg === 'JWKS fetched again after failures')
  t.equal(log.lines.at(-1)?.msg, 'JWKS fetched again after failures')
})

t.test('cold start: retries start small and double, up to the refetch interval; failures logged once per interval', async (t) => {
  const handler = { current: ((req, res) => { req.socket.destroy(); void res }) as Handler }
  const server = await startServer(t, handler)
  const log = captureLog()
  let clock = 1_000_000
  const timers: Array<{ fn: () => void, ms: number }> = []
  const keys = jwksKeySource({ uri: server.url, refreshMs: 600_000, minRefetchMs: 10_000, now: () => clock, setTimer: (fn, ms) => { timers.push({ fn, ms }); return () => {} }, random: () => 0, log })
  t.teardown(() => keys.close())
  const delays: number[] = []
  for (let i = 0; i < 8; i++) {
    await until(() => timers.length > 0)
    const timer = timers.shift()
    if (timer === undefined) break
    delays.push(timer.ms)
    clock += timer.ms
    timer.fn()
  }
  t.same(delays, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000], 'background retry delays (ms)')
  t.notOk(keys.ready())
  const failures = log.lines.filter((l) => l.msg === 'JWKS fetch failed; no keys yet')
  t.ok(failures.length >= 2 && failures.length <= 4, `${failures.length} lines for 9 failures over ${(clock - 1_000_000) / 1000} s`)
  t.match(failures[0]?.obj.cause, /^connection error /)

  const parseErrors: Array<{ desc: string, handler: Handler, cause: RegExp }> = [
    { desc: 'not JSON', handler: (_req, res) => { res.writeHead(200).end('<html>') }, cause: /not JSON/ },
    { desc: 'no keys array', handler: (_req, res) => { res.writeHead(200).end('{"keys":{}}') }, cause: /no "keys" array/ },
    { desc: 'only refused keys', handler: serveKeys([jwk(rsa(1024), { kid: 'w' })]), cause: /no usable keys \(1 refused\)/ },
    { desc: 'too large', handler: (_req, res) => { res.writeHead(200).end(`{"keys":[],"pad":"${'x'.repeat(300_000)}"}`) }, cause: /larger than/ }
  ]
  for (const c of parseErrors) {
    const s = await startServer(t, { current: c.handler })
    const l = captureLog()
    const k = jwksKeySource({ uri: s.url, refreshMs: 600_000, minRefetchMs: 10_000, setTimer: () => () => {}, log: l })
    await t.rejects(k.getKey('w', 'RS256'), { code: 'STS_VENDING_KEYS_UNAVAILABLE' })
    k.close()
    t.match(l.lines[0]?.obj.cause, c.cause, `${c.desc}: the cause is logged`)
  }
})

t.test('the logged JWKS URL carries no userinfo or query', async (t) => {
  const log = captureLog()
  const keys = jwksKeySource({ uri: 'http://user:hunter2hunter2@127.0.0.1:1/jwks?token=abcdefabcdef', refreshMs: 600_000, minRefetchMs: 10_000, setTimer: () => () => {}, log })
  await t.rejects(keys.getKey(undefined, 'RS256'))
  keys.close()
  t.equal(log.lines[0]?.obj.jwksUri, 'http://127.0.0.1:1/jwks')
  t.notOk(JSON.stringify(log.lines).includes('hunter2'))
})

t.test('retry delays after failures are spread over up to a quarter more, never shortened', async (t) => {
  const handler = { current: ((req, res) => { req.socket.destroy(); void res }) as Handler }
  const server = await startServer(t, handler)
  const delaysWith = async (r: number): Promise<number[]> => {
    const timers: Array<{ fn: () => void, ms: number }> = []
    let clock = 1_000_000
    const keys = jwksKeySource({ uri: server.url, refreshMs: 600_000, minRefetchMs: 10_000, now: () => clock, setTimer: (fn, ms) => { timers.push({ fn, ms }); return () => {} }, random: () => r })
    t.teardown(() => keys.close())
    const delays: number[] = []
    for (let i = 0; i < 8; i++) {
      await until(() => timers.length > 0)
      const timer = timers.shift() as { fn: () => void, ms: number }
      delays.push(timer.ms)
      clock += timer.ms
      timer.fn()
    }
    return delays
  }
  const none = await delaysWith(0)
  const most = await delaysWith(0.999)
  t.same(none, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000])
  t.same(most, none.map((d) => Math.round(d * (1 + JWKS_BACKOFF_JITTER * 0.999))), 'lengthened by up to a quarter')
  t.ok(most.every((d, i) => d > (none[i] as number)), 'never shorter than the schedule: the refetch interval stays the floor')
})
