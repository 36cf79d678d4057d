// Kept answer bytes: the same bytes as Buffer.from, in a buffer of their own.
import t from 'tap'
import { keptBytes } from '../../src/http/kept-bytes.js'

t.test('kept bytes equal the UTF-8 encoding and hold no pool slab', async (t) => {
  for (const text of ['', '{"a":1}', 'x'.repeat(1250), '{"prefix":"uploads/é/日本/"}']) {
    const bytes = keptBytes(text)
    t.same(bytes, Buffer.from(text, 'utf8'), `the UTF-8 of ${JSON.stringify(text.slice(0, 20))}`)
    t.equal(bytes.buffer.byteLength, bytes.length, 'its ArrayBuffer is exactly its size (Buffer.from would hand out a slice of the 8 KiB pool)')
    t.equal(bytes.byteOffset, 0)
  }
})
