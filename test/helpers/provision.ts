// Shared by the provision tests: a RAM emulator with one RAM user, a test key, a RAM
// client (our wrapper over the real SDK) signed with it, and the seed's example request.
import { randomBytes } from 'node:crypto'
import { startRamEmulator, type RamEmulator } from '../../devkit/emulator/ram.js'
import { createStaticCredential } from '../../src/alicloud/credentials.js'
import { createRamClient } from '../../src/alicloud/ram-client.js'
import { defaultGrantName, defaultRoleName, type ProvisionRequest } from '../../src/cli/provision/documents.js'
import type { RamOperations } from '../../src/alicloud/ram-types.js'

export const ACCOUNT = '1234567890123456'
export const BUCKET = 'oss-test'
export const PREFIX = 'dir111/dir111_secondline1/'
export const USER = 'devops_test'

export interface TestKey { id: string, secret: string }

export function testKey (): TestKey {
  return { id: `testkey${randomBytes(8).toString('hex')}`, secret: randomBytes(24).toString('base64url') }
}

export interface Setup {
  emu: RamEmulator
  key: TestKey
  ram: RamOperations
  credential: ReturnType<typeof createStaticCredential>
}

export async function setup (t: { teardown: (fn: () => unknown) => void }, users: string[] = [USER]): Promise<Setup> {
  const key = testKey()
  const emu = await startRamEmulator({ accessKeys: { [key.id]: key.secret }, accountId: ACCOUNT, users })
  t.teardown(() => emu.close())
  const credential = createStaticCredential(key.id, key.secret)
  return { emu, key, credential, ram: createRamClient({ endpoint: emu.url, credential, timeoutMs: 3000 }) }
}

export function exampleRequest (over: Partial<ProvisionRequest> = {}): ProvisionRequest {
  const bucket = over.bucket ?? BUCKET
  const prefix = over.prefix ?? PREFIX
  return {
    accountId: ACCOUNT,
    bucket,
    prefix,
    ramUser: USER,
    region: 'cn-hangzhou',
    roleName: defaultRoleName(bucket, prefix),
    actions: ['list', 'read', 'write'],
    maxSessionDuration: 3600,
    maxSessionDurationExplicit: false,
    systemPolicy: false,
    grantName: defaultGrantName(bucket, prefix),
    grantPrefix: `${prefix}{sub}/`,
    issuers: ['app'],
    ...over
  }
}
