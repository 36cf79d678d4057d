// Strict parsing of the bearer token before any cryptography: the header shape, the
// compact-JWS alphabet, canonical base64url, JSON objects for header and payload, and
// the header parameters we refuse outright (key URLs and embedded keys are never
// followed; `crit` names extensions we do not understand). Pure; no I/O.
import { BadAuthorizationHeader, InvalidToken, MissingToken } from '../errors.js'
import { TokenRejected } from './refusal.js'

// The signature may be empty here only so that an unsigned (`alg: none`) token is
// refused for its algorithm; any token without a signature is refused below.
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
// Any printable ASCII, bounded: providers publish kids in standard base64 (`+`, `/`, `=`)
// and other shapes; a kid is only ever compared exactly against the loaded keys.
const KID = /^[\x20-\x7e]{1,256}$/
const FORBIDDEN_HEADER_PARAMS = ['jku', 'x5u', 'jwk', 'x5c', 'crit', 'b64', 'zip', 'enc']

export interface JoseHeader { alg: string, kid?: string, typ?: string }
export interface DecodedToken { token: string, header: JoseHeader, payload: Record<string, unknown> }

/** Returns the raw token from an Authorization header value. */
export function bearerToken (authorization: string | string[] | undefined, maxBytes: number): string {
  if (authorization === undefined || authorization === '') throw new MissingToken()
  if (Array.isArray(authorization)) throw new BadAuthorizationHeader()
  const space = authorization.indexOf(' ')
  if (space === -1) throw new BadAuthorizationHeader()
  if (authorization.slice(0, space).toLowerCase() !== 'bearer') throw new BadAuthorizationHeader()
  const token = authorization.slice(space + 1)
  // Exactly one space, and a token without inner whitespace: "Bearer a b" and "Bearer  t" are malformed requests.
  if (token === '' || /\s/.test(token)) throw new BadAuthorizationHeader()
  if (token.length > maxBytes) throw new InvalidToken()
  return token
}

function decodeSegment (segment: string): unknown {
  const bytes = Buffer.from(segment, 'base64url')
  // Non-canonical encodings (stray bits in the last character) decode to the same
  // bytes as another string: refuse anything that does not round-trip exactly.
  if (bytes.toString('base64url') !== segment) throw new InvalidToken()
  const text = bytes.toString('utf8')
  if (Buffer.from(text, 'utf8').compare(bytes) !== 0) throw new InvalidToken()
  try {
    return JSON.parse(text)
  } catch {
    throw new InvalidToken()
  }
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

export function decodeToken (token: string): DecodedToken {
  if (!JWS_COMPACT.test(token)) throw new InvalidToken()
  const [h, p, signature] = token.split('.') as [string, string, string]
  const header = decodeSegment(h)
  const payload = decodeSegment(p)
  if (!isPlainObject(header) || !isPlainObject(payload)) throw new InvalidToken()
  if (typeof header.alg !== 'string') throw new InvalidToken()
  // An unsigned token is refused for its algorithm, whatever the issuer: it says so.
  if (header.alg.toLowerCase() === 'none') throw new TokenRejected('algorithm')
  if (signature === '') throw new InvalidToken()
  for (const param of FORBIDDEN_HEADER_PARAMS) {
    if (Object.hasOwn(header, param)) throw new InvalidToken()
  }
  if (header.kid !== undefined && (typeof header.kid !== 'string' || !KID.test(header.kid))) throw new InvalidToken()
  if (header.typ !== undefined && typeof header.typ !== 'string') throw new InvalidToken()
  return { token, header: header as unknown as JoseHeader, payload }
}
