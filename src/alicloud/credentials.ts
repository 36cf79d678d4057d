// The credential this service signs AssumeRole with. In production it comes from the
// SDK's default chain, in this order (@alicloud/credentials providers/default.js):
//   1. ALIBABA_CLOUD_ACCESS_KEY_ID + ALIBABA_CLOUD_ACCESS_KEY_SECRET (+ ALIBABA_CLOUD_SECURITY_TOKEN)
//   2. RRSA / OIDC: ALIBABA_CLOUD_ROLE_ARN + ALIBABA_CLOUD_OIDC_PROVIDER_ARN + ALIBABA_CLOUD_OIDC_TOKEN_FILE
//   3. the aliyun CLI profile (~/.aliyun/config.json), 4. ALIBABA_CLOUD_CREDENTIALS_FILE or ~/.alibabacloud/credentials
//   5. ECS instance RAM role (IMDS), unless ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
//   6. ALIBABA_CLOUD_CREDENTIALS_URI
// The chain reads the environment itself; that is the one sanctioned exception to
// "only config loading reads process.env". Nothing here logs or returns a secret.
//
// This module loads the SDK: the server imports it only with the STS SDK, on first use
// (sts-sdk.ts). The start-up check of the chain is credential-check.ts, which loads none.
import CredentialsModule from '@alicloud/credentials'

// Kept importable from here for the modules and tests that use it with the chain.

// The package is CommonJS with exports.default; under Node's ESM loader (and TypeScript's
// NodeNext view of it) the default import is module.exports, so the class is on .default.
const CredentialClass = CredentialsModule.default

export type Credential = InstanceType<typeof CredentialClass>

/** The default chain. Resolution is lazy: nothing is read until the first AssumeRole. */
export function createUpstreamCredential (): Credential {
  return new CredentialClass()
}

/** A fixed AccessKey pair, for tests and the dev server (against the emulator). */
export function createStaticCredential (accessKeyId: string, accessKeySecret: string): Credential {
  if (accessKeyId === '' || accessKeySecret === '') throw new TypeError('accessKeyId and accessKeySecret must not be empty')
  return new CredentialClass(new CredentialsModule.Config({ type: 'access_key', accessKeyId, accessKeySecret }))
}
