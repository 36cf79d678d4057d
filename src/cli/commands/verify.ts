// `sts-vending verify`: what an operator used to do by hand with ossutil or ossbrowser.
// Fetch credentials from a running service as a given user, then try with the real OSS
// client what they must and must not allow: list and write inside the directory (as
// the grant's actions say), nothing at the bucket root, in a sibling directory, or in a
// lookalike sibling (`alice-…/` next to `alice/`, the classic missing-slash policy).
// Prints expected against actual and exits 1 on any surprise. Works against real OSS
// (the endpoint the service returns) or an emulator (--oss-endpoint). Never prints the
// token or the credentials. Probe objects carry a random name; any written outside is
// deleted again when the credentials allow it, and reported when they do not.
import { randomBytes } from 'node:crypto'
import type { Static } from '@sinclair/typebox'
import type { CredentialsResponse } from '../../http/credentials/route.js'
import {
  EXIT_USAGE, Failure, PROGRAM, UsageError, credentialsUrl, defineCommand, loadOptional, readFileHead, required,
  type CliIo, type Options, type Values
} from '../args.js'

const help = `Usage: ${PROGRAM} verify --url <service> [--token-file <file>] [options]

Fetches credentials from POST <service>/credentials and checks with the OSS client
that they work inside the caller's directory and nowhere else.

  --url <url>              the sts-vending service, e.g. https://sts-vending.internal
                           (or its credentials URL, https://sts-vending.internal/credentials)
  --token-file <file>      a file holding the caller's JWT (or set STS_VENDING_TOKEN);
                           its contents are never printed
  --token <jwt>            the JWT itself (visible in the process list: prefer the above)
  --grant <name>           ask for this grant
  --oss-endpoint <url>     talk to this OSS endpoint instead of the one returned
                           (an emulator, or an internal endpoint); --endpoint is an alias
  --expect-actions <list>  comma-separated actions the grant must give, e.g. list,read,write
  --timeout <ms>           per request, default 10000
  -h, --help               show this help

Needs the optional package ali-oss.

Exit status: 0 every check as expected, 1 a surprise, 2 usage error, no credentials
or a missing optional package.
`

const options = {
  url: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  grant: { type: 'string' },
  'oss-endpoint': { type: 'string' },
  endpoint: { type: 'string' },
  'expect-actions': { type: 'string' },
  timeout: { type: 'string' }
} as const satisfies Options

/** More than any JWT an identity provider issues; a bigger file is the wrong file. */
export const MAX_TOKEN_BYTES = 16 * 1024

type Outcome = 'allowed' | 'denied'

interface Check {
  name: string
  expected: Outcome | string
  actual: Outcome | string
  ok: boolean
}

/** What POST /credentials answers in the default format: the route's own response schema. */
export type Vended = Static<typeof CredentialsResponse>

interface OssClient {
  list: (query: Record<string, string | number>) => Promise<unknown>
  put: (name: string, content: Buffer) => Promise<unknown>
  get: (name: string) => Promise<{ content: Buffer }>
  delete: (name: string) => Promise<unknown>
}

/** The fields verify relies on, checked at run time (the service may be any version). */
function isVended (v: unknown): v is Vended {
  if (v === null || typeof v !== 'object') return false
  const o = v as Record<string, unknown>
  return ['accessKeyId', 'accessKeySecret', 'securityToken', 'expiration', 'bucket', 'region', 'endpoint', 'prefix'].every((k) => typeof o[k] === 'string') &&
    Array.isArray(o.actions) && o.actions.every((a) => typeof a === 'string')
}

/** The parent directory of `a/b/c/` (`a/b/`), or '' at the top. */
function parentOf (prefix: string): string {
  const trimmed = prefix.slice(0, -1)
  const at = trimmed.lastIndexOf('/')
  return at === -1 ? '' : trimmed.slice(0, at + 1)
}

/** 'allowed' when OSS let the call through (a missing object still means authorised), 'denied' on AccessDenied. */
async function attempt (call: () => Promise<unknown>): Promise<Outcome | string> {
  try {
    await call()
    return 'allowed'
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === 'AccessDenied') return 'denied'
    if (code === 'NoSuchKey') return 'allowed'
    return `error: ${typeof code === 'string' && code !== '' ? code : (err as Error).name ?? 'unknown'}`
  }
}

