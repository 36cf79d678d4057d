// Row 2, the verification baselines: the floor plus @fastify/jwt verifying the bearer
// token with the settings the service gives fast-jwt (algorithm pinned, exact iss and
// aud, the same required claims). Without a cache (2a-2c): what a route costs that
// verifies every token it is shown. With fast-jwt's own verify cache (2d, 2e:
// `verify: { cache: 10000 }`): the obvious way to build this service with the packages
// its design names, in front of a body it already has (issue 25's bar).
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { serviceModule } from '../lib/process.js'
import type { Running } from './host.js'

type Routes = typeof import('../../src/http/credentials/route.js')

export interface VerifyInit {
  body: Record<string, unknown>
  publicKey: string
  alg: 'RS256' | 'ES256'
  issuer: string
  audience: string
  /** fast-jwt's verify cache size; 0 or undefined: no cache. */
  cache?: number
}

export async function start (init: VerifyInit): Promise<Running> {
  const { CredentialsResponse } = await serviceModule<Routes>('http/credentials/route')
  const app = Fastify({ logger: false })
  await app.register(fastifyJwt, {
    secret: { public: init.publicKey },
    verify: {
      algorithms: [init.alg],
      allowedIss: init.issuer,
      allowedAud: init.audience,
      requiredClaims: ['iss', 'aud', 'sub', 'exp'],
      cache: init.cache !== undefined && init.cache > 0 ? init.cache : false
    }
  })
  app.addHook('onRequest', async (request) => { await request.jwtVerify() })
  app.post('/credentials', { schema: { response: { 200: CredentialsResponse } } }, async () => init.body)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  return { port: typeof address === 'object' && address !== null ? address.port : 0, close: async () => { await app.close() } }
}
