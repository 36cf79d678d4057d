// A loopback JWKS endpoint that counts fetches and can be taken down, for tests of
// key rotation, unknown-kid floods and identity-provider outages.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface JwksServer {
  url: string
  keys: Array<Record<string, unknown>>
  fetches: number
  down: boolean
  close (): Promise<void>
}

export async function startJwksServer (keys: Array<Record<string, unknown>>): Promise<JwksServer> {
  const state = { keys, fetches: 0, down: false }
  const server: Server = createServer((req, res) => {
    state.fetches++
    if (state.down) {
      res.writeHead(503).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }) as JwksServer
}
