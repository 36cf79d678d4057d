// `sts-vending sidecar`: serves ALIBABA_CLOUD_CREDENTIALS_URI inside a pod.
// @alicloud/credentials' `credentials_uri` provider sends a bare GET with no headers, so
// it cannot present a token itself. Putting a long-lived secret in the URL would leak it
// into logs and process listings; instead a sidecar in the workload's pod listens on
// loopback only (reachable from that pod alone), reads the pod's projected
// service-account token from its file on every request (kubelet rotates it), and asks
// the service with it as a Bearer token. The workload sets
// ALIBABA_CLOUD_CREDENTIALS_URI=http://127.0.0.1:<port>/credentials.
//
// Loopback is not enough on its own: a page in a browser on the same host (or sharing
// the pod's network) can rebind a DNS name of its own to 127.0.0.1 and read the answer.
// Such a request carries the page's name in `Host`, so only the loopback names with this
// port are answered. Both the token file and the service's answer are read up to a bound,
// and every failure is logged with its cause, never with the token or the credentials.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { isIP, type AddressInfo } from 'node:net'
import { pino, type Logger } from 'pino'
import { Agent, request } from 'undici'
import { PROGRAM, UsageError, credentialsUrl, defineCommand, readFileHead, required, type Options } from '../args.js'

/** A projected service-account token is 1-2 KB; a file bigger than this is not one. */
export const MAX_TOKEN_FILE_BYTES = 16 * 1024
/** A credentials answer is 2-3 KB. */
export const MAX_ANSWER_BYTES = 32 * 1024

export type SidecarLogger = Pick<Logger, 'warn' | 'error'>

export interface SidecarOptions {
  /** The service: its base URL or its credentials URL, e.g. http://sts-vending.platform.svc/credentials */
  serviceUrl: string
  tokenFile: string
  host?: string
  port?: number
  grant?: string
  timeoutMs?: number
  /** Where failures are logged. Default: nowhere. */
  logger?: SidecarLogger
}

export interface Sidecar { url: string, close (): Promise<void> }

function isLoopback (host: string): boolean {
  if (host === 'localhost') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  return host === '::1'
}

/** The Host values a loopback client sends for this listener; nothing else is answered. */
function allowedHosts (host: string, port: number): Set<string> {
  const names = new Set(['127.0.0.1', 'localhost', '[::1]', host.includes(':') ? `[${host}]` : host])
  const out = new Set<string>()
  for (const name of names) {
    out.add(`${name}:${port}`)
    // Clients leave out HTTP's default port.
    if (port === 80) out.add(name)
  }
  return out
}

function answer (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body))
}

/** An attacker-chosen header, made safe to log: printable ASCII only, bounded. */
function printable (value: string | undefined): string | undefined {
  return value === undefined ? undefined : value.replace(/[^\x20-\x7e]/g, '?').slice(0, 100)
}

class TokenFileProblem extends Error {}

async function readToken (path: string): Promise<string> {
  let head: Buffer
  try {
    head = await readFileHead(path, MAX_TOKEN_FILE_BYTES)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new TokenFileProblem(`${e.syscall === 'open' ? 'cannot be opened' : 'cannot be read'} (${e.code ?? 'error'})`)
  }
  if (head.length > MAX_TOKEN_FILE_BYTES) throw new TokenFileProblem(`is larger than ${MAX_TOKEN_FILE_BYTES} bytes`)
  const token = head.toString('utf8').trim()
  if (token === '') throw new TokenFileProblem('is empty')
  return token
}

/** The error code in the service's answer (credentials-uri `Code`, default `code`), when it looks like one. */
function errorCode (text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { Code?: unknown, code?: unknown, ErrorCode?: unknown }
    const code = body.Code ?? body.code ?? body.ErrorCode
    return typeof code === 'string' && /^[A-Za-z0-9_.]{1,64}$/.test(code) ? code : undefined
  } catch {
    return undefined
  }
}

