// GET /openapi.yaml and /openapi.json: the document clients are generated from, as
// shipped with the running release. The file is read once at start, from the package
// root (observability/version.ts finds it; /app in the image), and a
// missing file fails the start: a service must not run without its contract. The JSON
// form is made on the first request for it (memoised): parsing the YAML costs about a
// fifth of a second that start-up does not need, and the file is held parseable and
// equal to the routes by test/openapi.test.ts and redocly lint. The bodies are the
// file's bytes (and their JSON form), not data, so these routes have no response schema.
import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import { packageFile } from '../observability/version.js'

/** The package's openapi.yaml, in the package root (/app in the image). */
export const OPENAPI_FILE = packageFile('openapi.yaml')

export interface OpenApiOptions {
  /** Another document (tests); default: the package's openapi.yaml. */
  file?: URL | string
}

export default async function openapiRoutes (app: FastifyInstance, opts: OpenApiOptions = {}): Promise<void> {
  const yaml = await readFile(opts.file ?? OPENAPI_FILE)
  let json: Promise<string> | undefined
  // A document that does not parse is a 500 from the error handler (and not kept, so a log line each time).
  const toJson = async (): Promise<string> => JSON.stringify((await import('yaml')).parse(yaml.toString('utf8')))

  app.get('/openapi.yaml', { logLevel: 'warn' }, async (_request, reply) => {
    return reply.type('application/yaml; charset=utf-8').header('cache-control', 'no-cache').send(yaml)
  })
  app.get('/openapi.json', { logLevel: 'warn' }, async (_request, reply) => {
    json ??= toJson()
    const body = await json.catch((err: unknown) => {
      json = undefined
      throw err
    })
    return reply.type('application/json; charset=utf-8').header('cache-control', 'no-cache').send(body)
  })
}
