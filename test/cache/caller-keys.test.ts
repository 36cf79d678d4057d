// The caller index alone: it follows what the cache holds, its bounds hold (callers by
// LRU, keys per caller), and whatever it lets go by a bound is handed on, so that the
// local cache can drop it too and every local entry stays findable by its caller.
import t from 'tap'
import { createCallerKeys } from '../../src/cache/caller-keys.js'

t.test('note, drop, take: a caller\'s keys until the cache drops them or a deny takes them', async (t) => {
  const released: string[] = []
  const idx = createCallerKeys({ maxCallers: 10, keysPerCaller: 4, name: (id) => `name:${id}`, onRelease: (k) => released.push(k) })
  const alice = idx.note('app\nalice', 'k1')
  idx.note('app\nalice', 'k2')
  idx.note('app\nbob', 'k3')
  t.same([...alice.keys], ['k1', 'k2'])
  t.equal(alice.name, 'name:app\nalice', 'named once, when first noted')
  t.same([idx.size, idx.keyCount], [2, 3])

  idx.drop('k1')
  t.same([...alice.keys], ['k2'], 'the cache dropped k1')
  idx.drop('k3')
  t.equal(idx.size, 1, 'a caller with no key left goes')
  idx.drop('unknown')

  const taken = idx.take('app\nalice')
  t.same([...(taken?.keys ?? [])], ['k2'])
  t.equal(taken?.forgotten, true, 'marked, for a load still on its way')
  t.equal(alice.forgotten, true)
  t.same([idx.size, idx.keyCount], [0, 0])
  t.equal(idx.take('app\nalice'), undefined, 'nothing left to take')
  const again = idx.note('app\nalice', 'k2')
  t.not(again, alice, 'noted after a forget: a fresh entry')
  t.equal(again.forgotten, false)
  t.same(released, [], 'drop and take hand nothing to onRelease')
})

t.test('takeNamed: the callers whose deny-list name is given, and no other', async (t) => {
  const idx = createCallerKeys({ maxCallers: 10, keysPerCaller: 4, name: (id) => `name:${id}` })
  idx.note('app\nalice', 'a1')
  idx.note('app\nbob', 'b1')
  idx.note('app\ncarol', 'c1')
  const taken = idx.takeNamed(new Set(['name:app\nalice', 'name:app\ncarol', 'name:app\nnobody']))
  t.same(taken.map((e) => e.callerId).sort(), ['app\nalice', 'app\ncarol'])
  t.same([idx.size, idx.keyCount], [1, 1])
  t.same(idx.takeNamed(new Set()), [])
  const unnamed = createCallerKeys({ maxCallers: 10, keysPerCaller: 4 })
  unnamed.note('app\nalice', 'a1')
  t.same(unnamed.takeNamed(new Set(['undefined'])), [], 'no naming function: nothing matches by name')
})

t.test('bounded: callers by LRU, keys per caller; what a bound lets go is released', async (t) => {
  const released: string[] = []
  const idx = createCallerKeys({ maxCallers: 3, keysPerCaller: 2, onRelease: (k) => released.push(k) })
  idx.note('c1', 'k1a')
  idx.note('c1', 'k1b')
  idx.note('c1', 'k1c')
  t.same(released, ['k1a'], 'a third key pushes out the caller\'s oldest')
  idx.note('c1', 'k1b')
  idx.note('c1', 'k1d')
  t.same(released, ['k1a', 'k1c'], 're-noting a key makes it the newest')
  idx.note('c2', 'k2')
  idx.note('c3', 'k3')
  idx.note('c1', 'k1d') // c1 is now the most recent
  idx.note('c4', 'k4')
  t.same(released, ['k1a', 'k1c', 'k2'], 'the least recently noted caller goes with its keys')
  t.equal(idx.take('c2'), undefined)

  // Many callers, many keys each: the index never holds more than its bounds.
  for (let i = 0; i < 1000; i++) for (let j = 0; j < 5; j++) idx.note(`many${i}`, `m${i}.${j}`)
  t.equal(idx.size, 3, 'callers at the bound')
  t.equal(idx.keyCount, 6, 'keys at callers x keysPerCaller')
  t.equal(released.length, 3 + 4 + (1000 * 5 - 6), 'every key let go was released, once (the 4 held before, and all but the last 6)')
  t.equal(new Set(released).size, released.length)
})

t.test('a key noted by another caller moves to it', async (t) => {
  const idx = createCallerKeys({ maxCallers: 10, keysPerCaller: 4 })
  const a = idx.note('a', 'k')
  const b = idx.note('b', 'k')
  t.same([[...a.keys], [...b.keys]], [[], ['k']])
  t.equal(idx.size, 1, 'the caller left with nothing goes')
  t.same(idx.take('b')?.keys, new Set(['k']))
})

t.test('refuses a bound below one', async (t) => {
  t.throws(() => createCallerKeys({ maxCallers: 0, keysPerCaller: 1 }))
  t.throws(() => createCallerKeys({ maxCallers: 1, keysPerCaller: 0 }))
})
