// The document routes alone: the file is read at start (missing: the start fails), its
// JSON form is made on the first request for it and kept; a document that does not
// parse is a 500 on /openapi.json while /openapi.yaml still serves the bytes.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import openapiRoutes from '../../src/http/openapi.js'
import { requestIdHeader, serverOptions } from '../../src/http/server-options.js'
import errorHandler from '../../src/http/error-handler.js'
import securityHeaders from '../../src/http/security-headers.js'
import { parseConfig } from '../../src/config/load.js'
import { createDevIssuer } from '../../devkit/dev/issuer.js'
import { baseConfig } from '../helpers/build.js'
import { assertContract, exchange } from '../helpers/contract.js'

const dir = mkdtempSync(join(tmpdir(), 'sts-vending-openapi-'))

const config = parseConfig(baseConfig(createDevIssuer(), 'http://127.0.0.1:9'))

/** The document routes with the service's request ids, error handler and headers, as buildApp has them. */
async function app (t: { teardown: (fn: () => unknown) => void }, file: string): Promise<ReturnType<typeof Fastify>> {
  const a = Fastify(serverOptions(config.server, false))
  t.teardown(() => a.close())
  await a.register(requestIdHeader)
  await a.register(errorHandler)
  await a.register(securityHeaders)
  await a.register(openapiRoutes, { file })
  await a.ready()
  return a
}

t.test('a missing document fails the start', async (t) => {
  const a = Fastify()
  t.teardown(() => a.close())
  await t.rejects(async () => {
    await a.register(openapiRoutes, { file: join(dir, 'absent.yaml') })
    await a.ready()
  }, { code: 'ENOENT' })
})

t.test('the JSON form is made once, on the first request, and kept after the file changes', async (t) => {
  const file = join(dir, 'good.yaml')
  writeFileSync(file, 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\n')
  const a = await app(t, file)
  writeFileSync(file, 'changed: true\n')
  const first = await a.inject('/openapi.json')
  t.equal(first.statusCode, 200)
  t.strictSame(first.json(), { openapi: '3.1.0', info: { title: 't', version: '1' } }, 'the document as read at start')
  t.equal((await a.inject('/openapi.json')).body, first.body)
})

t.test('a document that does not parse: /openapi.json is a 500, /openapi.yaml still serves it', async (t) => {
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, 'openapi: [unclosed\n')
  const a = await app(t, file)
  const res = await a.inject('/openapi.json')
  assertContract(t, exchange(res))
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'STS_VENDING_INTERNAL')
  t.notOk(res.body.includes('unclosed'), 'nothing of the parse error is answered')
  t.equal((await a.inject('/openapi.json')).statusCode, 500, 'again, not a stuck promise')
  const yaml = await a.inject('/openapi.yaml')
  t.equal(yaml.statusCode, 200)
  t.equal(yaml.body, 'openapi: [unclosed\n')
})
