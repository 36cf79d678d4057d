// The emulators a development run needs, for the dev stack's own grant or for a user's
// config: one STS emulator that knows every role the grants name (MaxSessionDuration
// large enough for their durations), one OSS emulator per bucket (a role may do anything
// in the buckets its grants name, so only the session policy the service builds narrows
// what a caller gets, as with a broad real role), and, for `npm run emulators`, a RAM
// emulator for `provision --endpoint`. One generated AccessKey signs STS and RAM calls.
import { randomBytes } from 'node:crypto'
import type { GrantConfig } from '../../src/config/schema.js'
import { startOssEmulator, type OssEmulator } from '../emulator/oss.js'
import { startStsEmulator, type StsEmulator } from '../emulator/sts.js'
import { startRamEmulator, type RamEmulator } from '../emulator/ram.js'

export const DEV_ROLE_ARN = 'acs:ram::1000000000000000:role/sts-vending-dev'
export const DEV_BUCKET = 'dev-bucket'
export const DEV_REGION = 'cn-hangzhou'
/** The RAM user the RAM emulator starts with: the caller a `provision --ram-user` run trusts. */
export const RAM_USER = 'sts-vending'

/** What the dev role may do in OSS: everything under users/. Each session policy narrows it to one user. */
export function devRolePolicy (bucket = DEV_BUCKET): unknown {
  return {
    Version: '1',
    Statement: [
      { Effect: 'Allow', Action: ['oss:PutObject', 'oss:GetObject', 'oss:DeleteObject', 'oss:AbortMultipartUpload', 'oss:ListParts'], Resource: [`acs:oss:*:*:${bucket}/users/*`] },
      { Effect: 'Allow', Action: ['oss:ListObjects'], Resource: [`acs:oss:*:*:${bucket}`], Condition: { StringLike: { 'oss:Prefix': ['users/*'] } } }
    ]
  }
}

/** A user's role in the emulators: anything in its grants' buckets. */
function openRolePolicy (buckets: readonly string[]): unknown {
  return { Version: '1', Statement: [{ Effect: 'Allow', Action: ['oss:*'], Resource: buckets.flatMap((b) => [`acs:oss:*:*:${b}`, `acs:oss:*:*:${b}/*`]) }] }
}

export interface EmulatorsOptions {
  /** A user's grants; default the dev stack's one role on DEV_BUCKET. */
  grants?: readonly GrantConfig[]
  /** Origins the OSS emulators' CORS rule allows (pages that upload from the browser). */
  origins?: readonly string[]
  /** Start a RAM emulator too (for `provision --endpoint`), with RAM_USER in it. */
  ram?: boolean
  /** Fixed ports (0 = any free one); the OSS emulators take ossPort, ossPort + 1, … */
  ports?: { sts?: number, ram?: number, oss?: number }
}

export interface Emulators {
  accessKeyId: string
  accessKeySecret: string
  sts: StsEmulator
  ram: RamEmulator | undefined
  /** One per bucket, in the order the grants first name them. */
  oss: OssEmulator[]
  ossFor: (bucket: string) => OssEmulator
  allowOrigin: (origin: string) => void
  close: () => Promise<void>
}

export async function startEmulators (opts: EmulatorsOptions = {}): Promise<Emulators> {
  const accessKeyId = `dev${randomBytes(8).toString('hex')}`
  const accessKeySecret = randomBytes(24).toString('base64url')
  const started: Array<{ close: () => Promise<void> }> = []
  const close = async (): Promise<void> => { for (const e of started.splice(0).reverse()) await e.close() }
  try {
    // Role → { its buckets, the longest duration asked }; bucket → region.
    const roles = new Map<string, { buckets: Set<string>, maxDuration: number }>()
    const regions = new Map<string, string>()
    for (const g of opts.grants ?? []) {
      const role = roles.get(g.roleArn) ?? { buckets: new Set<string>(), maxDuration: 3600 }
      role.buckets.add(g.bucket)
      role.maxDuration = Math.max(role.maxDuration, g.durationSeconds)
      roles.set(g.roleArn, role)
      if (!regions.has(g.bucket)) regions.set(g.bucket, g.region)
    }
    const own = opts.grants === undefined
    const sts = await startStsEmulator({
      accessKeys: { [accessKeyId]: accessKeySecret },
      roles: own ? { [DEV_ROLE_ARN]: { maxSessionDuration: 3600 } } : Object.fromEntries([...roles].map(([arn, r]) => [arn, { maxSessionDuration: r.maxDuration }])),
      ...(opts.ports?.sts !== undefined ? { port: opts.ports.sts } : {})
    })
    started.push(sts)
    const ram = opts.ram === true ? await startRamEmulator({ accessKeys: { [accessKeyId]: accessKeySecret }, users: [RAM_USER], ...(opts.ports?.ram !== undefined ? { port: opts.ports.ram } : {}) }) : undefined
    if (ram !== undefined) started.push(ram)
    const buckets = own ? new Map([[DEV_BUCKET, DEV_REGION]]) : regions
    const oss: OssEmulator[] = []
    let i = 0
    for (const [bucket, region] of buckets) {
      const rolePolicies = own
        ? { [DEV_ROLE_ARN]: devRolePolicy(bucket) }
        : Object.fromEntries([...roles].filter(([, r]) => r.buckets.has(bucket)).map(([arn, r]) => [arn, openRolePolicy([...r.buckets])]))
      const port = opts.ports?.oss !== undefined && opts.ports.oss !== 0 ? opts.ports.oss + i : 0
      const emulator = await startOssEmulator({ bucket, region, credentials: (id) => sts.issued(id), rolePolicies, corsOrigins: [...opts.origins ?? []], port })
      started.push(emulator)
      oss.push(emulator)
      i++
    }
    return {
      accessKeyId,
      accessKeySecret,
      sts,
      ram,
      oss,
      ossFor: (bucket) => {
        const found = oss.find((o) => o.bucket === bucket)
        if (found === undefined) throw new Error(`no OSS emulator for bucket ${bucket}`)
        return found
      },
      allowOrigin: (origin) => { for (const o of oss) o.allowOrigin(origin) },
      close
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** `http://a.example:5173` as an origin (scheme, host, port; no path), or an Error saying why not. */
export function parseOrigin (value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new Error(`--allow-origin: not a URL: ${value}`)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== value.replace(/\/$/, '')) {
    throw new Error(`--allow-origin: not an origin (scheme://host[:port], no path): ${value}`)
  }
  return url.origin
}
