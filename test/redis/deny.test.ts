// The deny watch alone, on a real Redis: each entry is handed to onDenied once, when a
// replica first sees it (on a message, a reload or a (re)connect), named by the same
// field the credential source computes from a caller's id.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createRedis } from '../../src/redis/connection.js'
import { createEntryCipher } from '../../src/redis/entries.js'
import { allowCaller, callerDenyField, denyCaller, denyField, watchDenyList } from '../../src/redis/deny.js'
import { standalone, startRedis } from '../helpers/redis.js'

async function eventually (ok: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (ok()) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return ok()
}

t.test('onDenied: the entries a replica sees for the first time, by field, once each', async (t) => {
  const server = await startRedis(t)
  const redis = createRedis({ settings: standalone(server.url) })
  t.teardown(() => redis.disconnect())
  await new Promise((resolve) => redis.once('ready', resolve))
  const cipher = createEntryCipher([randomBytes(32)])
  const until = Date.now() + 3_600_000
  await denyCaller(redis, cipher, 'stsv:', { issuer: 'app', subject: 'early', until })

  const seen: string[][] = []
  const watch = watchDenyList(redis, cipher, 'stsv:', { now: Date.now, onDenied: (fields) => seen.push([...fields]) })
  t.teardown(() => watch.close())
  t.ok(await eventually(() => seen.length === 1), 'the first load hands over what was already there')
  t.same(seen[0], [denyField(cipher, 'app', 'early')])
  t.equal(callerDenyField(cipher, 'app\nearly'), denyField(cipher, 'app', 'early'), 'the same field from a caller\'s id')

  await denyCaller(redis, cipher, 'stsv:', { issuer: 'app', subject: 'mallory', until })
  t.ok(await eventually(() => seen.length === 2), 'a new entry, by subscription')
  t.same(seen[1], [denyField(cipher, 'app', 'mallory')], 'only the new one')

  await watch.reload()
  await denyCaller(redis, cipher, 'stsv:', { issuer: 'app', subject: 'mallory', until: until + 60_000 })
  await watch.reload()
  t.equal(seen.length, 2, 'a reload, or an entry renewed, hands over nothing again')

  await allowCaller(redis, cipher, 'stsv:', 'app', 'mallory')
  t.ok(await eventually(() => watch.list.size === 1))
  await denyCaller(redis, cipher, 'stsv:', { issuer: 'app', subject: 'mallory', until })
  t.ok(await eventually(() => seen.length === 3), 'allowed, then denied again: a new entry')
  t.same(seen[2], [denyField(cipher, 'app', 'mallory')])
})
