// The whole chain for end-to-end tests: the app (build harness, STS emulator through the
// real SDK) whose grant points at an OSS emulator that trusts that STS emulator, and
// the real `ali-oss` client built from what POST /credentials returned.
import OSS from 'ali-oss'
import { build, ROLE_ARN, type BuildOptions, type Harness } from './build.js'
import { startOssEmulator, type OssEmulator } from '../../devkit/emulator/oss.js'

export const BUCKET = 'oss-test'
export const ROLE_DIR = 'dir111/'

/** What the role itself may do: everything under dir111/ (the session policy narrows it to one user). */
export function rolePolicy (bucket = BUCKET, dir = ROLE_DIR): unknown {
  return {
    Version: '1',
    Statement: [
      { Effect: 'Allow', Action: ['oss:PutObject', 'oss:GetObject', 'oss:DeleteObject', 'oss:AbortMultipartUpload', 'oss:ListParts'], Resource: [`acs:oss:*:*:${bucket}/${dir}*`] },
      { Effect: 'Allow', Action: ['oss:ListObjects'], Resource: [`acs:oss:*:*:${bucket}`], Condition: { StringLike: { 'oss:Prefix': [`${dir}*`] } } }
    ]
  }
}

import type { Vended as VendedCredentials } from '../../src/cli/commands/verify.js'
export type { VendedCredentials }

export interface E2eHarness extends Harness {
  oss: OssEmulator
  /** Move the OSS emulator's clock (ms added to Date.now). */
  advanceOssClock: (ms: number) => void
  credentials: (sub: string, body?: unknown) => Promise<VendedCredentials>
  client: (c: VendedCredentials) => OSS
}

export interface E2eOptions extends BuildOptions {
  rolePolicy?: unknown
}

export function ossClient (c: VendedCredentials): OSS {
  return new OSS({
    accessKeyId: c.accessKeyId,
    accessKeySecret: c.accessKeySecret,
    stsToken: c.securityToken,
    bucket: c.bucket,
    region: `oss-${c.region}`,
    endpoint: c.endpoint,
    timeout: 5000,
    // Short-lived test clients: no refresh, and no console warning about it.
    refreshSTSTokenInterval: 24 * 3600 * 1000
  })
}

export async function buildE2e (t: Parameters<typeof build>[0], opts: E2eOptions = {}): Promise<E2eHarness> {
  let offset = 0
  const ref: { harness?: Harness } = {}
  const oss = await startOssEmulator({
    bucket: BUCKET,
    credentials: (id) => ref.harness?.emulator.issued(id),
    rolePolicies: { [ROLE_ARN]: opts.rolePolicy ?? rolePolicy() },
    now: () => Date.now() + offset
  })
  t.teardown(async () => { await oss.close() })
  const userConfig = opts.config
  const h = ref.harness = await build(t, {
    ...opts,
    config: (base, ctx) => {
      const patched = userConfig !== undefined ? userConfig(base, ctx) : base
      const grants = (patched.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, endpoint: oss.url }))
      return { ...patched, grants }
    }
  })
  return Object.assign(h, {
    oss,
    advanceOssClock: (ms: number) => { offset += ms },
    async credentials (sub: string, body: unknown = {}) {
      const res = await h.vend(h.token({ sub }), body)
      if (res.statusCode !== 200) throw new Error(`POST /credentials answered ${res.statusCode} ${JSON.stringify(res.json)}`)
      return res.json as VendedCredentials
    },
    client: ossClient
  })
}

/** The OSS error code of a failed call, or 'ok'. */
export async function outcome (p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}
