// A strict local stand-in for Alibaba Cloud STS AssumeRole, for tests, benchmarks and the
// dev server. It refuses what real STS refuses (bad ACS3 signature, unknown AccessKey,
// stale date, replayed nonce, bad RoleSessionName/DurationSeconds/RoleArn, oversized or
// ill-formed session policy) and answers errors with STS's JSON shape, so the real SDK
// classifies them as it would in production. Faults are injected per call, in order,
// to rehearse throttling, 5xx, slowness and hangs. Listens on 127.0.0.1 only.
import { listenLoopback, readBody } from './http.js'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { randomBytes, randomInt, randomUUID } from 'node:crypto'
import { NonceStore, verifyAcs3 } from './acs3.js'
import { checkPolicy, type RamPolicy } from './policy-grammar.js'

export type Fault =
  | { kind: 'throttle', count?: number, retryAfterSeconds?: number }
  | { kind: 'server-error', count?: number, status?: 500 | 502 | 503 }
  | { kind: 'slow', delayMs: number, count?: number }
  | { kind: 'hang', count?: number }
  | { kind: 'reject', code: string, status?: number, count?: number, message?: string }

export interface EmulatorLogger {
  debug: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
}

export interface StsEmulatorOptions {
  /** AccessKey id → secret of the callers allowed to sign requests. */
  accessKeys: Record<string, string>
  /** RoleArn → settings. When given, any other role is EntityNotExist.Role. */
  roles?: Record<string, { maxSessionDuration?: number }>
  /** Clock in ms, for x-acs-date checks and Expiration. Default Date.now. */
  now?: () => number
  /** Added to every call before it is answered. */
  latencyMs?: number
  logger?: EmulatorLogger
  /** Default 0 (any free port). */
  port?: number
}

export interface AssumeRoleCall {
  /** The AccessKey id that signed the call. */
  caller: string
  /** '' when absent. */
  roleArn: string
  /** '' when absent. */
  roleSessionName: string
  /** undefined when absent or not an integer. */
  durationSeconds: number | undefined
  policy: string | undefined
  externalId: string | undefined
  sourceIdentity: string | undefined
  /** Emulator clock at arrival, ms. */
  at: number
  /** 'ok', an STS error code, 'hang', 'pending' while in flight, or 'aborted'. */
  outcome: string
}

export interface IssuedCredential {
  accessKeyId: string
  accessKeySecret: string
  securityToken: string
  expiration: Date
  roleArn: string
  roleSessionName: string
  /** The session policy, parsed, or undefined when the call had none. */
  policy: RamPolicy | undefined
}

export interface StsEmulator {
  /** http://127.0.0.1:<port> */
  url: string
  /** Same as url: what createStsClient takes as its endpoint. */
  endpoint: string
  /** Every AssumeRole that passed the signature checks, in arrival order (faulted ones too). */
  calls: AssumeRoleCall[]
  readonly callCount: number
  /** Sockets currently open to the emulator, to prove clients let go of hung calls. */
  readonly openConnections: number
  inject: (fault: Fault) => void
  clearFaults: () => void
  issued: (accessKeyId: string) => IssuedCredential | undefined
  /** Forgets calls, faults, issued credentials and nonces. */
  reset: () => void
  close: () => Promise<void>
}

const DEFAULT_MAX_SESSION_DURATION = 3600
const MIN_DURATION = 900
const MAX_BODY_BYTES = 64 * 1024
const HOST_ID = 'sts.aliyuncs.com'

const ROLE_ARN = /^acs:ram::\d+:role\/[A-Za-z0-9.-]+$/
const SESSION_NAME = /^[A-Za-z0-9.@_-]{2,64}$/
const EXTERNAL_ID = /^[A-Za-z0-9=,.@:/-]{2,1224}$/
const SOURCE_IDENTITY = /^[A-Za-z0-9_+=,.@-]{2,64}$/
const INTEGER = /^\d{1,9}$/

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

function randomAlnum (length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += ALNUM[randomInt(ALNUM.length)]
  return out
}

function isoSeconds (ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}

interface Answer {
  status: number
  body: object
  headers?: Record<string, string>
}

interface ActiveFault {
  fault: Fault
  remaining: number
}

class Refusal {
  constructor (readonly status: number, readonly code: string, readonly message: string) {}
}

