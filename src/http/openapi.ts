// GET /openapi.yaml and /openapi.json: the document clients are generated from, as
// shipped with the running release. It is read once at start, from the package root
// (two levels above this file both in src/ and in dist/; /app in the image), and a
// missing or unparsable file fails the start: a service must not run without its
// contract. The bodies are the file's bytes (and their JSON form), not data, so these
// routes have no response schema.
import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import { parse } from 'yaml'

/** The package's openapi.yaml: two levels above this module, in src/ and in dist/ alike (/app in the image). */
export const OPENAPI_FILE = new URL('../../openapi.yaml', import.meta.url)

export interface OpenApiOptions {
  /** Another document (tests); default: the package's openapi.yaml. */
  file?: URL | string
}

export default async function openapiRoutes (app: FastifyInstance, opts: OpenApiOptions = {}): Promise<void> {
  const yaml = await readFile(opts.file ?? OPENAPI_FILE)
  const json = JSON.stringify(parse(yaml.toString('utf8')))

  app.get('/openapi.yaml', { logLevel: 'warn' }, async (_request, reply) => {
    return reply.type('application/yaml; charset=utf-8').header('cache-control', 'no-cache').send(yaml)
  })
  app.get('/openapi.json', { logLevel: 'warn' }, async (_request, reply) => {
    return reply.type('application/json; charset=utf-8').header('cache-control', 'no-cache').send(json)
  })
}
