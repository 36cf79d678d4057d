// What the SDK adapter shares without loading any SDK package: endpoint parsing, the
// shape of a credential, and the error that tells a credential failure apart. The STS
// client, its error reading and the start-up checks import this; the official SDK
// packages (sdk-config.ts and what imports it) are loaded only when a call is made.

/** Anything with @alicloud/credentials' getCredential(). */
export interface CredentialLike {
  getCredential: () => Promise<{ accessKeyId?: string, accessKeySecret?: string, securityToken?: string, type?: string, providerName?: string }>
}

/** Thrown by the credential wrapper (sdk-config.ts) so its failures are told apart from the service's. */
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
