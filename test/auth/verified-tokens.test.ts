// The store of verified tokens: recalled only while the verifying key is still held,
// within its time to live, and within its bound, oldest out first.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { parseConfig } from '../../src/config/load.js'
import type { KeySource, VerificationKey } from '../../src/auth/keys.js'
import { createVerifiedTokens, VERIFIED_TOKEN_TTL_MS } from '../../src/auth/verified-tokens.js'
import { TSX_NODE_ARGS } from '../helpers/tsx.js'

const config = parseConfig({
  issuers: [{ name: 'app', issuer: 'https://idp.example/', audience: 'sts', secretEnv: 'S', algorithms: ['HS256'] }],
  grants: [{ name: 'g', issuers: ['app'], roleArn: 'acs:ram::1234567890123456:role/r', bucket: 'bkt', region: 'cn-hangzhou', prefix: 'u/{sub}/', actions: ['read'], durationSeconds: 3600 }]
})
const issuer = config.issuers[0] as (typeof config.issuers)[number]

/** A key source whose set is a plain Set the test edits; counts the `holds` questions. */
function keySet (...keys: VerificationKey[]): KeySource & { set: Set<VerificationKey>, asked: number } {
  const set = new Set(keys)
  const source = {
    set,
    asked: 0,
    getKey: async () => { throw new Error('not used') },
    holds: (key: VerificationKey) => { source.asked++; return set.has(key) },
    ready: () => true,
    close: () => {}
  }
  return source
}

const caller = (sub: string) => Object.freeze({ issuer: 'app', subject: sub, claims: Object.freeze({ sub }) })

t.test('a remembered token is recalled as the same caller while its key is held', async (t) => {
  let clock = 1_000_000
  const tokens = createVerifiedTokens(() => clock)
  const key = { material: 'k1' }
  const keys = keySet(key)
  const alice = caller('alice')
  tokens.remember('tok-a', { caller: alice, issuer, keys, key })
  t.equal(tokens.recall('tok-a')?.caller, alice, 'the same object')
  t.equal(tokens.recall('tok-a')?.issuer, issuer)
  t.equal(tokens.recall('tok-b'), undefined, 'another string is not this token')
  t.equal(tokens.recall('tok-a '), undefined, 'nor is a near copy')
  t.ok(keys.asked >= 2, 'the key is asked about on every recall')
  clock += 1
  keys.set.delete(key)
  t.equal(tokens.recall('tok-a'), undefined, 'the key left the set: not recalled')
  keys.set.add(key)
  t.equal(tokens.recall('tok-a'), undefined, 'and forgotten: it must be verified afresh')
  t.equal(tokens.size, 0)
})

t.test('kept for a bounded time and a bounded number, oldest first', async (t) => {
  let clock = 0
  const key = { material: 'k' }
  const keys = keySet(key)
  const tokens = createVerifiedTokens(() => clock, 3)
  for (const s of ['a', 'b', 'c']) tokens.remember(s, { caller: caller(s), issuer, keys, key })
  tokens.remember('d', { caller: caller('d'), issuer, keys, key })
  t.equal(tokens.size, 3)
  t.equal(tokens.recall('a'), undefined, 'the oldest went first')
  t.equal(tokens.recall('d')?.caller.subject, 'd')
  tokens.remember('b', { caller: caller('b'), issuer, keys, key }) // verified again: now the youngest
  tokens.remember('e', { caller: caller('e'), issuer, keys, key })
  t.equal(tokens.recall('c'), undefined, 'c was older than the re-remembered b')
  t.equal(tokens.recall('b')?.caller.subject, 'b')
  clock += VERIFIED_TOKEN_TTL_MS - 1
  t.equal(tokens.recall('e')?.caller.subject, 'e', 'just within its time')
  clock += 1
  t.equal(tokens.recall('e'), undefined, 'then forgotten')
  const none = createVerifiedTokens(() => clock, 0)
  none.remember('x', { caller: caller('x'), issuer, keys, key })
  t.equal(none.recall('x'), undefined, 'a bound of 0 keeps nothing')
})

t.test('strings that end alike are never taken for each other; each remembered one takes the other\'s place', async (t) => {
  const clock = 0
  const key = { material: 'k' }
  const keys = keySet(key)
  const tokens = createVerifiedTokens(() => clock)
  const end = '.' + 's'.repeat(200)
  const [a, b] = [`Bearer aaa${end}`, `bearer aaa${end}`]
  const alice = caller('alice')
  tokens.remember(a, { caller: alice, issuer, keys, key })
  t.equal(tokens.recall(a)?.caller, alice)
  t.equal(tokens.recall(b), undefined, 'the same last characters, another string: not recalled')
  t.equal(tokens.recall(`Bearer aab${end}`), undefined, 'one character apart, at the start')
  t.equal(tokens.recall(a.slice(1)), undefined, 'a shorter string that ends the same')
  t.equal(tokens.recall(`x${a}`), undefined, 'a longer one')
  t.equal(tokens.recall(a)?.caller, alice, 'and a is still there')
  tokens.remember(b, { caller: caller('bob'), issuer, keys, key })
  t.equal(tokens.recall(b)?.caller.subject, 'bob')
  t.equal(tokens.recall(a), undefined, 'b took a\'s place: a is verified afresh')
  t.equal(tokens.size, 1)
  tokens.remember('short', { caller: caller('s'), issuer, keys, key })
  t.equal(tokens.recall('short')?.caller.subject, 's', 'a string shorter than the tail is found by all of it')
  t.equal(tokens.recall('shor'), undefined)
})

t.test('every remembered token\'s entry shares one hidden class, so a recall reads it through monomorphic caches', async (t) => {
  // V8 says which objects share a hidden class only to code run with
  // --allow-natives-syntax: a child process remembers a thousand tokens and compares.
  const child = spawnSync(process.execPath, ['--allow-natives-syntax', ...TSX_NODE_ARGS, '--input-type=module', '-e', `
    import { createVerifiedTokens } from ${JSON.stringify(new URL('../../src/auth/verified-tokens.ts', import.meta.url).href)}
    const tokens = createVerifiedTokens(Date.now)
    const keys = { holds: () => true }
    const issuer = { name: 'app' }
    for (let i = 0; i < 1000; i++) {
      const caller = Object.freeze({ issuer: 'app', subject: 'c' + i, claims: Object.freeze({ sub: 'c' + i }) })
      tokens.remember('token-' + i, { caller, issuer, keys, key: { kid: 'k' } })
    }
    const first = tokens.recall('token-0')
    let other = 0
    for (let i = 1; i < 1000; i++) if (!%HaveSameMap(first, tokens.recall('token-' + i))) other++
    process.stdout.write(String(other))
  `], { encoding: 'utf8' })
  t.equal(child.status, 0, child.stderr)
  t.equal(child.stdout, '0', 'no entry has a hidden class of its own')
})