export async function startStsEmulator (opts: StsEmulatorOptions): Promise<StsEmulator> {
  const now = opts.now ?? Date.now
  const accessKeys = new Map(Object.entries(opts.accessKeys))
  const roles = opts.roles === undefined ? undefined : new Map(Object.entries(opts.roles))
  const nonces = new NonceStore()
  const issued = new Map<string, IssuedCredential>()
  const calls: AssumeRoleCall[] = []
  let faults: ActiveFault[] = []
  const sockets = new Set<Socket>()
  const sleepers = new Map<NodeJS.Timeout, () => void>()
  let closed = false

  // Resolves after ms, or at once when the emulator closes.
  function sleep (ms: number): Promise<void> {
    if (ms <= 0 || closed) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => { sleepers.delete(timer); resolve() }, ms)
      sleepers.set(timer, resolve)
    })
  }

  function nextFault (): Fault | undefined {
    const active = faults[0]
    if (active === undefined) return undefined
    active.remaining -= 1
    if (active.remaining <= 0) faults.shift()
    return active.fault
  }

  function errorBody (requestId: string, code: string, message: string): object {
    return { RequestId: requestId, HostId: HOST_ID, Code: code, Message: message, Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(code)}&product=Sts` }
  }

  function send (res: ServerResponse, requestId: string, answer: Answer): void {
    if (res.destroyed || closed) return
    const payload = JSON.stringify(answer.body)
    res.writeHead(answer.status, {
      'content-type': 'application/json;charset=utf-8',
      'content-length': Buffer.byteLength(payload),
      'x-acs-request-id': requestId,
      ...answer.headers
    })
    res.end(payload)
  }

  function validate (params: Map<string, string>): { roleArn: string, roleSessionName: string, durationSeconds: number, policy: RamPolicy | undefined, sourceIdentity: string | undefined } {
    const roleArn = params.get('RoleArn')
    if (roleArn === undefined || roleArn === '') throw new Refusal(400, 'MissingParameter.RoleArn', 'RoleArn is mandatory for this action.')
    if (!ROLE_ARN.test(roleArn)) throw new Refusal(400, 'InvalidParameter.RoleArn', 'The parameter RoleArn is wrongly formed.')
    let maxSessionDuration = DEFAULT_MAX_SESSION_DURATION
    if (roles !== undefined) {
      const role = roles.get(roleArn)
      if (role === undefined) throw new Refusal(404, 'EntityNotExist.Role', 'The specified Role not exists.')
      maxSessionDuration = role.maxSessionDuration ?? DEFAULT_MAX_SESSION_DURATION
    }
    const roleSessionName = params.get('RoleSessionName')
    if (roleSessionName === undefined || roleSessionName === '') throw new Refusal(400, 'MissingParameter.RoleSessionName', 'RoleSessionName is mandatory for this action.')
    if (!SESSION_NAME.test(roleSessionName)) throw new Refusal(400, 'InvalidParameter.RoleSessionName', 'The parameter RoleSessionName is wrongly formed.')
    const rawDuration = params.get('DurationSeconds')
    const durationSeconds = rawDuration === undefined ? Math.min(DEFAULT_MAX_SESSION_DURATION, maxSessionDuration) : INTEGER.test(rawDuration) ? Number(rawDuration) : NaN
    if (!(durationSeconds >= MIN_DURATION && durationSeconds <= maxSessionDuration)) {
      throw new Refusal(400, 'InvalidParameter.DurationSeconds', `The Min/Max value of DurationSeconds is ${MIN_DURATION}/${maxSessionDuration} seconds.`)
    }
    const externalId = params.get('ExternalId')
    if (externalId !== undefined && !EXTERNAL_ID.test(externalId)) throw new Refusal(400, 'InvalidParameter.ExternalId', 'The parameter ExternalId is wrongly formed.')
    const sourceIdentity = params.get('SourceIdentity')
    if (sourceIdentity !== undefined && !SOURCE_IDENTITY.test(sourceIdentity)) throw new Refusal(400, 'InvalidParameter.SourceIdentity', 'The parameter SourceIdentity is wrongly formed.')
    const policyText = params.get('Policy')
    let policy: RamPolicy | undefined
    if (policyText !== undefined) {
      const problem = checkPolicy(policyText)
      if (problem !== undefined) {
        throw new Refusal(400, problem.code, problem.code === 'InvalidParameter.PolicySize'
          ? 'The size of Policy must be smaller than 2048 bytes.'
          : `The policy has invalid grammar: ${problem.reason}.`)
      }
      policy = JSON.parse(policyText) as RamPolicy
    }
    return { roleArn, roleSessionName, durationSeconds, policy, sourceIdentity }
  }

  function issue (requestId: string, v: ReturnType<typeof validate>): object {
    const at = now()
    const cred: IssuedCredential = {
      accessKeyId: 'STS.' + randomAlnum(28),
      accessKeySecret: randomAlnum(44),
      // Real tokens are an opaque ~600-1000 character base64 blob starting with CAIS.
      securityToken: 'CAIS' + randomBytes(600).toString('base64'),
      expiration: new Date(Math.floor((at + v.durationSeconds * 1000) / 1000) * 1000),
      roleArn: v.roleArn,
      roleSessionName: v.roleSessionName,
      policy: v.policy
    }
    issued.set(cred.accessKeyId, cred)
    return {
      RequestId: requestId,
      AssumedRoleUser: {
        Arn: `${v.roleArn}/${v.roleSessionName}`,
        AssumedRoleId: `${randomInt(1e8, 1e9)}${randomInt(1e8, 1e9)}:${v.roleSessionName}`
      },
      Credentials: {
        AccessKeyId: cred.accessKeyId,
        AccessKeySecret: cred.accessKeySecret,
        SecurityToken: cred.securityToken,
        Expiration: isoSeconds(cred.expiration.getTime())
      },
      // STS answers with the SourceIdentity the session now carries, when one was set.
      ...(v.sourceIdentity !== undefined ? { SourceIdentity: v.sourceIdentity } : {})
    }
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID().toUpperCase()
    const fail = (status: number, code: string, message: string): void => {
      opts.logger?.debug({ requestId, code }, 'sts emulator refused a call')
      send(res, requestId, { status, body: errorBody(requestId, code, message) })
    }
    const body = await readBody(req, MAX_BODY_BYTES)
    if (body === undefined) return fail(413, 'InvalidParameter.BodyTooLarge', 'The request body is too large.')
    await sleep(opts.latencyMs ?? 0)

    const verdict = verifyAcs3({ method: req.method ?? '', url: req.url ?? '/', headers: req.headersDistinct, body }, {
      secretFor: (id) => accessKeys.get(id),
      nowMs: now(),
      nonces
    })
    if (!verdict.ok) return fail(verdict.status, verdict.code, verdict.message)

    const path = (req.url ?? '/').split('?')[0]
    if ((req.method !== 'POST' && req.method !== 'GET') || path !== '/' ||
        req.headers['x-acs-action'] !== 'AssumeRole' || req.headers['x-acs-version'] !== '2015-04-01') {
      return fail(404, 'InvalidAction.NotFound', 'Specified api is not found, please check your url and method.')
    }

    const p = verdict.params
    const rawDuration = p.get('DurationSeconds')
    const call: AssumeRoleCall = {
      caller: verdict.accessKeyId,
      roleArn: p.get('RoleArn') ?? '',
      roleSessionName: p.get('RoleSessionName') ?? '',
      durationSeconds: rawDuration !== undefined && INTEGER.test(rawDuration) ? Number(rawDuration) : undefined,
      policy: p.get('Policy'),
      externalId: p.get('ExternalId'),
      sourceIdentity: p.get('SourceIdentity'),
      at: now(),
      outcome: 'pending'
    }
    calls.push(call)

    const fault = nextFault()
    if (fault?.kind === 'hang') {
      call.outcome = 'hang'
      return // never answered; close() destroys the socket
    }
    if (fault?.kind === 'slow') await sleep(fault.delayMs)
    if (closed || res.destroyed) {
      call.outcome = 'aborted'
      return
    }
    let answer: Answer
    if (fault?.kind === 'throttle') {
      const headers: Record<string, string> = {}
      if (fault.retryAfterSeconds !== undefined) {
        // openapi-core reads x-acs-retry-after as milliseconds (getThrottlingTimeLeft → backoff delay).
        headers['x-acs-retry-after'] = String(Math.round(fault.retryAfterSeconds * 1000))
        headers['retry-after'] = String(Math.ceil(fault.retryAfterSeconds))
      }
      answer = { status: 400, headers, body: errorBody(requestId, 'Throttling.User', 'Request was denied due to user flow control.') }
    } else if (fault?.kind === 'server-error') {
      const status = fault.status ?? 500
      answer = status === 500
        ? { status, body: errorBody(requestId, 'InternalError', 'The request processing has failed due to some unknown error.') }
        : { status, body: errorBody(requestId, 'ServiceUnavailable', 'The request has failed due to a temporary failure of the server.') }
    } else if (fault?.kind === 'reject') {
      answer = { status: fault.status ?? 400, body: errorBody(requestId, fault.code, fault.message ?? `Injected refusal: ${fault.code}.`) }
    } else {
      try {
        answer = { status: 200, body: issue(requestId, validate(p)) }
      } catch (err) {
        if (!(err instanceof Refusal)) throw err
        answer = { status: err.status, body: errorBody(requestId, err.code, err.message) }
      }
    }
    call.outcome = answer.status === 200 ? 'ok' : (answer.body as { Code: string }).Code
    opts.logger?.debug({ requestId, roleArn: call.roleArn, outcome: call.outcome }, 'sts emulator AssumeRole')
    send(res, requestId, answer)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'sts emulator failed')
      if (!res.headersSent && !res.destroyed) send(res, 'emulator', { status: 500, body: errorBody('emulator', 'InternalError', 'Emulator failure.') })
    })
  })
  const url = await listenLoopback(server, opts.port ?? 0, sockets)

  return {
    url,
    endpoint: url,
    calls,
    get callCount () { return calls.length },
    get openConnections () { return sockets.size },
    inject (fault) {
      const count = fault.count ?? Infinity
      if (!(count >= 1)) throw new RangeError('fault count must be at least 1')
      faults.push({ fault, remaining: count })
    },
    clearFaults () { faults = [] },
    issued (accessKeyId) { return issued.get(accessKeyId) },
    reset () {
      calls.length = 0
      faults = []
      issued.clear()
      nonces.clear()
    },
    async close () {
      if (closed) return
      closed = true
      for (const [timer, wake] of sleepers) {
        clearTimeout(timer)
        wake()
      }
      sleepers.clear()
      const done = new Promise<void>((resolve) => server.close(() => resolve()))
      const gone = [...sockets].map((socket) => new Promise<void>((resolve) => {
        socket.once('close', () => resolve())
        socket.destroy()
      }))
      await Promise.all([done, ...gone])
    }
  }
}
