// The per-caller request limit of one route family (`rateLimit`): a fixed window per
// verified caller (issuer and subject; the client address only where no caller is
// known), with @fastify/rate-limit's headers, its 429 and its local store's rules: the
// same window arithmetic, the same bound on remembered callers (5,000), the same
// `x-ratelimit-*` and `retry-after` values. With Redis the family's count goes to the
// fleet's store (redis/rate-limit.ts), the same store object the plugin was given.
//
// Written here rather than taken from the plugin because a cache hit paid the plugin
// several promises for synchronous work (an awaited key generator, a Promise around the
// store's callback, an async hook) and a key string built per request (issue 25). Here
// the hook is a callback, the key is built once per caller object (the verifier hands
// out the same frozen caller for a token it remembers), and the local count is a Map
// lookup. The refusal is thrown at the same point (preHandler, after authentication)
// and answered by the family's error handler, as before.
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions, preHandlerHookHandler } from 'fastify'
import type { FastifyRateLimitStoreCtor, FastifyRateLimitStore } from '@fastify/rate-limit'
import type { Caller } from '../auth/caller.js'

/** @fastify/rate-limit's LocalStore default (toad-cache LRU of this many keys). */
export const REMEMBERED_CALLERS = 5000

export interface CallerLimitOptions {
  max: number
  timeWindowMs: number
  /** The fleet's store for this family; a local count when undefined. */
  store?: FastifyRateLimitStoreCtor | undefined
  /** The refusal to throw: gets the window's remaining ms. */
  refusal: (ttlMs: number) => Error
  now?: () => number
}

interface Window { current: number, startMs: number }

const keys = new WeakMap<Caller, string>()

function limitKey (request: FastifyRequest): string {
  const caller = request.caller
  if (caller === null) return request.ip
  let key = keys.get(caller)
  if (key === undefined) keys.set(caller, key = `${caller.issuer}\n${caller.subject}`)
  return key
}

/** Adds the limit to every route the family registers after this call (as the plugin's global hook did). */
export function callerLimit (routes: FastifyInstance, opts: CallerLimitOptions): void {
  const { max, timeWindowMs: timeWindow, refusal } = opts
  const now = opts.now ?? Date.now
  const windows = new Map<string, Window>()
  // The plugin constructs the store with its parsed settings; ours reads none of them.
  const Store = opts.store
  const shared: FastifyRateLimitStore | undefined = Store !== undefined
    ? new Store({ max, timeWindow } as unknown as ConstructorParameters<FastifyRateLimitStoreCtor>[0])
    : undefined

  /** LocalStore.incr: a new or expired window starts at 1; otherwise counted, with the time left. */
  function incrLocal (key: string): { current: number, ttl: number } {
    const t = now()
    let w = windows.get(key)
    if (w === undefined || w.startMs + timeWindow <= t) {
      if (w === undefined) {
        w = { current: 1, startMs: t }
        if (windows.size >= REMEMBERED_CALLERS) windows.delete(windows.keys().next().value as string)
      } else {
        w.current = 1
        w.startMs = t
        windows.delete(key) // re-inserted below: the Map's order is the windows' start order
      }
      windows.set(key, w)
      return { current: 1, ttl: timeWindow }
    }
    w.current++
    return { current: w.current, ttl: timeWindow - (t - w.startMs) }
  }

  function apply (reply: FastifyReply, current: number, ttl: number): Error | undefined {
    const ttlInSeconds = Math.ceil(ttl / 1000)
    void reply.header('x-ratelimit-limit', max)
    void reply.header('x-ratelimit-remaining', Math.max(0, max - current))
    void reply.header('x-ratelimit-reset', ttlInSeconds)
    if (current <= max) return undefined
    void reply.header('retry-after', ttlInSeconds)
    return refusal(ttl)
  }

  const hook: preHandlerHookHandler = function (request, reply, done) {
    const key = limitKey(request)
    if (shared === undefined) {
      const { current, ttl } = incrLocal(key)
      done(apply(reply, current, ttl))
      return
    }
    shared.incr(key, (err, res) => {
      if (err !== null) done(err)
      else done(apply(reply, res?.current ?? 0, res?.ttl ?? 0))
    }, timeWindow, max)
  }

  routes.addHook('onRoute', (route: RouteOptions) => {
    const existing = route.preHandler
    route.preHandler = existing === undefined ? [hook] : Array.isArray(existing) ? [...existing, hook] : [existing, hook]
  })
}
