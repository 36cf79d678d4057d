// Validators and serialisers are compiled on first use (src/http/lazy-compilers.ts):
// nothing at start, each route part once, with the answers Fastify's own eager
// compilers give, and every route's schemas still compile (which the start no longer checks).
import t from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { Type } from '@sinclair/typebox'
import { baseConfig, build } from '../helpers/build.js'
import { parseConfig } from '../../src/config/load.js'
import { createDevIssuer } from '../../devkit/dev/issuer.js'
import { serverOptions } from '../../src/http/server-options.js'
import errorHandler from '../../src/http/error-handler.js'
import { compileChannel, lazyCompilers, type CompileEvent } from '../../src/http/lazy-compilers.js'
import { CredentialsRequest, CredentialsResponse } from '../../src/http/credentials/schemas.js'
import { ErrorResponse } from '../../src/http/schemas.js'

/** Every compile event published while the test runs. */
function recordCompiles (t: { teardown: (fn: () => unknown) => void }): CompileEvent[] {
  const events: CompileEvent[] = []
  const onEvent = (e: unknown): void => { events.push(e as CompileEvent) }
  subscribe(compileChannel.name, onEvent)
  t.teardown(() => { unsubscribe(compileChannel.name, onEvent) })
  return events
}

const label = (e: CompileEvent): string => `${e.kind} ${String(e.method)} ${String(e.url)} ${String(e.part)}`
const compiled = (events: CompileEvent[]): string[] => events.filter((e) => e.phase === 'compiled').map(label)

t.test('the app compiles nothing at start, and a route part on its first request only', async (t) => {
  const events = recordCompiles(t)
  const h = await build(t)
  t.ok(events.some((e) => e.phase === 'deferred' && label(e) === 'validator POST /credentials body'), 'the body validator was handed over at start')
  t.same(compiled(events), [], 'no validator or serialiser compiled before the first request')

  const token = h.token({ sub: 'alice' })
  const first = await h.vend(token, { bucket: 'other' })
  t.equal(first.statusCode, 400)
  t.same(first.json, { statusCode: 400, code: 'STS_VENDING_BAD_REQUEST', error: 'Bad Request', message: 'Malformed request: the body has an unknown property "bucket"' })
  t.same(compiled(events), ['validator POST /credentials body', 'serializer POST /credentials 4xx'], 'the body validator and the 4xx serialiser, nothing else')

  const again = await h.vend(token, { bucket: 'other' })
  t.same(again.json, first.json, 'the same answer once compiled')
  const ok = await h.vend(token, {})
  t.equal(ok.statusCode, 200)
  t.same(compiled(events), ['validator POST /credentials body', 'serializer POST /credentials 4xx', 'serializer POST /credentials 200'], 'each part compiled once')
})

t.test("every route's schemas compile", async (t) => {
  const events = recordCompiles(t)
  // With signing on, the upload routes are registered too.
  await build(t, {
    config: (base) => ({ ...base, grants: (base.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, signing: { maxBytes: 1000, expiresSeconds: 600 } })) })
  })
  const deferred = events.filter((e) => e.phase === 'deferred')
  t.ok(deferred.some((e) => label(e) === 'validator POST /uploads/url body'), 'the upload routes are there')
  for (const e of deferred) t.doesNotThrow(() => e.compile?.(), label(e))
  t.equal(compiled(events).length, deferred.length, 'each compiled')
})

const config = parseConfig(baseConfig(createDevIssuer(), 'http://127.0.0.1:9'))

const Shared = Type.Object({ name: Type.String({ pattern: '^[a-z]+$' }), size: Type.Optional(Type.Integer({ minimum: 1 })) }, { $id: 'shared', additionalProperties: false })

/** Routes with the service's schemas and error handler, under the given server options. */
async function routes (t: { teardown: (fn: () => unknown) => void }, options: FastifyServerOptions): Promise<FastifyInstance> {
  const app = Fastify(options)
  t.teardown(() => app.close())
  await app.register(errorHandler)
  app.addSchema(Shared)
  const response = { 200: CredentialsResponse, '4xx': ErrorResponse, '5xx': ErrorResponse }
  // The extra field is dropped by the serialiser; the date-time string is passed through.
  const answer = { accessKeyId: 'STS.x', accessKeySecret: 's', securityToken: 't', expiration: '2026-01-01T00:00:00Z', refreshAfterSeconds: 1, bucket: 'b', region: 'r', extra: 'dropped' }
  app.post('/credentials', { schema: { body: CredentialsRequest, response } }, async () => answer)
  app.post('/shared', { schema: { body: { $ref: 'shared#' }, querystring: Type.Object({ n: Type.Optional(Type.String({ maxLength: 2 })) }), response: { 200: { $ref: 'shared#' }, '4xx': ErrorResponse } } }, async (request) => ({ ...(request.body as object), other: 1 }))
  await app.ready()
  return app
}

