// Every guard of the caller surface over every caller route: a route family registered
// into the surface cannot skip one or answer it differently (issue 23: /uploads once
// signed for `?Token=` that /credentials refused). Real app, real STS emulator, real
// JWTs; the event-loop delay is injected, so shedding needs no blocked loop.
import t from 'tap'
import { build, type Harness } from '../helpers/build.js'
import { assertContract, exchange } from '../helpers/contract.js'

const ALLOWED = 'https://app.example.com'
const OTHER = 'https://evil.example.com'
const DIR = 'dir111/dir111_secondline1/'
const MAX = 3
const MAX_DELAY_MS = 50

interface Route { path: string, family: 'credentials' | 'uploads', body: (sub: string) => unknown }
const ROUTES: Route[] = [
  { path: '/credentials', family: 'credentials', body: () => ({}) },
  { path: '/uploads/form', family: 'uploads', body: () => ({}) },
  { path: '/uploads/url', family: 'uploads', body: (sub) => ({ key: `${DIR}${sub}/a.txt`, method: 'GET' }) }
]
const REFUSED_EVENT = { credentials: 'credentials.refused', uploads: 'upload.refused' }

const QUERY_TOKEN_NAMES = ['token', 'Token', 'TOKEN', 'ACCESS-TOKEN', 'Access_Token', 'access_token', 'Access-Token',
  'jwt', 'JWT', 'id_token', 'Id_Token', 'authorization', 'Authorization']

interface Surface { h: Harness, lag: { ms: number } }

async function surface (tt: Parameters<typeof build>[0]): Promise<Surface> {
  const lag = { ms: 0 }
  const h = await build(tt, {
    config: (c) => ({
      ...c,
      grants: (c.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, signing: { maxBytes: 64, expiresSeconds: 600 } })),
      cors: { origins: [ALLOWED] },
      rateLimit: { max: MAX, timeWindowMs: 60_000 },
      server: { maxEventLoopDelayMs: MAX_DELAY_MS }
    }),
    deps: { eventLoopDelay: () => lag.ms }
  })
  return { h, lag }
}

interface Answer { statusCode: number, headers: Record<string, unknown>, json: any, id: string }

async function post (tt: Parameters<typeof assertContract>[0], h: Harness, route: Route, o: { sub?: string, token?: string | null, query?: string, headers?: Record<string, string> } = {}): Promise<Answer> {
  const sub = o.sub ?? 'alice'
  const token = o.token === null ? undefined : o.token ?? h.token({ sub })
  const res = await h.app.inject({
    method: 'POST',
    url: `${route.path}${o.query ?? ''}`,
    headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json', ...o.headers },
    payload: JSON.stringify(route.body(sub))
  })
  assertContract(tt, exchange(res))
  let json: any
  try { json = res.json() } catch { json = undefined }
  if (res.statusCode === 200) {
    for (const v of [json.accessKeySecret, json.securityToken, json.fields?.['x-oss-security-token'], json.fields?.['x-oss-signature']]) if (typeof v === 'string') h.secret(v)
    if (typeof json.url === 'string' && route.path === '/uploads/url') {
      const u = new URL(json.url)
      h.secret(u.searchParams.get('x-oss-security-token') as string)
      h.secret(u.searchParams.get('x-oss-signature') as string)
    }
  }
  return { statusCode: res.statusCode, headers: res.headers, json, id: String(res.headers['x-request-id']) }
}

type Check = Pick<typeof t, 'equal' | 'ok' | 'match' | 'not'>

function assertCors (tt: Check, headers: Record<string, unknown>, what: string): void {
  tt.equal(headers['access-control-allow-origin'], ALLOWED, `${what}: Access-Control-Allow-Origin`)
  tt.match(String(headers['access-control-expose-headers'] ?? ''), /retry-after/i, `${what}: Retry-After exposed`)
  tt.match(String(headers.vary ?? ''), /origin/i, `${what}: Vary: Origin`)
  tt.not(headers['access-control-allow-credentials'], 'true', `${what}: never credentials mode`)
}

