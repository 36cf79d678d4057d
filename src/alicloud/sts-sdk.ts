// The part of the STS client that needs @alicloud/sts20150401 (and with it openapi-core
// and the credential chain): about a fifth of the service's start-up, so sts-client.ts
// imports this module on first use, and the server warms it right after it listens.
import StsModule, { AssumeRoleRequest } from '@alicloud/sts20150401'
import { sdkConfig } from './sdk-config.js'
import { type CredentialLike } from './sdk-base.js'
import { createUpstreamCredential } from './credentials.js'
import type { AssumeRoleInput } from './sts-types.js'

// CommonJS: under Node's ESM loader the default import is module.exports.
const SdkClient = StsModule.default

const USER_AGENT = 'sts-vending'

export interface SdkAssumeRoleOptions {
  endpoint: string
  timeoutMs: number
  /** Default: the SDK's default chain (credentials.ts). */
  credential?: CredentialLike
}

/** One AssumeRole through the SDK, answered with its raw response (sts-client.ts reads it). */
export type SdkAssumeRole = (input: AssumeRoleInput) => Promise<unknown>

export function createSdkAssumeRole (opts: SdkAssumeRoleOptions): SdkAssumeRole {
  const credential = opts.credential ?? createUpstreamCredential()
  const sdk = new SdkClient(sdkConfig({ endpoint: opts.endpoint, what: 'sts endpoint', timeoutMs: opts.timeoutMs, credential, userAgent: USER_AGENT }))
  return async (input) => await sdk.assumeRole(new AssumeRoleRequest({
    roleArn: input.roleArn,
    roleSessionName: input.roleSessionName,
    durationSeconds: input.durationSeconds,
    ...(input.policy !== undefined ? { policy: input.policy } : {}),
    ...(input.externalId !== undefined ? { externalId: input.externalId } : {}),
    ...(input.sourceIdentity !== undefined ? { sourceIdentity: input.sourceIdentity } : {})
  }))
}
