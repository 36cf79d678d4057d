// Row 6, memory: the cost of one cached credential. Runs in a fresh child process with
// --expose-gc: measure, fill a credential cache of `entries` with credentials shaped
// like STS's (built by JSON.parse, as the SDK builds them, so the strings are flat as
// in production), collect garbage, measure again. The baseline is taken before the
// cache exists, so lru-cache's arrays preallocated for `max` entries are counted.
import { randomBytes, randomInt } from 'node:crypto'
import type { StsCredentials } from '../src/alicloud/sts-types.js'
import { serve } from './lib/child.js'
import { serviceModule } from './lib/process.js'

export interface MemoryInit { entries: number }
export interface MemoryResult { entries: number, heapBytesPerEntry: number, rssBytesPerEntry: number, payloadBytesPerEntry: number, fillMs: number }

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
function alnum (n: number): string {
  const bytes = randomBytes(n)
  let s = ''
  for (const b of bytes) s += ALNUM[b % ALNUM.length]
  return s
}

function settle (): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('bench/memory needs --expose-gc')
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage()
}

serve<MemoryInit>(async ({ entries }) => {
  const { cacheKey, createCredentialCache } = await serviceModule<typeof import('../src/cache/credential-cache.js')>('cache/credential-cache')
  const policy = JSON.stringify({ Version: '1', Statement: [{ Effect: 'Allow', Action: ['oss:PutObject'], Resource: ['acs:oss:*:*:oss-bench/uploads/x/*'] }] })
  const before = settle()
  const cache = createCredentialCache({ maxEntries: entries, minRemainingSeconds: 1200 })
  const expiresAt = Date.now() + 3_600_000
  let payload = 0
  const started = performance.now()
  for (let i = 0; i < entries; i++) {
    // The SDK JSON.parses STS's answer; the client then builds this object from it.
    const raw = JSON.parse(JSON.stringify({
      AccessKeyId: `STS.${alnum(24)}`,
      AccessKeySecret: alnum(30),
      SecurityToken: `CAIS${randomBytes(randomInt(447, 747)).toString('base64')}`, // 600-1000 characters
      Expiration: new Date(expiresAt).toISOString()
    })) as Record<string, string>
    const credentials: StsCredentials = {
      accessKeyId: raw.AccessKeyId as string,
      accessKeySecret: raw.AccessKeySecret as string,
      securityToken: raw.SecurityToken as string,
      expiration: new Date(raw.Expiration as string)
    }
    payload += credentials.accessKeyId.length + credentials.accessKeySecret.length + credentials.securityToken.length
    const key = cacheKey({ roleArn: 'acs:ram::1234567890123456:role/oss-upload', policy, durationSeconds: 3600, roleSessionName: `u-${i}` })
    await cache.getOrFetch(key, async () => credentials)
  }
  const fillMs = performance.now() - started
  const after = settle()
  if (cache.size !== entries) throw new Error(`cache holds ${cache.size} entries, expected ${entries}`)
  const result: MemoryResult = {
    entries,
    heapBytesPerEntry: (after.heapUsed - before.heapUsed) / entries,
    rssBytesPerEntry: (after.rss - before.rss) / entries,
    payloadBytesPerEntry: payload / entries,
    fillMs
  }
  return { info: { result } }
})
