import t from 'tap'
import {
  ACTIONS, BUCKET_PATTERN, isAction, isBucketName, isSafePrefix, isSafeSegment, MIN_USABLE_SECONDS, NAME_PATTERN,
  POLICY_MAX_BYTES, stsTime
} from '../../src/core/index.js'
import { ConfigSchema, GrantSchema } from '../../src/config/schema.js'

t.test('stsTime: seconds precision, UTC, Z, as STS writes Expiration', async (t) => {
  t.equal(stsTime(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))), '2026-01-02T03:04:05Z')
  t.equal(stsTime(new Date(0)), '1970-01-01T00:00:00Z')
})

t.test('actions: the canonical order, and nothing else is one', async (t) => {
  t.same([...ACTIONS], ['list', 'read', 'write', 'delete'])
  for (const a of ACTIONS) t.ok(isAction(a), a)
  for (const v of ['READ', 'admin', '', undefined, null, 1, ['read'], 'read ']) t.notOk(isAction(v), String(v))
})

t.test('bucket names: one rule, used by the schema and the policy builder', async (t) => {
  t.equal((GrantSchema.properties.bucket as { pattern?: string }).pattern, BUCKET_PATTERN, 'the schema uses the core pattern')
  const ok = ['oss-test', 'abc', 'a'.repeat(63), '0-9']
  const bad = ['ab', 'a'.repeat(64), '-abc', 'abc-', 'Abc', 'a_b', 'a.b', 'a*b', 'a/b', '', 42, null]
  for (const b of ok) t.ok(isBucketName(b), String(b))
  for (const b of bad) t.notOk(isBucketName(b), String(b))
})

t.test('segments and directories', async (t) => {
  t.ok(isSafeSegment('alice@example.com'))
  for (const s of ['.', '..', '', 'a/b', 'a b', 'é', 'x'.repeat(129)]) t.notOk(isSafeSegment(s), JSON.stringify(s))
  t.ok(isSafePrefix('users/alice/'))
  for (const p of ['users/alice', '/users/', 'a//b/', 'a/../b/', '/', `${'a/'.repeat(513)}`]) t.notOk(isSafePrefix(p), p)
})

t.test('limits and names', async (t) => {
  t.equal(POLICY_MAX_BYTES, 2048)
  t.equal(MIN_USABLE_SECONDS, 300)
  t.equal((ConfigSchema.properties.issuers.items.properties.name as { pattern?: string }).pattern, NAME_PATTERN)
})
