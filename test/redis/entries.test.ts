// Encrypted entries: what a reader of Redis sees, what authenticates, and rotation.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createEntryCipher, parseCacheKeys } from '../../src/redis/entries.js'

const creds = { accessKeyId: 'STS.NUxyzAccessKeyId', accessKeySecret: 'the-secret-value', securityToken: 'CAIS-security-token', expiration: new Date('2030-01-01T00:00:00Z') }

t.test('sealed values round-trip and reveal nothing; names are keyed HMACs', async (t) => {
  const c = createEntryCipher([randomBytes(32)])
  const name = c.name('c', 'cache-key-1')
  t.match(name, /^c:[A-Za-z0-9_-]{43}$/)
  t.not(name, createEntryCipher([randomBytes(32)]).name('c', 'cache-key-1'), 'another key names it differently')
  const sealed = c.seal(name, creds)
  const text = sealed.toString('latin1')
  for (const s of [creds.accessKeyId, creds.accessKeySecret, creds.securityToken, '2030']) t.notOk(text.includes(s), `no ${s}`)
  t.same(c.open(name, sealed), creds)
  t.not(c.seal(name, creds).toString('hex'), sealed.toString('hex'), 'a random nonce each time')
})

t.test('anything that does not authenticate is undefined, never an exception', async (t) => {
  const c = createEntryCipher([randomBytes(32)])
  const name = c.name('c', 'k')
  const sealed = c.seal(name, creds)
  const flipped = Buffer.from(sealed)
  flipped[flipped.length - 20] = (flipped[flipped.length - 20] as number) ^ 1
  const cases: Array<[string, string, Buffer]> = [
    ['another name (entry copied under another key)', c.name('c', 'other'), sealed],
    ['one bit flipped', name, flipped],
    ['truncated', name, sealed.subarray(0, sealed.length - 1)],
    ['empty', name, Buffer.alloc(0)],
    ['plain JSON', name, Buffer.from(JSON.stringify(creds))],
    ['another version byte', name, Buffer.concat([Buffer.from([2]), sealed.subarray(1)])],
    ['sealed under another key', name, createEntryCipher([randomBytes(32)]).seal(name, creds)]
  ]
  for (const [desc, n, v] of cases) t.equal(c.open(n, v), undefined, desc)
})

t.test('rotation: a new key at the front keeps names and still opens old values', async (t) => {
  const oldKey = randomBytes(32)
  const before = createEntryCipher([oldKey])
  const after = createEntryCipher([randomBytes(32), oldKey])
  t.equal(after.name('c', 'k'), before.name('c', 'k'), 'same names')
  const name = before.name('c', 'k')
  t.same(after.open(name, before.seal(name, creds)), creds, 'old values still open')
  t.equal(before.open(name, after.seal(name, creds)), undefined, 'new values need the new key')
})

t.test('key parsing: one clear message, never the key', async (t) => {
  const good = randomBytes(32).toString('base64')
  t.equal(parseCacheKeys(`${good}, ${randomBytes(32).toString('base64url')}`, 'K').length, 2)
  const bad: Array<[string, string | undefined, RegExp]> = [
    ['unset', undefined, /K: not set/],
    ['empty', '  ', /K: not set/],
    ['too short', randomBytes(16).toString('base64'), /key 1 is 16 bytes, not 32/],
    ['too long', randomBytes(48).toString('base64'), /key 1 is 48 bytes/],
    ['not base64', 'this is not base64!', /key 1 is not base64/],
    ['empty second key', `${good},`, /key 2/]
  ]
  for (const [desc, text, msg] of bad) {
    t.throws(() => parseCacheKeys(text, 'K'), { message: msg }, desc)
    try { parseCacheKeys(text, 'K') } catch (err) { t.notOk(text !== undefined && text.trim() !== '' && (err as Error).message.includes(text.trim()), `${desc}: the message does not echo the value`) }
  }
})
