// The dev stack's stand-in for an application server: where the service forwards a
// verified upload event (signing.callback.forwardUrl). It checks X-Sts-Vending-Signature
// as an app should (HMAC-SHA256 over "<t>.<body>" with the shared secret, t recent) and
// answers JSON, which OSS relays to the browser: the demo page shows it.
import { SIGNATURE_HEADER } from '../../src/callback.js'
import { createServer, type Server } from 'node:http'
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { AddressInfo } from 'node:net'

export interface DevAppServer {
  /** e.g. http://127.0.0.1:<port>/uploads/landed */
  forwardUrl: string
  /** Events received with a valid signature, newest last. */
  events: Array<Record<string, unknown>>
  close: () => Promise<void>
}

const MAX_AGE_SECONDS = 300

export function signatureValid (secret: Buffer, header: string | undefined, body: string, nowSeconds: number): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '')
  if (m === null || Math.abs(nowSeconds - Number(m[1])) > MAX_AGE_SECONDS) return false
  const want = createHmac('sha256', secret).update(`${m[1]}.${body}`, 'utf8').digest()
  const given = Buffer.from(m[2] as string, 'hex')
  return given.length === want.length && timingSafeEqual(given, want)
}

export async function startDevAppServer (secret: Buffer): Promise<DevAppServer> {
  const events: Array<Record<string, unknown>> = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const header = req.headers[SIGNATURE_HEADER]
      if (req.method !== 'POST' || req.url !== '/uploads/landed' || !signatureValid(secret, typeof header === 'string' ? header : undefined, body, Date.now() / 1000)) {
        res.writeHead(403, { 'content-type': 'application/json' }).end('{"ok":false}')
        return
      }
      const event = JSON.parse(body) as Record<string, unknown>
      events.push(event)
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        ok: true,
        key: event.key,
        message: `the app received ${String(event.key)} (${String(event.size)} bytes)`
      }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    forwardUrl: `http://127.0.0.1:${port}/uploads/landed`,
    events,
    close: async () => { await new Promise<void>((resolve) => server.close(() => resolve())) }
  }
}
