// Issue 24: a request that fails its schema is told which field, what is expected in
// plain words, the unknown property by name, and never a sentence cut mid-word.
import t from 'tap'
import { build } from '../helpers/build.js'
import { describeValidation } from '../../src/http/validation-message.js'

t.test('POST /credentials: each bad body names its field and what it must be', async (t) => {
  const h = await build(t)
  const token = h.token()
  const rows: Array<[string, unknown, string]> = [
    ['an unknown action', { actions: ['upload'] }, 'actions[0] must be one of list, read, write, delete'],
    ['an unknown property', { foo: 1 }, 'the body has an unknown property "foo"'],
    ['a duration as a string', { durationSeconds: '900' }, 'durationSeconds must be an integer'],
    ['a duration below STS\'s minimum', { durationSeconds: 60 }, 'durationSeconds must be at least 900'],
    ['actions not a list', { actions: 'read' }, 'actions must be a list'],
    ['no action', { actions: [] }, 'actions must have at least 1 item'],
    ['an action twice', { actions: ['read', 'read'] }, 'actions must not name an item twice'],
    ['a grant name in capitals', { grant: 'Home' }, 'grant must be a grant name: lowercase letters, digits, "-" and "_", starting with a letter or a digit, at most 63 characters'],
    ['an empty prefix', { prefix: '' }, 'prefix must be at least 1 character long'],
    ['a body that is a list', [], 'the body must be a JSON object']
  ]
  for (const [why, body, words] of rows) {
    const res = await h.vend(token, body)
    t.equal(res.statusCode, 400, why)
    t.equal(res.json.code, 'STS_VENDING_BAD_REQUEST', why)
    t.equal(res.json.message, `Malformed request: ${words}`, why)
  }
  t.equal(h.emulator.callCount, 0, 'no STS call')
})

t.test('POST /uploads/url: the method is one of PUT, GET', async (t) => {
  const h = await build(t, {
    config: (c) => ({ ...c, grants: [{ ...(c.grants as Array<Record<string, unknown>>)[0], signing: { expiresSeconds: 300, maxBytes: 1_000_000 } }] })
  })
  const res = await h.app.inject({
    method: 'POST',
    url: '/uploads/url',
    headers: { authorization: `Bearer ${h.token()}`, 'content-type': 'application/json' },
    payload: { key: 'a.txt', method: 'POST' }
  })
  t.equal(res.statusCode, 400)
  t.equal(res.json().message, 'Malformed request: method must be one of PUT, GET')
})

t.test('describeValidation: field names the caller did not write plainly are not echoed; long lists are whole', async (t) => {
  t.equal(describeValidation([{ instancePath: '', keyword: 'additionalProperties', params: { additionalProperty: 'eyJhbGciOi.x.y"' } }], 'body'),
    'the body has an unknown property', 'an odd property name is not echoed')
  t.equal(describeValidation([{ instancePath: '', keyword: 'required', params: { missingProperty: 'key' } }], 'body'), '"key" is required')
  t.equal(describeValidation([{ instancePath: '/format', keyword: 'enum', params: { allowedValues: ['ali-oss', 'oss-app-server'] } }], 'querystring'),
    'query parameter format must be one of ali-oss, oss-app-server')
  const many = Array.from({ length: 50 }, (_, i) => ({ instancePath: '/a', keyword: 'const', params: { allowedValue: `value-${i}` } }))
  const text = describeValidation(many, 'body')
  t.ok(text.endsWith('value-49'), 'never cut')
  t.equal(describeValidation(undefined, 'body'), 'the body is not valid')
  const fields = Array.from({ length: 10 }, (_, i) => ({ instancePath: `/f${i}`, keyword: 'type', params: { type: 'string' } }))
  t.equal(describeValidation(fields, 'body').split('; ').length, 3, 'at most three fields')
})

t.test('describeValidation: every keyword in plain words', async (t) => {
  const rows: Array<[string, Record<string, unknown>, string]> = [
    ['maximum', { keyword: 'maximum', params: { limit: 43200 } }, 'd must be at most 43200'],
    ['exclusiveMinimum', { keyword: 'exclusiveMinimum', params: { limit: 0 } }, 'd must be more than 0'],
    ['exclusiveMaximum', { keyword: 'exclusiveMaximum', params: { limit: 9 } }, 'd must be less than 9'],
    ['maxLength', { keyword: 'maxLength', params: { limit: 1 } }, 'd must be at most 1 character long'],
    ['maxItems', { keyword: 'maxItems', params: { limit: 4 } }, 'd must have at most 4 items'],
    ['format', { keyword: 'format', params: { format: 'date-time' } }, 'd must be a valid date-time'],
    ['an unknown pattern', { keyword: 'pattern', params: { pattern: '^x$' } }, 'd must be in the documented form'],
    ['a media type', { keyword: 'pattern', params: { pattern: '^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$' } }, 'd must be a media type such as image/png, in lowercase'],
    ['another keyword', { keyword: 'multipleOf', message: 'must be multiple of 2' }, 'd must be multiple of 2'],
    ['anyOf alone', { keyword: 'anyOf', message: 'must match a schema in anyOf' }, 'd is not in any of the accepted forms'],
    ['a type with no words', { keyword: 'type', params: { type: 'thing' } }, 'd must be thing']
  ]
  for (const [why, e, words] of rows) t.equal(describeValidation([{ instancePath: '/d', ...e }], 'body'), words, why)
  t.equal(describeValidation([{ instancePath: '/a/b~1c/0', keyword: 'type', params: { type: 'string' } }], 'body'), 'a.(a field)[0] must be a string', 'an odd segment is not echoed')
  t.equal(describeValidation([{ instancePath: '/a/b', keyword: 'required', params: { missingProperty: 'c' } }], 'body'), '"c" is required in a.b')
  t.equal(describeValidation([{ instancePath: '/a', keyword: 'additionalProperties', params: { additionalProperty: 'x' } }], 'body'), 'a has an unknown property "x"')
})
