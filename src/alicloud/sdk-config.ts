// What the official SDK clients (STS here, RAM for provisioning) share: a Config
// whose credential wraps the chain so that its failures (RRSA
// exchange, IMDS, missing env) are told apart from the service's answers and never
// carry the provider's own error text along.
import { $OpenApiUtil } from '@alicloud/openapi-core'
import type { Credential } from './credentials.js'
import { CredentialLookupFailed, parseEndpoint, type CredentialLike } from './sdk-base.js'

// Kept importable from here; they live in sdk-base.ts, which loads no SDK package.

export function sdkConfig (opts: { endpoint: string, what: string, timeoutMs: number, credential: CredentialLike, userAgent: string }): $OpenApiUtil.Config {
  const { host, protocol } = parseEndpoint(opts.endpoint, opts.what)
  const inner = opts.credential
  const credential: CredentialLike = {
    async getCredential () {
      try {
        return await inner.getCredential()
      } catch {
        throw new CredentialLookupFailed('credential lookup failed')
      }
    }
  }
  return new $OpenApiUtil.Config({
    // openapi-core calls only getCredential() on it.
    credential: credential as unknown as Credential,
    endpoint: host,
    protocol,
    // Both timeouts: the SDK's leftover read timer on a reused socket can clear the next call's.
    readTimeout: opts.timeoutMs,
    connectTimeout: opts.timeoutMs,
    userAgent: opts.userAgent
    // retryOptions left unset: openapi-core's shouldRetry() then allows the first attempt only.
  })
}
