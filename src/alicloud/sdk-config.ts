// What the official SDK clients (STS here, RAM for provisioning) share: endpoint
// parsing, and a Config whose credential wraps the chain so that its failures (RRSA
// exchange, IMDS, missing env) are told apart from the service's answers and never
// carry the provider's own error text along.
import { $OpenApiUtil } from '@alicloud/openapi-core'
import type { Credential } from './credentials.js'

/** Anything with @alicloud/credentials' getCredential(). */
export interface CredentialLike {
  getCredential: () => Promise<{ accessKeyId?: string, accessKeySecret?: string, securityToken?: string, type?: string, providerName?: string }>
}

/** Thrown by the credential wrapper so its failures are told apart from the service's. */
export class CredentialLookupFailed extends Error {}

export function parseEndpoint (endpoint: string, what: string): { host: string, protocol: 'http' | 'https' } {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new TypeError(`${what} must be an absolute http(s) URL`)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' ||
      (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new TypeError(`${what} must be http(s)://host[:port] with no path, query or credentials`)
  }
  return { host: url.host, protocol: url.protocol === 'https:' ? 'https' : 'http' }
}

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
