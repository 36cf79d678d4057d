// Row 1, the floor: a bare Fastify route answering the same JSON, through the same
// response schema, as POST /credentials. What the framework and serialisation cost.
import Fastify from 'fastify'
import { serviceModule } from '../lib/process.js'
import type { Running } from './host.js'

type Routes = typeof import('../../src/http/credentials/route.js')

export interface FloorInit { body: Record<string, unknown> }

export async function start (init: FloorInit): Promise<Running> {
  const { body } = init
  const { CredentialsResponse } = await serviceModule<Routes>('http/credentials/route')
  const app = Fastify({ logger: false })
  app.post('/credentials', { schema: { response: { 200: CredentialsResponse } } }, async () => body)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  return { port: typeof address === 'object' && address !== null ? address.port : 0, close: async () => { await app.close() } }
}
