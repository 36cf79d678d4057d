// Config errors in the operator's words (issue 18 item 6): the path as written, what
// was expected in plain words, and for an unknown key the nearest known one. Each row
// is a whole file as an operator would write it, and the exact line they would read.
import t from 'tap'
import { parseConfigText } from '../../src/config/load.js'
import { nearest } from '../../src/config/explain.js'

const ISSUER = `issuers:
  - name: app
    issuer: https://id.example.com/
    audience: sts-vending
    jwksUri: https://id.example.com/jwks
    algorithms: [RS256]
`
const GRANT = `grants:
  - name: uploads
    issuers: [app]
    roleArn: acs:ram::1234567890123456:role/oss-upload
    bucket: oss-test
    region: cn-hangzhou
    prefix: "u/{sub}/"
    actions: [read, write]
    durationSeconds: 3600
`
const base = ISSUER + GRANT

t.test('a sound file loads', async (t) => {
  t.equal(parseConfigText(base).grants[0]?.bucket, 'oss-test')
})

t.test('each mistake is one line naming the path and what was expected', async (t) => {
  const rows: Array<[string, string, string]> = [
    ['a typo in a key that has a default', base + 'sts:\n  timeOutMs: 2000\n',
      'config: sts.timeOutMs: unknown key; did you mean sts.timeoutMs?'],
    ['a typo in a required key is the typo, not a missing key', base.replace('    bucket: oss-test', '    bukket: oss-test'),
      'config: grants[0].bukket: unknown key; did you mean grants[0].bucket?'],
    ['a typo in a top-level key', ISSUER + GRANT.replace('grants:', 'grant:'),
      'config: grant: unknown key; did you mean grants?'],
    ['a key that differs only in case', base + 'rateLimit:\n  MAX: 10\n',
      'config: rateLimit.MAX: unknown key; did you mean rateLimit.max?'],
    ['a typo next to the key it meant to be', base + 'cache:\n  maxEntries: 10\n  maxEntires: 20\n',
      'config: cache.maxEntires: unknown key; did you mean cache.maxEntries?'],
    ['an unknown key with nothing near it lists the known ones', base + 'metrics:\n  colour: blue\n',
      'config: metrics.colour: unknown key (known keys here: enabled, port, host)'],
    ['a required key really missing', base.replace('    region: cn-hangzhou\n', ''),
      'config: grants[0].region: missing; expected an OSS region id such as cn-hangzhou'],
    ['a number written as text', base + 'sts:\n  timeoutMs: "3000"\n',
      'config: sts.timeoutMs: expected a whole number from 100 to 60000, got text'],
    ['a number out of range', base + 'sts:\n  maxAttempts: 9\n',
      'config: sts.maxAttempts: expected a whole number from 1 to 5, got 9'],
    ['a choice misspelt', base.replace('actions: [read, write]', 'actions: [raed]'),
      'config: grants[0].actions[0]: expected one of list, read, write, delete, got text; did you mean read?'],
    ['a choice far from any', base.replace('algorithms: [RS256]', 'algorithms: [none]'),
      'config: issuers[0].algorithms[0]: expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, HS256, HS384, HS512, got text'],
    ['a union (trustProxy) given a list', base + 'server:\n  trustProxy: [1]\n',
      'config: server.trustProxy: expected true or false, or a whole number from 1 to 10, or text, got a list of 1'],
    ['a pattern, in words', base.replace('bucket: oss-test', 'bucket: Oss_Test'),
      'config: grants[0].bucket: expected an OSS bucket name: 3-63 of a-z 0-9 -, not starting or ending with -'],
    ['a boolean', base + 'metrics:\n  enabled: "yes"\n',
      'config: metrics.enabled: expected true or false, got text'],
    ['an empty list', ISSUER + 'grants: []\n',
      'config: grants: expected a non-empty list, each a mapping of keys, got a list of 0'],
    ['a repeated entry', base.replace('actions: [read, write]', 'actions: [read, read]'),
      'config: grants[0].actions: an entry is listed twice'],
    ['a section that is not a mapping', base + 'cache: 5\n',
      'config: cache: expected a mapping of keys, got 5'],
    ['text too long', base.replace('audience: sts-vending', `audience: ${'a'.repeat(600)}`),
      'config: issuers[0].audience: expected text of 1-512 characters, got 600 characters'],
    ['an empty value', base + 'cors:\n  origins:\n',
      'config: cors.origins: expected a list without repeats, each an origin such as https://app.example.com (scheme and host, no path, no wildcard), got null (an empty value)']
  ]
  for (const [why, text, line] of rows) {
    let message = ''
    try {
      parseConfigText(text)
    } catch (err) {
      t.equal((err as Error).name, 'ConfigError', why)
      message = (err as Error).message
    }
    t.equal(message, line, why)
    t.notMatch(message, /Expected union value|Unexpected property|Expected required property/, `${why}: no schema jargon`)
  }
})

t.test('text the operator wrote is never echoed', async (t) => {
  // A secret pasted where a variable name belongs must not reach a log line.
  const secret = 'sk_live_51HcTRyDzXw8kQpLmN0vB7'
  const rows = [
    base.replace('jwksUri: https://id.example.com/jwks', `secretEnv: ${secret}`).replace('[RS256]', '[HS256]'),
    base.replace('bucket: oss-test', `bucket: ${secret}`),
    base.replace('actions: [read, write]', `actions: [${secret}]`),
    base + `sts:\n  timeoutMs: ${secret}\n`,
    base + `server:\n  trustProxy: [${secret}]\n`
  ]
  for (const text of rows) {
    t.throws(() => parseConfigText(text), { name: 'ConfigError' })
    try { parseConfigText(text) } catch (err) { t.notMatch((err as Error).message, secret) }
  }
})

t.test('nearest: only what is near enough to be a typo', async (t) => {
  const keys = ['timeoutMs', 'deadlineMs', 'maxAttempts', 'endpoint']
  const rows: Array<[string, string | undefined]> = [
    ['timeOutMs', 'timeoutMs'], ['TIMEOUTMS', 'timeoutMs'], ['timeoutMS', 'timeoutMs'], ['deadlinMs', 'deadlineMs'],
    ['maxAttempt', 'maxAttempts'], ['endpont', 'endpoint'], ['colour', undefined], ['x', undefined], ['retries', undefined]
  ]
  for (const [word, want] of rows) t.equal(nearest(word, keys), want, word)
  t.equal(nearest('anything', []), undefined, 'no known keys, no suggestion')
})
