// Small helpers the loopback emulators share.
import type { IncomingMessage, Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** The whole request body, or undefined once it passes maxBytes. */
export async function readBody (req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const buf = chunk as Buffer
    size += buf.length
    if (size > maxBytes) return undefined
    chunks.push(buf)
  }
  return Buffer.concat(chunks)
}

/** Listen on loopback only, tracking sockets so close() can end hung ones; returns the base URL. */
export async function listenLoopback (server: Server, port: number, sockets: Set<Socket>): Promise<string> {
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
