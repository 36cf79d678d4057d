// A development identity provider: a generated key pair and a token minter. Used by
// `npm run dev` and by the tests (which also serve its JWKS over loopback).
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { createSigner } from 'fast-jwt'

export interface DevIssuer {
  issuer: string
  audience: string
  kid: string
  alg: 'RS256' | 'ES256'
  publicKeyPem: string
  privateKey: KeyObject
  publicJwk: Record<string, unknown>
  /** Sign a token; `claims` override the defaults (iss, aud, sub, iat, exp, jti). */
  mint (claims?: Record<string, unknown>, opts?: { expiresInSeconds?: number, header?: Record<string, unknown> }): string
}

export function createDevIssuer (opts: { issuer?: string, audience?: string, alg?: 'RS256' | 'ES256', kid?: string, now?: () => number } = {}): DevIssuer {
  const alg = opts.alg ?? 'RS256'
  const now = opts.now ?? Date.now
  const { publicKey, privateKey } = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const kid = opts.kid ?? randomUUID()
  const issuer = opts.issuer ?? 'https://dev-issuer.sts-vending.local/'
  const audience = opts.audience ?? 'sts-vending'
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  return {
    issuer,
    audience,
    kid,
    alg,
    privateKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
    mint (claims = {}, o = {}) {
      const iat = Math.floor(now() / 1000)
      const sign = createSigner({ key: privatePem, algorithm: alg, kid, ...(o.header !== undefined ? { header: o.header as never } : {}) })
      return sign({ iss: issuer, aud: audience, sub: 'alice', iat, exp: iat + (o.expiresInSeconds ?? 3600), jti: randomUUID(), ...claims })
    }
  }
}
