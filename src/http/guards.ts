// Refusals of every caller route decided from the request line and headers alone, before
// any token is read or any body parsed: they cost no crypto and never reach STS.
import type { FastifyRequest } from 'fastify'
import { OriginNotAllowed, TokenInQuery } from '../errors.js'

/** A page served by this service itself (the dev demo) is not cross-origin. */
function sameOrigin (origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host
  } catch {
    return false
  }
}

/** Browsers: only the configured origins (and this service's own) may call the route. */
export function assertOriginAllowed (request: FastifyRequest, origins: ReadonlySet<string>): void {
  const origin = request.headers.origin
  if (origin !== undefined && !origins.has(origin) && !sameOrigin(origin, request.headers.host)) throw new OriginNotAllowed()
}

// Compared after lower-casing and `-` -> `_`: `?Token=`, `?ACCESS-TOKEN=` are the same leak.
const QUERY_TOKEN_NAMES = new Set(['token', 'access_token', 'jwt', 'id_token', 'authorization'])

/**
 * A token in the URL ends up in proxy and access logs and in browser history: refuse
 * it (400) even when a valid Authorization header comes with it, so that the mistake
 * is noticed instead of working.
 */
export function assertNoQueryToken (query: unknown): void {
  if (query === null || typeof query !== 'object') return
  if (Object.keys(query).some((name) => QUERY_TOKEN_NAMES.has(name.toLowerCase().replaceAll('-', '_')))) throw new TokenInQuery()
}
