// The object-key rules as a table and a property: whatever passes is inside the caller's
// directory and free of tricks, since it is signed as it is (alicloud/oss-signing.ts).
import t from 'tap'
import fc from 'fast-check'
import { FILENAME_PLACEHOLDER as F, checkObjectKey, literalHead, sanitiseFileName, uniqueKey } from '../../src/grants/object-keys.js'

const DIR = 'users/alice/'

t.test('keys: refused, never escaped', async (t) => {
  const refused: Array<[string, unknown]> = [
    ['another user\'s directory', 'users/bob/x'],
    ['a lookalike sibling', 'users/alice2/x'],
    ['the directory itself', DIR],
    ['a trailing slash', `${DIR}a/`],
    ['..', `${DIR}../bob/x`],
    ['.', `${DIR}./x`],
    ['//', `${DIR}a//b`],
    ['*', `${DIR}*`],
    ['?', `${DIR}a?b`],
    ['another placeholder', `${DIR}$` + '{x}'],
    ['the placeholder not at the end', `${DIR}${F}/x`],
    ['the placeholder twice', `${DIR}${F}${F}`],
    ['a stem of ..', `${DIR}..${F}`],
    ['$ alone', `${DIR}a$b`],
    ['a control character', `${DIR}a\u0001b`],
    ['NUL', `${DIR}a\u0000`],
    ['a newline', `${DIR}a\nb`],
    ['a backslash', `${DIR}a\\b`],
    ['a quote', `${DIR}a"b`],
    ['U+2028', `${DIR}a\u2028b`],
    ['non-ASCII', `${DIR}é`],
    ['a space', `${DIR}a b`],
    ['over 1023 bytes', DIR + 'a/'.repeat(505) + 'bc'],
    ['a segment over 128 characters', DIR + 'a'.repeat(129)],
    ['not a string', 42]
  ]
  for (const [desc, key] of refused) t.equal(checkObjectKey(DIR, key, true), undefined, desc)
  t.strictSame(checkObjectKey(DIR, `${DIR}a/b.c_d-e@f`, true), { kind: 'exact', key: `${DIR}a/b.c_d-e@f` })
  t.strictSame(checkObjectKey(DIR, `${DIR}${F}`, true), { kind: 'prefix', prefix: DIR, key: `${DIR}${F}` })
  t.strictSame(checkObjectKey(DIR, `${DIR}img/2026-${F}`, true), { kind: 'prefix', prefix: `${DIR}img/2026-`, key: `${DIR}img/2026-${F}` })
  t.equal(checkObjectKey(DIR, `${DIR}${F}`, false), undefined, 'the placeholder only in forms')
  t.equal(checkObjectKey(DIR, DIR + 'a/'.repeat(505) + 'b', true)?.kind, 'exact', 'exactly 1023 bytes is a key')
})

t.test('property: every accepted key is inside the directory and free of tricks', async (t) => {
  // Random strings, and strings built from the characters that matter, so acceptance is common.
  const tricky = fc.string({ unit: fc.constantFrom('a', 'b', '.', '/', '-', '_', '@', '$', '{', '}', '*', '?', '\\', '\u0000', '\n', 'é', F), maxLength: 12 })
  fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), tricky), fc.boolean(), (s, filename) => {
    const key = DIR + s
    const r = checkObjectKey(DIR, key, filename)
    if (r === undefined) return true
    const plain = r.key.endsWith(F) ? r.key.slice(0, -F.length) : r.key
    return r.key === key && r.key.startsWith(DIR) && /^[A-Za-z0-9_.@/-]*$/.test(plain) &&
      !plain.includes('//') && !plain.split('/').some((seg) => seg === '..' || seg === '.') &&
      (r.kind === 'exact' ? !r.key.endsWith('/') : r.prefix.startsWith(DIR))
  }), { numRuns: 10_000 })
  t.pass('10k strings')
})

t.test('the grant-wide head: the literal directories of the template, up to the first placeholder', async (t) => {
  t.equal(literalHead('users/{sub}/'), 'users/')
  t.equal(literalHead('tenants/{tenant}/{sub:sha256}/'), 'tenants/')
  t.equal(literalHead('{sub}/'), '')
  t.equal(literalHead('shared/team/'), 'shared/team/')
})

t.test('sanitiseFileName: one safe segment, whatever the browser sends', async (t) => {
  const rows: Array<[unknown, string]> = [
    ['photo.png', 'photo.png'],
    ['C:\\fakepath\\photo.png', 'photo.png'],
    ['../../etc/passwd', 'passwd'],
    ['..', 'upload'],
    ['.', 'upload'],
    ['.hidden', 'hidden'],
    ['a b\u0000c\td.txt', 'a_b_c_d.txt'],
    ['résumé.pdf', 'r_sum_.pdf'],
    ['$' + '{filename}', '_filename_'],
    ['', 'upload'],
    [undefined, 'upload'],
    [42, 'upload'],
    ['x'.repeat(300) + '.jpeg', 'x'.repeat(123) + '.jpeg']
  ]
  for (const [input, want] of rows) t.equal(sanitiseFileName(input), want, JSON.stringify(input))
  // uniqueKey answers exactly what checkObjectKey answers for the key it builds, whatever
  // the directory (safe or not, met before or not), the id and the name; an id is one
  // segment, so an id with a slash in it is refused.
  const dirs = [DIR, 'a/', 'a//b/', '../x/', 'a/b', '', 'x'.repeat(1000) + '/', 'ok/$/', 'uploads/rs/é/']
  const ids = ['0123456789abcdef0123456789abcdef', '', '..', 'a/b', 'x*y', 'x'.repeat(129)]
  for (let pass = 0; pass < 2; pass++) {
    for (const d of dirs) {
      for (const id of ids) {
        for (const name of [undefined, 'a.png', '..']) {
          const want = id.includes('/') ? undefined : checkObjectKey(d, `${d}${id}/${sanitiseFileName(name)}`, false)
          t.strictSame(uniqueKey(d, id, name), want, `pass ${pass}: ${JSON.stringify([d.slice(0, 20), id.slice(0, 20), name])}`)
        }
      }
    }
  }
  fc.assert(fc.property(fc.string({ maxLength: 400 }), (name) => {
    const key = uniqueKey(DIR, '0123456789abcdef0123456789abcdef', name)
    return key !== undefined && key.kind === 'exact' && key.key.startsWith(`${DIR}0123456789abcdef0123456789abcdef/`) &&
      checkObjectKey(DIR, key.key, false) !== undefined
  }))
})
