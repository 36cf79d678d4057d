// sts.breaker: the defaults, the bounds, and configs written for the old breaker
// (failureThreshold / resetTimeoutMs) refused with the keys that replaced them.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { parseConfigText, parseConfig } from '../../src/config/load.js'

const example = readFileSync(new URL('../../config.example.yaml', import.meta.url), 'utf8')
const valid = (): any => structuredClone(parseConfigText(example))
const withBreaker = (breaker: Record<string, unknown>): unknown => {
  const c = valid()
  c.sts.breaker = breaker
  return c
}

t.test('defaults', async (t) => {
  t.same(parseConfigText(example).sts.breaker, { failureRatio: 0.5, minimumRequests: 10, windowMs: 30_000, openMs: 2000, maxOpenMs: 30_000 })
})

t.test('the old keys are refused with their replacement named', async (t) => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['failureThreshold', { failureThreshold: 5 }, /^config: sts\.breaker\.failureThreshold was replaced by sts\.breaker\.failureRatio and sts\.breaker\.minimumRequests/],
    ['resetTimeoutMs', { resetTimeoutMs: 10_000 }, /^config: sts\.breaker\.resetTimeoutMs was replaced by sts\.breaker\.openMs and sts\.breaker\.maxOpenMs/],
    ['both, next to new keys', { openMs: 1000, failureThreshold: 5, resetTimeoutMs: 10_000 }, /was replaced by/]
  ]
  for (const [desc, breaker, message] of cases) t.throws(() => parseConfig(withBreaker(breaker)), { name: 'ConfigError', message }, desc)
})

t.test('bounds', async (t) => {
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['ratio 0', { failureRatio: 0 }, /sts\.breaker\.failureRatio/],
    ['ratio above 1', { failureRatio: 1.1 }, /sts\.breaker\.failureRatio/],
    ['one request could open it', { minimumRequests: 1 }, /sts\.breaker\.minimumRequests/],
    ['fractional minimum', { minimumRequests: 2.5 }, /sts\.breaker\.minimumRequests/],
    ['window under a second', { windowMs: 999 }, /sts\.breaker\.windowMs/],
    ['open period under 100 ms', { openMs: 50 }, /sts\.breaker\.openMs/],
    ['an unknown key is still unknown', { failureRatioo: 0.5 }, /sts\.breaker\.failureRatioo: unknown key/]
  ]
  for (const [desc, breaker, message] of bad) t.throws(() => parseConfig(withBreaker(breaker)), { name: 'ConfigError', message }, desc)
  t.doesNotThrow(() => parseConfig(withBreaker({ failureRatio: 1, minimumRequests: 2, windowMs: 1000, openMs: 100, maxOpenMs: 100 })), 'the tightest settings')
})
