// The Redis connection: standalone (a URL), Sentinel or Cluster, all through ioredis.
// Redis holds shared state, never a dependency to fail on: the offline queue is off
// (a command while disconnected fails at once instead of queueing), every command has
// a timeout, a command is never retried (the caller falls back to local state), and
// the client reconnects by itself with capped backoff, finding the new master after a
// failover (Sentinel) or the new slot map (Cluster). Credentials come from the
// environment (settings.ts), never from a URL.
//
// A Redis that cannot be used says why, loudly: the first failure is one `error` line
// naming the cause (authentication, TLS, unknown host, refused...), repeated at most
// once a minute while it lasts, so a wrong password is seen at start and not in a
// slow trickle of cache misses.
import { Cluster, Redis, type RedisOptions as IoRedisOptions } from 'ioredis'
import { isIP } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import type { RedisNode, SharedStateSettings } from './settings.js'
import { tlsHandshakeErrors } from './tls-probe.js'

export type RedisClient = Redis | Cluster

export interface RedisLog {
  error: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
}

export interface RedisOptions {
  settings: Pick<SharedStateSettings, 'target' | 'username' | 'password' | 'tls' | 'tlsCa' | 'keyPrefix' | 'commandTimeoutMs'>
  /** Called on every change between connected (true) and not (false), with the cause when not. */
  onState?: (up: boolean, cause?: string) => void
  log?: RedisLog
  /** How often a lasting failure is logged again (ms). */
  repeatLogMs?: number
  now?: () => number
}

/** At most this often a Redis that stays down is logged again. */
export const REPEAT_LOG_MS = 60_000

// Reconnect forever, backing off to 2 s: sharing resumes once Redis is back.
const backoff = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000)

// OpenSSL's codes for a chain that does not end at a trusted root: the usual mistake
// with a private CA (tlsCaEnv unset, or holding another CA).
const UNTRUSTED_CERTIFICATE = /^(UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE)$/

/**
 * The cause of a connection error in a few plain words, for the log line and the
 * start-up line. Never the error's own text beyond its code: a server's reply may
 * echo what it was sent.
 */
export function redisFailureCause (err: unknown): string {
  // A cluster that cannot load its slot map says so; the node's own error says why.
  const last = (err as { lastNodeError?: unknown } | undefined)?.lastNodeError
  if (last !== undefined && last !== null) return redisFailureCause(last)
  const e = (err ?? {}) as { code?: unknown, message?: unknown }
  const code = typeof e.code === 'string' ? e.code : ''
  const msg = typeof e.message === 'string' ? e.message : ''
  // ioredis wraps what the last Sentinel said; its AUTH is not the master's.
  const sentinel = /^All sentinels are unreachable[^]*?Last error: ([^]*)$/.exec(msg)
  if (sentinel !== null && redisFailureCause(new Error(sentinel[1])).startsWith('authentication failed')) return 'Sentinel authentication failed (check redis.sentinelPasswordEnv, or passwordEnv when it is unset)'
  if (/^(WRONGPASS|NOAUTH)|invalid (username-)?password|AUTH <password> called without|no password is set/i.test(msg)) return 'authentication failed (check redis.usernameEnv and redis.passwordEnv)'
  if (/^NOPERM/.test(msg)) return 'the ACL user lacks a permission it needs'
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return 'unknown host'
  if (UNTRUSTED_CERTIFICATE.test(code)) return 'TLS failed (the server certificate is not trusted: check redis.tlsCaEnv)'
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'TLS failed (the server certificate does not name this host)'
  if (/^ERR_SSL|^ERR_TLS|CERT|^DEPTH_ZERO|^SELF_SIGNED|^UNABLE_TO/.test(code) || /SSL|TLS|certificate|wrong version number/i.test(msg)) return 'TLS failed'
  if (code === 'ECONNREFUSED') return 'connection refused'
  if (code === 'ETIMEDOUT' || /connect ETIMEDOUT/.test(msg)) return 'connection timed out'
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection reset'
  if (/All sentinels are unreachable/.test(msg)) return 'no Sentinel reachable'
  if (/sentinel|master/i.test(msg) && /not|no /i.test(msg)) return 'the Sentinels know no such master'
  if (/Failed to refresh slots cache|ClusterAllFailedError|None of startup nodes is available/i.test(msg)) return 'no cluster node reachable'
  if (/CLUSTERDOWN/.test(msg)) return 'the cluster is down'
  if (/READONLY/.test(msg)) return 'connected to a replica (failover under way)'
  if (code === 'ECONNABORTED' || /Connection is closed/.test(msg)) return 'connection closed'
  return code !== '' ? `connection error ${code}` : 'connection error'
}

// SNI carries a name, never an address (RFC 6066). A CA given in tlsCaEnv replaces
// the public roots: the certificate must chain to it.
function tlsFor (host: string | undefined, ca: string | undefined): ConnectionOptions {
  return {
    ...(host !== undefined && isIP(host.replace(/^\[(.*)\]$/, '$1')) === 0 ? { servername: host } : {}),
    ...(ca !== undefined ? { ca } : {})
  }
}

