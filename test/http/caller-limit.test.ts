// The per-caller limit (caller-limit.ts) answers as @fastify/rate-limit did with the
// same settings: the same statuses, the same x-ratelimit-* and retry-after values, per
// caller, and the window starting again once it has passed.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { callerLimit } from '../../src/http/caller-limit.js'
import type { Caller } from '../../src/auth/caller.js'

const MAX = 3
const WINDOW = 60_000

async function app (limit: (app: FastifyInstance) => Promise<void>): Promise<FastifyInstance> {
  const a = Fastify()
  a.decorateRequest('caller', null)
  const callers = new Map<string, Caller>()
  // The same frozen caller for the same name, as the verifier hands out for a remembered token.
  a.addHook('onRequest', (request, _reply, done) => {
    const name = request.headers['x-caller'] as string
    let c = callers.get(name)
    if (c === undefined) callers.set(name, c = Object.freeze({ issuer: 'https://issuer.example', subject: name, claims: Object.freeze({}) }) as unknown as Caller)
    request.caller = c
    done()
  })
  a.setErrorHandler((err, _request, reply) => { void reply.code((err as { statusCode?: number }).statusCode ?? 500).send({ message: (err as Error).message }) })
  await a.register(async (routes) => {
    await limit(routes)
    routes.get('/x', async () => 'ok')
  })
  return a
}

const refusal = (): Error => Object.assign(new Error('limited'), { statusCode: 429 })

t.test('the same answers as @fastify/rate-limit, caller by caller', async (t) => {
  const plugin = await app(async (routes) => {
    await routes.register(rateLimit, { global: true, hook: 'preHandler', max: MAX, timeWindow: WINDOW, keyGenerator: (r) => r.caller !== null ? `${r.caller.issuer}\n${r.caller.subject}` : r.ip, errorResponseBuilder: () => refusal() })
  })
  const ours = await app(async (routes) => { callerLimit(routes, { max: MAX, timeWindowMs: WINDOW, refusal }) })
  t.teardown(async () => { await plugin.close(); await ours.close() })
  const pick = (h: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after'].map((k) => [k, h[k]]))
  for (const caller of ['alice', 'bob', 'alice', 'alice', 'alice', 'bob', 'alice']) {
    const [a, b] = await Promise.all([plugin, ours].map(async (x) => await x.inject({ url: '/x', headers: { 'x-caller': caller } })))
    t.equal(b?.statusCode, a?.statusCode, `${caller}: same status (${a?.statusCode ?? 0})`)
    t.same(pick(b?.headers ?? {}), pick(a?.headers ?? {}), `${caller}: same limit headers`)
  }
})

t.test('a window that has passed starts again at one', async (t) => {
  let now = 1_000_000
  const ours = await app(async (routes) => { callerLimit(routes, { max: 1, timeWindowMs: WINDOW, refusal, now: () => now }) })
  t.teardown(async () => { await ours.close() })
  const ask = async (): Promise<number> => (await ours.inject({ url: '/x', headers: { 'x-caller': 'alice' } })).statusCode
  t.equal(await ask(), 200)
  now += WINDOW - 1
  t.equal(await ask(), 429, 'still inside the window')
  now += 1
  t.equal(await ask(), 200, 'a new window')
})