/** At most MAX_TOKEN_BYTES + 1 bytes of the file: enough to tell that it is too large. */
async function readBounded (path: string): Promise<Buffer> {
  try {
    return await readFileHead(path, MAX_TOKEN_BYTES)
  } catch (err) {
    throw new UsageError(`cannot read --token-file: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
}

/**
 * Why a token is not a JWT, in words that never quote it: the wrong file (a .env, a key)
 * must not end up on the operator's terminal or in a CI log.
 */
function tokenProblem (token: string): string | undefined {
  if (token === '') return 'is empty'
  if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return `is too large for a JWT (more than ${MAX_TOKEN_BYTES} bytes)`
  const lines = token.split(/\r?\n/).length
  const notJwt = `does not hold a JWT (header.payload.signature in base64url${lines > 1 ? `; it has ${lines} lines` : ''}); its contents are not shown`
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) return notJwt
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8')) as unknown
    if (header === null || typeof header !== 'object' || Array.isArray(header)) return notJwt
  } catch {
    return notJwt
  }
  return undefined
}

async function readToken (values: { token?: string, 'token-file'?: string }, env: Record<string, string | undefined>): Promise<string> {
  if (values.token !== undefined && values['token-file'] !== undefined) throw new UsageError('give --token or --token-file, not both')
  const file = values['token-file']
  const [source, raw] = file !== undefined
    ? ['--token-file', (await readBounded(file)).toString('utf8')]
    : values.token !== undefined ? ['--token', values.token] : ['STS_VENDING_TOKEN', env.STS_VENDING_TOKEN]
  if (raw === undefined || (raw.trim() === '' && file === undefined)) {
    throw new UsageError('a token is required: --token-file <file>, --token <jwt> or STS_VENDING_TOKEN')
  }
  const token = raw.trim()
  const problem = tokenProblem(token)
  if (problem !== undefined) throw new UsageError(`${source} ${problem}`)
  return token
}

function table (checks: Check[]): string {
  const rows = [['CHECK', 'EXPECTED', 'ACTUAL', 'RESULT'], ...checks.map((c) => [c.name, c.expected, c.actual, c.ok ? 'ok' : 'SURPRISE'])]
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] as string).length)))
  return rows.map((r) => r.map((cell, i) => i < 3 ? cell.padEnd(widths[i] as number) : cell).join('  ')).join('\n') + '\n'
}

export const command = defineCommand({ help, options, run })

async function run (values: Values<typeof options>, io: CliIo): Promise<number> {
  const env = io.env ?? {}
  const service = credentialsUrl(required(values.url, 'url'))
  const ossEndpoint = values['oss-endpoint'] ?? values.endpoint
  if (ossEndpoint !== undefined && !/^https?:\/\/[^\s/]+\/?$/.test(ossEndpoint)) throw new UsageError('--oss-endpoint must be http(s)://host[:port]')
  let expectActions: string[] | undefined
  if (values['expect-actions'] !== undefined) {
    expectActions = values['expect-actions'].split(',').map((a) => a.trim()).filter((a) => a !== '')
    const unknown = expectActions.filter((a) => !['list', 'read', 'write', 'delete'].includes(a))
    if (unknown.length > 0) throw new UsageError(`--expect-actions: unknown action ${unknown.join(', ')} (list, read, write, delete)`)
  }
  let timeoutMs = 10_000
  if (values.timeout !== undefined) {
    timeoutMs = Number(values.timeout)
    if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 300_000) throw new UsageError('--timeout must be 100..300000 ms')
  }
  const token = await readToken(values, env)
  // Loaded before anything is asked of the service: a missing package is one line, not a
  // token spent.
  const OSS = (await loadOptional('ali-oss', async () => await import('ali-oss'))).default as unknown as new (options: Record<string, unknown>) => OssClient

  // 1. Credentials, as the caller would get them.
  let vended: Vended
  try {
    const res = await fetch(service, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(values.grant !== undefined ? { grant: values.grant } : {}),
      signal: AbortSignal.timeout(timeoutMs)
    })
    const text = await res.text()
    let body: unknown
    try { body = JSON.parse(text) } catch { body = undefined }
    if (res.status !== 200) {
      const e = (body ?? {}) as { code?: unknown, message?: unknown }
      const detail = typeof e.code === 'string' ? `${e.code}: ${typeof e.message === 'string' ? e.message : ''}` : 'no error document'
      throw new Failure(`POST /credentials answered ${res.status} (${detail})`, EXIT_USAGE)
    }
    if (!isVended(body)) throw new Failure('POST /credentials answered 200 without the expected fields', EXIT_USAGE)
    vended = body
  } catch (err) {
    if (err instanceof Failure) throw err
    // Only the cause's code: a fetch error's message can quote the request's headers.
    const cause = (err as { cause?: { code?: unknown } }).cause
    const why = (err as Error).name === 'TimeoutError' ? 'timed out' : typeof cause?.code === 'string' ? cause.code : 'connection failed'
    throw new Failure(`cannot reach ${service.origin}: ${why}`, EXIT_USAGE)
  }

  const endpoint = ossEndpoint ?? vended.endpoint
  const client = new OSS({
    accessKeyId: vended.accessKeyId,
    accessKeySecret: vended.accessKeySecret,
    stsToken: vended.securityToken,
    bucket: vended.bucket,
    region: `oss-${vended.region}`,
    endpoint,
    secure: endpoint.startsWith('https:'),
    timeout: timeoutMs,
    // One short run: no refresh, and no console warning about it.
    refreshSTSTokenInterval: 24 * 3600 * 1000
  })

  const granted = new Set<string>(vended.actions)
  const may = (a: string): Outcome => granted.has(a) ? 'allowed' : 'denied'
  const prefix = vended.prefix
  const parent = parentOf(prefix)
  const tag = `sts-vending-verify-${randomBytes(6).toString('hex')}`
  const inside = `${prefix}${tag}.txt`
  const outsideKeys = {
    root: `${tag}.txt`,
    sibling: `${parent}${tag}/probe.txt`,
    lookalike: `${prefix.slice(0, -1)}-${tag}/probe.txt`
  }
  const body = Buffer.from(`written by sts-vending verify at ${new Date().toISOString()}\n`)
  const checks: Check[] = []
  const check = (name: string, expected: Outcome | string, actual: Outcome | string): void => {
    checks.push({ name, expected, actual, ok: expected === actual })
  }

  io.stdout.write(`sts-vending verify: bucket ${vended.bucket} (${vended.region}) via ${endpoint}\n` +
    `  prefix ${prefix}, actions ${vended.actions.join(',')}, expires ${vended.expiration}\n\n`)

  if (expectActions !== undefined) {
    const want = [...new Set(expectActions)].sort().join(',')
    check('granted actions', want, [...granted].sort().join(','))
  }
  check(`list own directory ${prefix}`, may('list'), await attempt(() => client.list({ prefix, delimiter: '/', 'max-keys': 1 })))
  check('list the bucket root', 'denied', await attempt(() => client.list({ prefix: '', delimiter: '/', 'max-keys': 1 })))
  if (parent !== '') check(`list the parent ${parent}`, 'denied', await attempt(() => client.list({ prefix: parent, delimiter: '/', 'max-keys': 1 })))
  const put = await attempt(() => client.put(inside, body))
  check(`put ${inside}`, may('write'), put)
  check(`get ${inside}`, may('read'), await attempt(() => client.get(inside)))
  const del = await attempt(() => client.delete(inside))
  check(`delete ${inside}`, may('delete'), del)
  const leftBehind: string[] = []
  if (put === 'allowed' && del !== 'allowed') leftBehind.push(inside)
  for (const [where, key] of [['at the bucket root', outsideKeys.root], ['in a sibling directory', outsideKeys.sibling], ['in a lookalike sibling', outsideKeys.lookalike]] as const) {
    const got = await attempt(() => client.put(key, body))
    check(`put ${where}: ${key}`, 'denied', got)
    if (got === 'allowed' && await attempt(() => client.delete(key)) !== 'allowed') leftBehind.push(key)
  }

  io.stdout.write(table(checks))
  const surprises = checks.filter((c) => !c.ok)
  if (leftBehind.length > 0) io.stdout.write(`\nprobe objects left behind (no right to delete them): ${leftBehind.join(', ')}\n`)
  if (surprises.length === 0) {
    io.stdout.write(`\nall ${checks.length} checks as expected: the credentials reach ${prefix} and nothing else tried\n`)
    return 0
  }
  const escaped = surprises.some((c) => c.expected === 'denied' && c.actual === 'allowed')
  io.stdout.write(`\n${surprises.length} of ${checks.length} checks NOT as expected` +
    (escaped ? ': the credentials reach outside the caller\'s directory (check the grant and the role policy)' : '') + '\n')
  return 1
}
