// Routes that exist only under `npm run dev` (startDevStack registers them; buildApp
// never does): a token minter for a typed user name, and the demo upload page with the
// browser build of ali-oss. The page is same-origin with the service, so
// POST /credentials needs no CORS; its uploads go to the OSS emulator, which allows
// this origin.
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { DevIssuer } from './issuer.js'

const PUBLIC = new URL('../public/', import.meta.url)
const TOKEN_TTL_SECONDS = 3600

const TokenRequest = Type.Object({
  user: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' })
}, { additionalProperties: false })

const TokenResponse = Type.Object({
  token: Type.String(),
  expiresIn: Type.Integer()
}, { additionalProperties: false })

export interface DevRoutesOptions {
  issuer: DevIssuer
  /** Where the page's uploads go, for its Content-Security-Policy. */
  ossOrigin: string
}

export default async function devRoutes (app: FastifyInstance, opts: DevRoutesOptions): Promise<void> {
  const sdkPath = createRequire(import.meta.url).resolve('ali-oss/dist/aliyun-oss-sdk.min.js')
  const csp = `default-src 'self'; connect-src 'self' ${opts.ossOrigin}; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'`

  app.post('/dev/token', {
    schema: { body: TokenRequest, response: { 200: TokenResponse } }
  }, async (request, reply) => {
    const { user } = request.body as Static<typeof TokenRequest>
    reply.header('cache-control', 'no-store')
    return { token: opts.issuer.mint({ sub: user }, { expiresInSeconds: TOKEN_TTL_SECONDS }), expiresIn: TOKEN_TTL_SECONDS }
  })

  const file = (path: string | URL, type: string) => async (_request: unknown, reply: import('fastify').FastifyReply) => {
    reply.type(type).header('content-security-policy', csp).header('x-content-type-options', 'nosniff')
    return await readFile(path)
  }
  app.get('/', async (_request, reply) => reply.redirect('/demo'))
  app.get('/demo', file(new URL('demo.html', PUBLIC), 'text/html; charset=utf-8'))
  app.get('/demo.js', file(new URL('demo.js', PUBLIC), 'text/javascript; charset=utf-8'))
  app.get('/vendor/aliyun-oss-sdk.min.js', file(sdkPath, 'text/javascript; charset=utf-8'))
  // Browsers ask for /favicon.ico whatever the page says; a 404 there reads as a broken stack.
  const icon = file(new URL('favicon.svg', PUBLIC), 'image/svg+xml')
  app.get('/favicon.svg', icon)
  app.get('/favicon.ico', icon)
}