/** The audit lines about one request. */
function auditOf (h: Harness, id: string): Array<Record<string, unknown>> {
  return h.logs.filter((l) => l.includes('"log":"audit"')).map((l) => JSON.parse(l)).filter((l) => l.requestId === id)
}

/** A refusal (401/403/429) is recorded exactly once, in its family's line; anything else not at all. */
function assertRecorded (tt: Check, h: Harness, route: Route, res: Answer, what: string): void {
  const lines = auditOf(h, res.id).filter((l) => String(l.event).endsWith('.refused'))
  if ([401, 403, 429].includes(res.statusCode)) {
    tt.equal(lines.length, 1, `${what}: recorded once`)
    tt.equal(lines[0]?.event, REFUSED_EVENT[route.family], `${what}: as ${REFUSED_EVENT[route.family]}`)
    tt.equal(lines[0]?.code, res.json?.code, `${what}: with its code`)
  } else {
    tt.equal(lines.length, 0, `${what}: not a recorded refusal`)
  }
}

interface Guard {
  desc: string
  status: number
  code: string
  /** Sends the request for `route`; `n` numbers the callers so that no row spends another's count. */
  send: (tt: Check & Parameters<typeof assertContract>[0], s: Surface, route: Route, n: number) => Promise<Answer>
  cors?: 'allowed' | 'none'
}

const GUARDS: Guard[] = [
  ...QUERY_TOKEN_NAMES.map((name): Guard => ({
    desc: `?${name}= with a valid bearer header`,
    status: 400,
    code: 'STS_VENDING_TOKEN_IN_QUERY',
    send: async (tt, { h }, route) => await post(tt, h, route, { query: `?${name}=${h.token()}` })
  })),
  { desc: 'no token', status: 401, code: 'STS_VENDING_MISSING_TOKEN', send: async (tt, { h }, route) => await post(tt, h, route, { token: null }) },
  {
    desc: 'a disallowed Origin, with a valid token',
    status: 403,
    code: 'STS_VENDING_ORIGIN_NOT_ALLOWED',
    cors: 'none',
    send: async (tt, { h }, route) => await post(tt, h, route, { headers: { origin: OTHER } })
  },
  {
    desc: 'a refusal to an allowed Origin',
    status: 401,
    code: 'STS_VENDING_MISSING_TOKEN',
    cors: 'allowed',
    send: async (tt, { h }, route) => await post(tt, h, route, { token: null, headers: { origin: ALLOWED } })
  },
  {
    desc: 'one request over the per-caller limit',
    status: 429,
    code: 'STS_VENDING_RATE_LIMITED',
    cors: 'allowed',
    send: async (tt, { h }, route, n) => {
      const sub = `chatty${n}`
      for (let i = 0; i < MAX; i++) tt.equal((await post(tt, h, route, { sub, headers: { origin: ALLOWED } })).statusCode, 200, `request ${i + 1} of ${MAX} served`)
      const res = await post(tt, h, route, { sub, headers: { origin: ALLOWED } })
      tt.ok(Number(res.headers['retry-after']) >= 1 && Number(res.headers['retry-after']) <= 60, 'Retry-After inside the window')
      return res
    }
  },
  {
    desc: 'the event loop lagging',
    status: 503,
    code: 'STS_VENDING_OVERLOADED',
    cors: 'allowed',
    send: async (tt, s, route) => {
      s.lag.ms = MAX_DELAY_MS + 1
      try {
        const res = await post(tt, s.h, route, { headers: { origin: ALLOWED } })
        tt.equal(res.headers['retry-after'], '2', 'Retry-After: 2')
        return res
      } finally {
        s.lag.ms = 0
      }
    }
  }
]