export function createRedis (opts: RedisOptions): RedisClient {
  const s = opts.settings
  const common: IoRedisOptions = {
    ...(s.username !== undefined ? { username: s.username } : {}),
    ...(s.password !== undefined ? { password: s.password } : {}),
    commandTimeout: s.commandTimeoutMs,
    connectTimeout: Math.max(1000, s.commandTimeoutMs * 4),
    maxRetriesPerRequest: 0,
    // A demoted master answers READONLY until Sentinel's CLIENT KILL: reconnect at once.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    lazyConnect: false
  }
  let redis: RedisClient
  // Where ioredis hides a TLS failure behind an inner connection (tls-probe.ts): the
  // nodes it first talks to, and the TLS options it uses for them.
  let probe: { nodes: RedisNode[], tls: ConnectionOptions } | undefined
  const t = s.target
  if (t.mode === 'cluster') {
    if (s.tls) probe = { nodes: t.nodes, tls: tlsFor(undefined, s.tlsCa) }
    redis = new Cluster(t.nodes, {
      keyPrefix: s.keyPrefix,
      enableOfflineQueue: false,
      clusterRetryStrategy: backoff,
      // A moved slot or a failover is followed within the command's own timeout.
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      slotsRefreshTimeout: Math.max(1000, s.commandTimeoutMs * 2),
      redisOptions: { ...common, ...(s.tls ? { tls: tlsFor(undefined, s.tlsCa) } : {}) }
    })
  } else if (t.mode === 'sentinel') {
    if (s.tls) probe = { nodes: t.sentinels, tls: tlsFor(undefined, s.tlsCa) }
    redis = new Redis({
      ...common,
      sentinels: t.sentinels,
      name: t.name,
      ...(t.sentinelPassword !== undefined ? { sentinelPassword: t.sentinelPassword } : {}),
      ...(t.sentinelUsername !== undefined ? { sentinelUsername: t.sentinelUsername } : {}),
      ...(s.tls ? { tls: tlsFor(undefined, s.tlsCa), enableTLSForSentinelMode: true, sentinelTLS: tlsFor(undefined, s.tlsCa) } : {}),
      // Learn of a promotion from the Sentinels' +switch-master at once.
      failoverDetector: true,
      sentinelRetryStrategy: backoff,
      retryStrategy: backoff,
      keyPrefix: s.keyPrefix,
      enableOfflineQueue: false
    })
  } else {
    const url = new URL(t.url)
    redis = new Redis(t.url, {
      ...common,
      ...(url.protocol === 'rediss:' ? { tls: tlsFor(url.hostname, s.tlsCa) } : {}),
      retryStrategy: backoff,
      keyPrefix: s.keyPrefix,
      enableOfflineQueue: false
    })
  }
  const explain = probe === undefined
    ? undefined
    : async (): Promise<string | undefined> => {
      const errors = await tlsHandshakeErrors(probe.nodes, probe.tls, Math.max(1000, s.commandTimeoutMs * 2))
      return errors.map(redisFailureCause).find((cause) => cause.startsWith('TLS'))
    }
  watchState(redis, opts, explain)
  return redis
}

// What ioredis says when an inner connection (a Sentinel asked for the master, a node
// asked for the slot map) failed for a reason it did not pass on.
const HIDDEN_CAUSES = new Set(['connection closed', 'no Sentinel reachable', 'no cluster node reachable'])

export interface RedisStatus { up: boolean, cause?: string | undefined }

const statusOf = new WeakMap<RedisClient, () => RedisStatus>()

/** Connected or not, and why not: for the start-up line. */
export function redisStatus (redis: RedisClient): RedisStatus {
  return statusOf.get(redis)?.() ?? { up: redis.status === 'ready' }
}

function watchState (redis: RedisClient, opts: RedisOptions, explain?: () => Promise<string | undefined>): void {
  const now = opts.now ?? Date.now
  const repeatMs = opts.repeatLogMs ?? REPEAT_LOG_MS
  let up = false
  let cause: string | undefined
  let loggedAt: number | undefined
  // What the last probe found behind a hidden cause, for the rest of the outage.
  let explained: string | undefined
  const lost = (): void => {
    if (!up) return
    up = false
    opts.onState?.(false, cause)
  }
  redis.on('ready', () => {
    if (up) return
    up = true
    cause = undefined
    loggedAt = undefined
    explained = undefined
    opts.onState?.(true)
    opts.log?.info({}, 'redis connected: sharing state with the fleet')
  })
  const report = (): void => {
    opts.log?.error({ redis: 'down', cause }, `redis down (${cause}): serving from local state`)
  }
  redis.on('error', (err: Error) => {
    let seen = redisFailureCause(err)
    // A plain server never answers a TLS hello: the handshake just times out.
    if (opts.settings.tls && seen === 'connection timed out') seen = 'TLS handshake timed out (does the server speak TLS?)'
    const hidden = explain !== undefined && HIDDEN_CAUSES.has(seen)
    cause = hidden ? explained ?? seen : seen
    lost()
    // Once per outage at first, then at most once a minute while it lasts: a Redis
    // that stays down must not flood the log, nor go unnoticed.
    const t = now()
    if (loggedAt !== undefined && t - loggedAt < repeatMs) return
    loggedAt = t
    if (!hidden) { report(); return }
    // The line waits for the probe (a handshake or two), so that it names the cause.
    void explain().catch(() => undefined).then((found) => {
      if (up) return
      explained = found
      if (found !== undefined) cause = found
      report()
    })
  })
  // A close is logged by the error that the reconnect meets, with its real cause.
  redis.on('close', lost)
  redis.on('end', lost)
  statusOf.set(redis, () => ({ up, cause: up ? undefined : cause ?? 'not connected yet' }))
}

/**
 * Wait (bounded) for the first connection, so that a replica that has just started
 * shares from its first request. Never fails: Redis is not a dependency to start on.
 */
export async function firstConnection (redis: RedisClient, withinMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true
  return await new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      redis.off('ready', onReady)
      resolve(ok)
    }
    const onReady = (): void => done(true)
    const timer = setTimeout(() => done(false), withinMs)
    redis.on('ready', onReady)
  })
}
