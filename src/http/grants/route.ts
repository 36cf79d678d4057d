// GET /grants: what this caller may get. The caller surface (caller-surface.ts) owns
// every guard (CORS, the origin, authentication, the per-caller limit, refusals); this
// family only reads the compiled grants. No STS call, no credential: the answer is what
// POST /credentials would decide for each grant, from config and the caller's claims,
// so it reveals nothing a request to /credentials could not (a grant whose directory
// cannot be made shows only its name and the CLAIM_NOT_USABLE reason).
import type { Caller } from '../../auth/caller.js'
import { MissingToken } from '../../errors.js'
import type { CompiledGrants } from '../../grants/compile.js'
import { availableGrants } from '../../grants/resolve.js'
import { canonicalActions } from '../../policy/build.js'
import { ossEndpoint } from '../../vend.js'
import type { CallerRoutes } from '../caller-surface.js'
import { ErrorResponse } from '../schemas.js'
import { GrantsResponse } from './schemas.js'

export interface GrantsRouteOptions {
  /** Compiled once at load: the same instance vending and signing decide from. */
  grants: CompiledGrants
}

/** The answer for one caller; pure, so tests can hold it against vending. */
export function grantsFor (grants: CompiledGrants, caller: Caller): GrantsResponse {
  const { usable, unusable } = availableGrants(grants, caller.issuer, caller.claims)
  return {
    grants: usable.map(({ grant: g, prefix }) => {
      const c = g.config
      const s = c.signing
      return {
        name: c.name,
        bucket: c.bucket,
        region: c.region,
        endpoint: c.endpoint ?? ossEndpoint(c.region),
        prefix,
        actions: canonicalActions(c.actions),
        durationSeconds: { min: g.minDurationSeconds, max: c.durationSeconds },
        ...(s !== undefined
          ? { signing: { maxBytes: s.maxBytes, expiresSeconds: s.expiresSeconds, ...(s.contentTypes !== undefined ? { contentTypes: [...s.contentTypes] } : {}) } }
          : {})
      }
    }),
    unusable
  }
}

export function grantsRoutes (opts: GrantsRouteOptions): CallerRoutes {
  return {
    name: 'grants',
    // Its own prefix: the CORS plugin's OPTIONS route is then /grants*, beside /credentials' `*`.
    prefix: '/grants',
    corsMethods: ['GET'],
    plugin: async (app) => {
      app.get('', { schema: { response: { 200: GrantsResponse, '4xx': ErrorResponse, '5xx': ErrorResponse } } }, async (request, reply) => {
        // Fail closed: without a verified caller (a hook removed by mistake) nothing is listed.
        if (request.caller === null) throw new MissingToken()
        // Per caller, and it changes with the config: never stored by a cache on the way.
        void reply.header('cache-control', 'no-store')
        return grantsFor(opts.grants, request.caller)
      })
    }
  }
}
