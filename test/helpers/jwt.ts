// Hand-made JWS for attack cases the signer library would refuse to produce.
import { createHmac, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto'

export const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

export function signJws (header: Record<string, unknown>, payload: unknown, key: KeyObject | string | Buffer, alg = String(header.alg)): string {
  const input = `${b64(header)}.${b64(payload)}`
  let sig: Buffer
  if (alg.startsWith('HS')) {
    sig = createHmac(`sha${alg.slice(2)}`, key as string | Buffer).update(input).digest()
  } else if (alg.startsWith('PS')) {
    sig = createSign(`sha${alg.slice(2)}`).update(input).sign({ key: key as KeyObject, padding: 6, saltLength: Number(alg.slice(2)) / 8 })
  } else if (alg.startsWith('ES')) {
    sig = createSign(`sha${alg.slice(2)}`).update(input).sign({ key: key as KeyObject, dsaEncoding: 'ieee-p1363' })
  } else {
    sig = createSign(`sha${alg.slice(2)}`).update(input).sign(key as KeyObject)
  }
  return `${input}.${sig.toString('base64url')}`
}

export function claims (issuer: { issuer: string, audience: string }, extra: Record<string, unknown> = {}, nowMs = Date.now()): Record<string, unknown> {
  const iat = Math.floor(nowMs / 1000)
  return { iss: issuer.issuer, aud: issuer.audience, sub: 'alice', iat, exp: iat + 3600, ...extra }
}

export const otherRsaKey = (): KeyObject => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
