// What Alibaba Cloud STS dictates, and the service's own margin on top of it.

/** STS refuses session policies longer than this many bytes. */
export const POLICY_MAX_BYTES = 2048

/** AssumeRole's DurationSeconds range. */
export const MIN_DURATION_SECONDS = 900
export const MAX_DURATION_SECONDS = 43_200

/** Credentials must stay cacheable for at least this long after the freshness margin is taken off. */
export const MIN_USABLE_SECONDS = 300

/** STS's Expiration format: seconds precision, UTC, `Z` (`2026-01-01T00:00:00Z`). */
export function stsTime (d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z')
}
