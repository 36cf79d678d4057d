// The credentials-URI sidecar. @alicloud/credentials' `credentials_uri` provider
// sends a bare GET with no headers, so it cannot present a token itself. Putting a
// long-lived secret in the URL would leak it into logs and process listings; instead
// a sidecar in the workload's pod listens on loopback only (reachable from that pod
// alone), reads the pod's projected service-account token from its file on every
// request (kubelet rotates it), and asks the service with it as a Bearer token.
// The workload sets ALIBABA_CLOUD_CREDENTIALS_URI=http://127.0.0.1:<port>/credentials.
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isIP } from 'node:net'
import { request } from 'undici'

export interface SidecarOptions {
  /** The service's credentials URL, e.g. http://sts-vending.platform.svc/credentials */
  serviceUrl: string
  tokenFile: string
  host?: string
  port?: number
  grant?: string
  timeoutMs?: number
}

export interface Sidecar { url: string, close (): Promise<void> }

function isLoopback (host: string): boolean {
  if (host === 'localhost') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  return host === '::1'
}

function answer (res: import('node:http').ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body))
}

export async function startSidecar (opts: SidecarOptions): Promise<Sidecar> {
  const host = opts.host ?? '127.0.0.1'
  if (!isLoopback(host)) throw new Error(`the sidecar listens on loopback only, not ${host}`)
  const target = new URL(opts.serviceUrl)
  target.searchParams.set('format', 'credentials-uri')
  const body = JSON.stringify(opts.grant !== undefined ? { grant: opts.grant } : {})
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/credentials') {
      answer(res, 404, { Code: 'NotFound' })
      return
    }
    ;(async () => {
      let token: string
      try {
        token = (await readFile(opts.tokenFile, 'utf8')).trim()
      } catch {
        answer(res, 503, { Code: 'TokenUnavailable', Message: 'the service-account token file cannot be read' })
        return
      }
      const upstream = await request(target, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
        body,
        headersTimeout: opts.timeoutMs ?? 10_000,
        bodyTimeout: opts.timeoutMs ?? 10_000
      })
      const text = await upstream.body.text()
      res.writeHead(upstream.statusCode, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(text)
    })().catch(() => answer(res, 502, { Code: 'ServiceUnavailable', Message: 'sts-vending could not be reached' }))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 8099, host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/credentials`,
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

export const SIDECAR_HELP = `Usage: sts-vending sidecar --url <service>/credentials --token-file <path> [--listen 127.0.0.1:8099] [--grant <name>]

Serves ALIBABA_CLOUD_CREDENTIALS_URI for @alicloud/credentials inside a pod: on each
GET /credentials it reads the projected service-account token from --token-file and
asks sts-vending for credentials with it. Listens on loopback only.`

export async function runSidecar (argv: string[], io: { stdout: { write: (s: string) => unknown }, stderr: { write: (s: string) => unknown } }): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(SIDECAR_HELP + '\n')
    return 0
  }
  const { parseArgs } = await import('node:util')
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: argv, options: { url: { type: 'string' }, 'token-file': { type: 'string' }, listen: { type: 'string' }, grant: { type: 'string' } }, strict: true }).values
  } catch (err) {
    io.stderr.write(`sts-vending sidecar: ${(err as Error).message}\n`)
    return 2
  }
  const url = values.url
  const tokenFile = values['token-file']
  if (typeof url !== 'string' || typeof tokenFile !== 'string') {
    io.stderr.write('sts-vending sidecar: --url and --token-file are required\n')
    return 2
  }
  const listen = typeof values.listen === 'string' ? values.listen : '127.0.0.1:8099'
  const colon = listen.lastIndexOf(':')
  const host = listen.slice(0, colon).replace(/^\[|\]$/g, '')
  const port = Number(listen.slice(colon + 1))
  try {
    const sidecar = await startSidecar({ serviceUrl: url, tokenFile, host, port, ...(typeof values.grant === 'string' ? { grant: values.grant } : {}) })
    io.stdout.write(`sts-vending sidecar: ALIBABA_CLOUD_CREDENTIALS_URI=${sidecar.url}\n`)
    const stop = (): void => { void sidecar.close().then(() => process.exit(0)) }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    return await new Promise<number>(() => {})
  } catch (err) {
    io.stderr.write(`sts-vending sidecar: ${(err as Error).message}\n`)
    return 1
  }
}
