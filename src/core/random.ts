// Random identifiers from the system CSPRNG, drawn in batches. `randomBytes(16)` crosses
// into C++ and allocates for every call (about 3 µs, a tenth of a signed form's cost
// before issue 25); one `randomFillSync` of a 4 KiB pool serves 256 ids. Every byte is
// handed out once: the pool is refilled when used up, never read twice.
import { randomFillSync } from 'node:crypto'

const POOL_BYTES = 4096
const pool = Buffer.allocUnsafeSlow(POOL_BYTES)
let used = POOL_BYTES

/** `bytes` fresh random bytes as lowercase hex (at most 4,096 bytes per call). */
export function randomHex (bytes: number): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > POOL_BYTES) throw new RangeError(`randomHex takes 1 to ${POOL_BYTES} bytes`)
  if (used + bytes > POOL_BYTES) {
    randomFillSync(pool)
    used = 0
  }
  const hex = pool.toString('hex', used, used + bytes)
  // What was handed out is not left in memory for a later reader of the pool.
  pool.fill(0, used, used + bytes)
  used += bytes
  return hex
}
