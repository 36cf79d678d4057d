// Encryption at rest for shared entries. Nothing in Redis may show an AccessKeyId,
// secret, security token, subject or directory in plaintext, and a guessable cache
// key must not be readable from an entry's name either:
//  - names are HMAC-SHA256 of the local cache key under a naming key derived from the
//    LAST configured key, so putting a new key at the FRONT of the list (rotation)
//    keeps every existing name reachable;
//  - values are AES-256-GCM under a key derived from the FIRST key, with a random
//    96-bit nonce, the entry's name as additional data (a value copied under another
//    name does not authenticate) and a key id, so every configured key decrypts.
// Anything that does not authenticate is a miss for the caller, never an error.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto'
import type { StsCredentials } from '../alicloud/sts-types.js'

const VERSION = 1
const KID_BYTES = 4
const NONCE_BYTES = 12
const TAG_BYTES = 16
const HEADER_BYTES = 1 + KID_BYTES + NONCE_BYTES

export const CACHE_KEY_BYTES = 32

interface DataKey { kid: Buffer, key: Buffer }

export interface EntryCipher {
  /** The Redis name (before keyPrefix) of a namespaced item, e.g. ('c', cacheKey). */
  name (kind: string, id: string): string
  seal (name: string, credentials: StsCredentials): Buffer
  /** undefined for anything that is not a value we sealed under one of our keys. */
  open (name: string, value: Buffer): StsCredentials | undefined
  /** Any text, sealed the same way (the deny list's records). */
  sealText (name: string, text: string): Buffer
  openText (name: string, value: Buffer): string | undefined
}

function derive (key: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `sts-vending ${info}`, 32))
}

/**
 * Parse the env var's text: comma-separated base64 keys of exactly 32 bytes. The
 * error message never contains key material.
 */
export function parseCacheKeys (text: string | undefined, envName: string): Buffer[] {
  if (text === undefined || text.trim() === '') throw new Error(`${envName}: not set; it must hold comma-separated base64 32-byte keys`)
  const parts = text.split(',').map((s) => s.trim())
  return parts.map((p, i) => {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(p) && !/^[A-Za-z0-9_-]+={0,2}$/.test(p)) throw new Error(`${envName}: key ${i + 1} is not base64`)
    const key = Buffer.from(p, p.includes('-') || p.includes('_') ? 'base64url' : 'base64')
    if (key.length !== CACHE_KEY_BYTES) throw new Error(`${envName}: key ${i + 1} is ${key.length} bytes, not ${CACHE_KEY_BYTES}`)
    return key
  })
}

export function createEntryCipher (keys: Buffer[]): EntryCipher {
  const first = keys[0]
  const last = keys[keys.length - 1]
  if (first === undefined || last === undefined) throw new Error('no cache keys')
  const dataKeys: DataKey[] = keys.map((k) => ({ kid: derive(k, 'key id').subarray(0, KID_BYTES), key: derive(k, 'entry encryption') }))
  const sealing = dataKeys[0] as DataKey
  const namingKey = derive(last, 'entry naming')

  function sealText (name: string, text: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES)
    const header = Buffer.concat([Buffer.from([VERSION]), sealing.kid, nonce])
    const cipher = createCipheriv('aes-256-gcm', sealing.key, nonce)
    cipher.setAAD(Buffer.concat([header, Buffer.from(name)]))
    const body = Buffer.concat([cipher.update(Buffer.from(text, 'utf8')), cipher.final()])
    return Buffer.concat([header, body, cipher.getAuthTag()])
  }

  function openText (name: string, value: Buffer): string | undefined {
    if (value.length < HEADER_BYTES + TAG_BYTES + 1 || value[0] !== VERSION) return undefined
    const kid = value.subarray(1, 1 + KID_BYTES)
    const dk = dataKeys.find((k) => k.kid.equals(kid))
    if (dk === undefined) return undefined
    const header = value.subarray(0, HEADER_BYTES)
    try {
      const decipher = createDecipheriv('aes-256-gcm', dk.key, value.subarray(1 + KID_BYTES, HEADER_BYTES))
      decipher.setAAD(Buffer.concat([header, Buffer.from(name)]))
      decipher.setAuthTag(value.subarray(value.length - TAG_BYTES))
      return Buffer.concat([decipher.update(value.subarray(HEADER_BYTES, value.length - TAG_BYTES)), decipher.final()]).toString('utf8')
    } catch {
      return undefined
    }
  }

  return {
    name (kind, id) {
      return `${kind}:${createHmac('sha256', namingKey).update(`${kind}\n${id}`).digest('base64url')}`
    },
    seal (name, c) {
      return sealText(name, JSON.stringify([c.accessKeyId, c.accessKeySecret, c.securityToken, c.expiration.getTime()]))
    },
    open (name, value) {
      const text = openText(name, value)
      if (text === undefined) return undefined
      try {
        const parsed: unknown = JSON.parse(text)
        if (!Array.isArray(parsed) || parsed.length !== 4) return undefined
        const [id, secret, token, exp] = parsed as unknown[]
        if (typeof id !== 'string' || typeof secret !== 'string' || typeof token !== 'string' || typeof exp !== 'number' || !Number.isFinite(exp)) return undefined
        return { accessKeyId: id, accessKeySecret: secret, securityToken: token, expiration: new Date(exp) }
      } catch {
        return undefined
      }
    },
    sealText,
    openText
  }
}
