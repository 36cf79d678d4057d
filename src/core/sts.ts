// What Alibaba Cloud STS dictates, and the service's own margin on top of it.

/** STS refuses session policies longer than this many bytes. */
export const POLICY_MAX_BYTES = 2048

/** AssumeRole's DurationSeconds range. */
export const MIN_DURATION_SECONDS = 900
export const MAX_DURATION_SECONDS = 43_200

/** Credentials must stay cacheable for at least this long after the freshness margin is taken off. */
export const MIN_USABLE_SECONDS = 300

// A cached credential's expiration is formatted for every answer and audit line that
// names it: remembered per Date object, and per its time in case the Date was changed.
// A signed upload's expiration is a new Date per request, but the same time for every
// request of one second: the last time formatted is remembered too.
const formatted = new WeakMap<Date, { ms: number, text: string }>()
let lastMs = Number.NaN
let lastText = ''

/** STS's Expiration format: seconds precision, UTC, `Z` (`2026-01-01T00:00:00Z`). */
export function stsTime (d: Date): string {
  const ms = d.getTime()
  if (ms === lastMs) return lastText
  const known = formatted.get(d)
  if (known !== undefined && known.ms === ms) return known.text
  const text = d.toISOString().replace(/\.\d{3}Z$/, 'Z')
  formatted.set(d, { ms, text })
  lastMs = ms
  lastText = text
  return text
}
