// The names that end up in a session policy, a RoleSessionName or an OSS key. Each is a
// closed alphabet, so nothing spliced from them can be a wildcard, a path trick or a
// JSON or policy metacharacter. Schema patterns and runtime checks both use these.

/** OSS bucket names: 3-63 of a-z 0-9 -, not starting or ending with -. */
export const BUCKET_PATTERN = '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$'
const BUCKET = new RegExp(BUCKET_PATTERN)

export function isBucketName (s: unknown): s is string {
  return typeof s === 'string' && BUCKET.test(s)
}

/** Names of issuers and grants in the config: lowercase, 1-63 characters. */
export const NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$'
/** Longest issuer or grant name that NAME_PATTERN allows. */
export const NAME_MAX_LENGTH = 63

/** One directory segment: ASCII letters, digits, `_ . @ -`, 1-128 characters (never `.` or `..`). */
export const SAFE_SEGMENT = /^[A-Za-z0-9_.@-]{1,128}$/

/** Longest directory accepted anywhere (a grant's, filled, or a requested one); OSS keys stop at 1023 bytes. */
export const PREFIX_MAX_LENGTH = 1024

export function isSafeSegment (s: unknown): s is string {
  return typeof s === 'string' && SAFE_SEGMENT.test(s) && s !== '.' && s !== '..'
}

/**
 * A relative directory made only of safe segments: `a/b/`, never `/a/`, `a//b/`,
 * `a/../b/` or `a` (it must end with `/`, so `al/` can never be a prefix of `alice/`).
 */
export function isSafePrefix (s: unknown): s is string {
  if (typeof s !== 'string' || s.length < 2 || s.length > PREFIX_MAX_LENGTH || !s.endsWith('/')) return false
  return s.slice(0, -1).split('/').every(isSafeSegment)
}
