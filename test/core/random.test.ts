// Random ids drawn from a batched CSPRNG pool: the right length, never repeated across
// the pool's refills, and refusing sizes it cannot serve.
import t from 'tap'
import { randomHex } from '../../src/core/random.js'

t.test('hex of the asked length, all distinct across many refills', async (t) => {
  const seen = new Set<string>()
  // 16 bytes each: 256 per pool, so this crosses about 40 refills.
  for (let i = 0; i < 10_000; i++) seen.add(randomHex(16))
  t.equal(seen.size, 10_000, 'no id twice')
  for (const id of seen) if (!/^[0-9a-f]{32}$/.test(id)) t.fail(`not 32 hex digits: ${id}`)
  t.match(randomHex(1), /^[0-9a-f]{2}$/)
  t.match(randomHex(4096), /^[0-9a-f]{8192}$/, 'a whole pool at once')
  t.match(randomHex(3), /^[0-9a-f]{6}$/, 'right after a whole pool')
})

t.test('the bytes look random: each hex digit about equally often', async (t) => {
  const counts = new Map<string, number>()
  const text = Array.from({ length: 2000 }, () => randomHex(16)).join('')
  for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1)
  t.equal(counts.size, 16)
  // 64,000 digits, 4,000 expected each; a fair source is within ±10 % with overwhelming odds.
  for (const [digit, n] of counts) t.ok(n > 3600 && n < 4400, `digit ${digit}: ${n}`)
})

t.test('sizes it cannot serve are refused', async (t) => {
  for (const bad of [0, -1, 4097, 1.5, Number.NaN]) t.throws(() => randomHex(bad), RangeError, String(bad))
})