t.test("requests get the answers Fastify's eager compilers give", async (t) => {
  const events = recordCompiles(t)
  const lazy = await routes(t, serverOptions(config.server, false))
  const lazyDeferred = events.length
  t.same(events.map(label).sort(), [
    'serializer POST /credentials 200', 'serializer POST /credentials 4xx', 'serializer POST /credentials 5xx',
    'serializer POST /shared 200', 'serializer POST /shared 4xx',
    'validator POST /credentials body', 'validator POST /shared body', 'validator POST /shared querystring'
  ], 'the lazy app deferred every compile')
  const eager = await routes(t, { ...serverOptions(config.server, false), schemaController: undefined })
  t.equal(events.length, lazyDeferred, 'the eager app compiles through Fastify\'s own compilers, not ours')

  const cases: Array<{ desc: string, url: string, body: unknown }> = [
    { desc: 'a valid request', url: '/credentials', body: { grant: 'uploads', actions: ['write'] } },
    { desc: 'an unknown field', url: '/credentials', body: { bucket: 'other' } },
    { desc: 'a number as a string (no coercion)', url: '/credentials', body: { durationSeconds: '1800' } },
    { desc: 'a duration under the minimum', url: '/credentials', body: { durationSeconds: 1 } },
    { desc: 'a grant against its pattern', url: '/credentials', body: { grant: 'A*' } },
    { desc: 'an unknown action', url: '/credentials', body: { actions: ['admin'] } },
    { desc: 'repeated actions', url: '/credentials', body: { actions: ['write', 'write'] } },
    { desc: 'a body that is an array', url: '/credentials', body: [] },
    { desc: 'a body that is a string', url: '/credentials', body: 'x' },
    { desc: 'two errors: only the first is reported (allErrors off)', url: '/credentials', body: { grant: 'A', durationSeconds: 'x' } },
    { desc: 'a shared schema ($ref), valid', url: '/shared', body: { name: 'abc', size: 2 } },
    { desc: 'a shared schema ($ref), missing field', url: '/shared', body: { size: 2 } },
    { desc: 'a shared schema ($ref), bad pattern', url: '/shared', body: { name: 'ABC' } },
    { desc: 'a querystring schema', url: '/shared?n=abc', body: { name: 'abc' } }
  ]
  // Twice: the first request compiles, the second runs what was compiled.
  for (const round of ['first', 'second']) {
    for (const c of cases) {
      const send = async (app: FastifyInstance): Promise<{ statusCode: number, body: string, type: unknown }> => {
        const res = await app.inject({ method: 'POST', url: c.url, payload: JSON.stringify(c.body), headers: { 'content-type': 'application/json' } })
        return { statusCode: res.statusCode, body: res.body, type: res.headers['content-type'] }
      }
      t.same(await send(lazy), await send(eager), `${c.desc} (${round} request)`)
    }
  }
  t.notOk((await lazy.inject({ method: 'POST', url: '/credentials', payload: {} })).body.includes('dropped'), 'the serialiser drops what the schema does not list')
})

t.test('a route with a header schema is refused at start', async (t) => {
  const app = Fastify(serverOptions(config.server, false))
  t.teardown(() => app.close())
  app.get('/h', { schema: { headers: Type.Object({ 'X-Thing': Type.String() }) } }, async () => 'ok')
  await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_SCH_VALIDATION_BUILD', message: /header schemas are not supported/ })
})

t.test('a validator that replaces the root value still can (ajv is handed its parent data)', async (t) => {
  // Not this service's options (coerceTypes is off), but Fastify's defaults: a root number sent as a string is coerced.
  const answers: unknown[] = []
  for (const options of [{ schemaController: { compilersFactory: lazyCompilers() } }, {}]) {
    const app = Fastify(options)
    t.teardown(() => app.close())
    app.post('/n', { schema: { body: Type.Integer() } }, async (request) => ({ body: request.body, type: typeof request.body }))
    const res = await app.inject({ method: 'POST', url: '/n', payload: '"5"', headers: { 'content-type': 'application/json' } })
    answers.push(res.json())
  }
  t.same(answers, [{ body: 5, type: 'number' }, { body: 5, type: 'number' }])
})

t.test('every deferred part is compiled before /readyz says ready, so no caller\'s first request pays', async (t) => {
  const events = recordCompiles(t)
  const h = await build(t)
  const deferred = events.filter((e) => e.phase === 'deferred').length
  t.ok(deferred > 0)
  await h.app.listen({ host: '127.0.0.1', port: 0 })
  const address = h.app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  let status = 0
  for (let i = 0; i < 1000 && status !== 200; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`)
    await res.arrayBuffer()
    status = res.status
    // Ready never comes before the last compile.
    if (status === 200) t.equal(compiled(events).length, deferred, 'all compiled by the warm-up when ready')
    else await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal(status, 200, 'ready once warm')
  const bad = await h.vend(h.token({ sub: 'alice' }), { bucket: 'other' })
  t.equal(bad.statusCode, 400, 'and answering as before')
})

t.test('compileAll: every part not compiled yet, once; a part that fails is counted and left to its request', async (t) => {
  const compilers = lazyCompilers()
  const app = Fastify({ ...serverOptions(config.server, false, compilers) })
  t.teardown(() => app.close())
  app.post('/ok', { schema: { body: Type.Object({ a: Type.String() }), response: { 200: Type.Object({ a: Type.String() }) } } }, async (request) => request.body)
  app.post('/broken', { schema: { body: { type: 'object', properties: { a: { $ref: '#/definitions/missing' } } } } }, async () => ({}))
  await app.ready()
  const events = recordCompiles(t)
  t.equal(compilers.compileAll(), 1, 'the broken schema is the one failure')
  t.same(compiled(events).sort(), ['serializer POST /ok 200', 'validator POST /ok body'])
  t.equal(compilers.compileAll(), 0, 'nothing left: the failed part waits for its request')
  t.equal((await app.inject({ method: 'POST', url: '/ok', payload: { a: 'x' } })).json().a, 'x')
  t.equal((await app.inject({ method: 'POST', url: '/broken', payload: { a: 'x' } })).statusCode, 500, 'the broken route answers 500')
})
