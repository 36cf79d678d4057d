// Row 2, the verification baseline: the floor plus @fastify/jwt verifying the bearer
// token with the settings the service gives fast-jwt (algorithm pinned, exact iss and
// aud, the same required claims, no verifier cache unless `cacheSize` says otherwise).
// Two variants isolate how the key reaches fast-jwt (rows 2d and 2e).
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { createVerifier } from 'fast-jwt'
import { serviceModule } from '../lib/process.js'
import type { Running } from './host.js'

type Routes = typeof import('../../src/http/credentials/route.js')

export interface VerifyInit {
  body: Record<string, unknown>
  publicKey: string
  alg: 'RS256' | 'ES256'
  issuer: string
  audience: string
  /** fast-jwt's verifier cache (a token → payload LRU of this many entries); 0 = off, as in the service. */
  cacheSize: number
  /**
   * How the key is handed over: 'static' (a PEM, parsed once); 'function' (an async
   * secret function: @fastify/jwt calls it, then keeps one verifier per key string);
   * 'callback' (fast-jwt's own async `key` callback, as src/auth/verifier.ts uses it:
   * fast-jwt then parses the PEM into a KeyObject again on every verification).
   */
  key: 'static' | 'function' | 'callback'
}

export async function start (init: VerifyInit): Promise<Running> {
  const { CredentialsResponse } = await serviceModule<Routes>('http/credentials/route')
  const options = {
    algorithms: [init.alg],
    allowedIss: init.issuer,
    allowedAud: init.audience,
    requiredClaims: ['iss', 'aud', 'sub', 'exp'],
    cache: init.cacheSize > 0 ? init.cacheSize : false
  }
  const app = Fastify({ logger: false })
  if (init.key === 'callback') {
    const verify = createVerifier({ ...options, key: async () => init.publicKey })
    app.addHook('onRequest', async (request) => {
      await verify((request.headers.authorization ?? '').slice('Bearer '.length))
    })
  } else {
    await app.register(fastifyJwt, {
      secret: init.key === 'function' ? async () => init.publicKey : { public: init.publicKey },
      verify: options
    })
    app.addHook('onRequest', async (request) => { await request.jwtVerify() })
  }
  app.post('/credentials', { schema: { response: { 200: CredentialsResponse } } }, async () => init.body)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  return { port: typeof address === 'object' && address !== null ? address.port : 0, close: async () => { await app.close() } }
}