export async function startSidecar (opts: SidecarOptions): Promise<Sidecar> {
  const host = opts.host ?? '127.0.0.1'
  if (!isLoopback(host)) throw new Error(`the sidecar listens on loopback only, not ${host}`)
  const log = opts.logger ?? pino({ level: 'silent' })
  const target = credentialsUrl(opts.serviceUrl)
  target.searchParams.set('format', 'credentials-uri')
  const body = JSON.stringify(opts.grant !== undefined ? { grant: opts.grant } : {})
  const timeoutMs = opts.timeoutMs ?? 10_000
  // Its own pool: the bound on the answer is undici's, and close() leaves no socket behind.
  const agent = new Agent({ maxResponseSize: MAX_ANSWER_BYTES, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  let hosts = new Set<string>()

  async function serve (res: ServerResponse): Promise<void> {
    let token: string
    try {
      token = await readToken(opts.tokenFile)
    } catch (err) {
      const cause = err instanceof TokenFileProblem ? err.message : 'cannot be read'
      log.error({ tokenFile: opts.tokenFile }, `the service-account token file ${cause}`)
      answer(res, 503, { Code: 'TokenUnavailable', Message: 'the service-account token file cannot be used' })
      return
    }
    let status: number
    let text: string
    try {
      const upstream = await request(target, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
        body,
        dispatcher: agent
      })
      status = upstream.statusCode
      text = await upstream.body.text()
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
        log.error({ service: target.origin }, `sts-vending answered with more than ${MAX_ANSWER_BYTES} bytes`)
        answer(res, 502, { Code: 'BadAnswer', Message: 'sts-vending answered with more than the sidecar accepts' })
        return
      }
      // Codes only: undici's messages are safe, but nothing from the request should reach a log.
      log.error({ service: target.origin, cause: typeof code === 'string' ? code : (err as Error).name }, 'sts-vending could not be reached')
      answer(res, 502, { Code: 'ServiceUnavailable', Message: 'sts-vending could not be reached' })
      return
    }
    if (status !== 200) {
      log.warn({ service: target.origin, status, code: errorCode(text) }, 'sts-vending refused the request')
    }
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(text)
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const hostHeader = req.headers.host?.toLowerCase()
    if (hostHeader === undefined || !hosts.has(hostHeader)) {
      log.warn({ host: printable(req.headers.host) }, 'refused a request for another Host (only loopback names are answered)')
      answer(res, 403, { Code: 'Forbidden', Message: 'only loopback names are answered' })
      return
    }
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/credentials') {
      log.warn({ method: printable(req.method), path: printable((req.url ?? '/').split('?')[0]) }, 'no such route')
      answer(res, 404, { Code: 'NotFound' })
      return
    }
    serve(res).catch((err: unknown) => {
      log.error({ cause: (err as Error).name }, 'the sidecar failed to answer')
      if (!res.headersSent) answer(res, 502, { Code: 'ServiceUnavailable', Message: 'sts-vending could not be reached' })
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 8099, host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  hosts = allowedHosts(host, port)
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/credentials`,
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await agent.close()
    }
  }
}

const help = `Usage: ${PROGRAM} sidecar --url <service> --token-file <path> [--listen 127.0.0.1:8099] [--grant <name>]

Serves ALIBABA_CLOUD_CREDENTIALS_URI for @alicloud/credentials inside a pod: on each
GET /credentials it reads the projected service-account token from --token-file and
asks sts-vending for credentials with it. Listens on loopback only, and answers only
requests addressed to a loopback name (Host 127.0.0.1, localhost or [::1] with its port).

  --url <url>           the sts-vending service, e.g. http://sts-vending.platform.svc
                        (or its credentials URL, …/credentials)
  --token-file <path>   the projected service-account token (read on every request)
  --listen <host:port>  loopback address to listen on (default 127.0.0.1:8099)
  --grant <name>        ask for this grant
  -h, --help            show this help

Failures are logged as JSON lines on stdout, never with the token or the credentials.

Exit codes: 0 stopped by SIGTERM or SIGINT, 1 cannot listen, 2 usage error.
`

const options = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  listen: { type: 'string' },
  grant: { type: 'string' }
} as const satisfies Options

function parseListen (listen: string): { host: string, port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen)
  const host = match?.[1] ?? match?.[2]
  const port = Number(match?.[3])
  if (host === undefined || !Number.isInteger(port) || port > 65_535) throw new UsageError('--listen must be <host>:<port>, e.g. 127.0.0.1:8099 or [::1]:8099')
  if (!isLoopback(host)) throw new UsageError(`--listen: the sidecar listens on loopback only, not ${host}`)
  return { host, port }
}

export const command = defineCommand({
  help,
  options,
  async run (v, io) {
    const url = required(v.url, 'url')
    const tokenFile = required(v['token-file'], 'token-file')
    credentialsUrl(url)
    const { host, port } = parseListen(v.listen ?? '127.0.0.1:8099')
    const logger = pino({ base: { name: 'sts-vending-sidecar' } }, { write: (line: string) => io.stdout.write(line) })
    let sidecar: Sidecar
    try {
      sidecar = await startSidecar({ serviceUrl: url, tokenFile, host, port, logger, ...(v.grant !== undefined ? { grant: v.grant } : {}) })
    } catch (err) {
      io.stderr.write(`${PROGRAM} sidecar: ${(err as Error).message}\n`)
      return 1
    }
    io.stdout.write(`${PROGRAM} sidecar: ALIBABA_CLOUD_CREDENTIALS_URI=${sidecar.url}\n`)
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve)
      process.once('SIGINT', resolve)
    })
    await sidecar.close()
    return 0
  }
})