t.test('every guard over every caller route', async (t) => {
  const s = await surface(t)
  let n = 0
  for (const route of ROUTES) {
    for (const guard of GUARDS) {
      const what = `POST ${route.path}: ${guard.desc}`
      const res = await guard.send(t, s, route, n++)
      t.equal(res.statusCode, guard.status, `${what}: ${guard.status}`)
      t.equal(res.json?.code, guard.code, `${what}: ${guard.code}`)
      if (guard.cors === 'allowed') assertCors(t, res.headers, what)
      if (guard.cors === 'none') {
        t.equal(res.headers['access-control-allow-origin'], undefined, `${what}: no Access-Control-Allow-Origin`)
        t.equal(res.headers['access-control-expose-headers'], undefined, `${what}: nothing exposed`)
      }
      assertRecorded(t, s.h, route, res, what)
    }
  }
  // The one success per route that the rate-limit rows allowed reached STS: one
  // credential for the vending (the same caller's cached after), one signing credential.
  t.ok(s.h.emulator.callCount <= 2, `no refusal reached STS (${s.h.emulator.callCount} AssumeRole calls)`)
})

t.test('every caller route: the preflight from an allowed origin, under load too; another origin is refused', async (t) => {
  const s = await surface(t)
  for (const route of ROUTES) {
    const preflight = async (origin: string) => await s.h.app.inject({ method: 'OPTIONS', url: route.path, headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } })
    const ok = await preflight(ALLOWED)
    assertContract(t, exchange(ok))
    t.equal(ok.statusCode, 204, `OPTIONS ${route.path}: 204`)
    assertCors(t, ok.headers, `OPTIONS ${route.path}`)
    t.match(String(ok.headers['access-control-allow-headers']), /authorization/, `OPTIONS ${route.path}: Authorization allowed`)
    s.lag.ms = MAX_DELAY_MS + 1
    t.equal((await preflight(ALLOWED)).statusCode, 204, `OPTIONS ${route.path} under load: still answered (CORS before shedding)`)
    s.lag.ms = 0
    const evil = await preflight(OTHER)
    assertContract(t, exchange(evil))
    t.equal(evil.statusCode, 403, `OPTIONS ${route.path} from another origin: 403`)
    t.equal(evil.headers['access-control-allow-origin'], undefined, `OPTIONS ${route.path} from another origin: no CORS headers`)
  }
})

t.test('each family counts its own callers: a spent /credentials count leaves /uploads untouched', async (t) => {
  const { h } = await surface(t)
  const [credentials, form] = ROUTES as [Route, Route, Route]
  for (let i = 0; i < MAX; i++) t.equal((await post(t, h, credentials, { sub: 'both' })).statusCode, 200)
  t.equal((await post(t, h, credentials, { sub: 'both' })).statusCode, 429, '/credentials spent')
  t.equal((await post(t, h, form, { sub: 'both' })).statusCode, 200, '/uploads/form still served')
  t.equal((await post(t, h, credentials, { sub: 'other' })).statusCode, 200, 'another caller has a count of its own')
})

t.test('what is not a query token passes; a query token is refused in the format /credentials was asked for', async (t) => {
  const { h } = await surface(t)
  for (const route of ROUTES) {
    const fine = await post(t, h, route, { query: '?tokens=1&my_token=2&token_type=x' })
    t.equal(fine.statusCode, 200, `POST ${route.path}?tokens=1&my_token=2&token_type=x: 200`)
  }
  const token = h.token()
  const shaped = await h.app.inject({ method: 'POST', url: `/credentials?format=oss-app-server&Jwt=${token}`, headers: { authorization: `Bearer ${token}` } })
  assertContract(t, exchange(shaped))
  t.equal(shaped.statusCode, 400)
  t.equal(shaped.json().ErrorCode, 'STS_VENDING_TOKEN_IN_QUERY', 'in the oss-app-server shape')
  t.notOk(h.logs.some((l) => l.includes(token)), 'the token in the URL is never logged')
})
