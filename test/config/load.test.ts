import t from 'tap'
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigFile, parseConfig, parseConfigText } from '../../src/config/load.js'
import { ConfigError } from '../../src/config/error.js'

const example = readFileSync(new URL('../../config.example.yaml', import.meta.url), 'utf8')
const valid = (): any => structuredClone(parseConfigText(example))

t.test('the documented example is accepted, with defaults filled', async (t) => {
  const c = parseConfigText(example)
  t.equal(c.sts.endpoint, 'https://sts.cn-hangzhou.aliyuncs.com')
  t.equal(c.sts.deadlineMs, 5000)
  t.equal(c.cache.minRemainingSeconds, 1200)
  t.equal(c.issuers[0]?.clockToleranceSeconds, 30)
  t.equal(c.grants[0]?.prefix, 'dir111/dir111_secondline1/{sub}/')
})

const bad: Array<{ desc: string, mutate: (c: any) => unknown, expect: RegExp }> = [
  { desc: 'unknown top-level key', mutate: (c) => { c.stss = {} }, expect: /stss: unknown key/ },
  { desc: 'unknown key in a grant', mutate: (c) => { c.grants[0].bukket = 'x' }, expect: /grants\[0\]\.bukket: unknown key/ },
  { desc: 'wrong type', mutate: (c) => { c.sts.timeoutMs = '3000' }, expect: /sts\.timeoutMs/ },
  { desc: 'malformed roleArn', mutate: (c) => { c.grants[0].roleArn = 'arn:aws:iam::1:role/x' }, expect: /grants\[0\]\.roleArn/ },
  { desc: 'bucket with upper case', mutate: (c) => { c.grants[0].bucket = 'Oss_Test' }, expect: /grants\[0\]\.bucket/ },
  { desc: 'duration below 900', mutate: (c) => { c.grants[0].durationSeconds = 600 }, expect: /grants\[0\]\.durationSeconds/ },
  { desc: 'duration above 43200', mutate: (c) => { c.grants[0].durationSeconds = 50000 }, expect: /grants\[0\]\.durationSeconds/ },
  { desc: 'prefix not ending in /', mutate: (c) => { c.grants[0].prefix = 'dir/{sub}' }, expect: /grants\[0\]\.prefix/ },
  { desc: 'issuer with no key source', mutate: (c) => { delete c.issuers[0].jwksUri }, expect: /exactly one of jwksUri, publicKey or secretEnv/ },
  { desc: 'issuer with two key sources', mutate: (c) => { c.issuers[0].secretEnv = 'X' }, expect: /exactly one of/ },
  { desc: 'HS256 with a JWKS (algorithm confusion)', mutate: (c) => { c.issuers[0].algorithms = ['RS256', 'HS256'] }, expect: /HS\* algorithms need secretEnv/ },
  { desc: 'alg none', mutate: (c) => { c.issuers[0].algorithms = ['none'] }, expect: /issuers\[0\]\.algorithms/ },
  { desc: 'no grants', mutate: (c) => { c.grants = [] }, expect: /grants/ },
  { desc: 'two issuers with one name', mutate: (c) => { c.issuers.push({ ...c.issuers[0], issuer: 'https://other.example.com/' }) }, expect: /issuers\[1\]\.name: the name "app" is used twice \(also issuers\[0\]\)/ },
  // The second would silently replace the first, turning all of its callers away.
  { desc: 'two issuers with one iss', mutate: (c) => { c.issuers.push({ ...c.issuers[0], name: 'other' }) }, expect: /issuers\[1\]\.issuer: issuers\[0\] \("app"\) already has this iss/ },
  { desc: 'unknown action', mutate: (c) => { c.grants[0].actions = ['list', 'admin'] }, expect: /grants\[0\]\.actions/ },
  { desc: 'sts endpoint with a path', mutate: (c) => { c.sts.endpoint = 'https://sts.aliyuncs.com/x/y' }, expect: /sts\.endpoint/ },
  { desc: 'not a mapping', mutate: () => [1, 2], expect: /must be a mapping/ }
]

t.test('bad configs are refused with a message naming the key', async (t) => {
  for (const c of bad) {
    const cfg = valid()
    const replaced = c.mutate(cfg)
    const input = replaced !== undefined ? replaced : cfg
    t.throws(() => parseConfig(input), { name: 'ConfigError', message: c.expect }, c.desc)
  }
})

t.test('file errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-config-'))
  await t.rejects(loadConfigFile(join(dir, 'missing.yaml')), { message: /cannot read .*ENOENT/ }, 'unreadable file')
  const broken = join(dir, 'broken.yaml')
  writeFileSync(broken, 'sts: [unclosed\n')
  await t.rejects(loadConfigFile(broken), { message: /not valid YAML or JSON/ }, 'bad YAML')
  // Issue 24: broken JSON is one clean line, the place named, no dangling colon.
  for (const [why, text] of <Array<[string, string]>>[['a doubled comma', '{"sts": {"timeoutMs": 1000,,}}'], ['cut short', '{"sts": '], ['a stray brace', '{"sts": {}}\n}']]) {
    const file = join(dir, 'broken.json')
    writeFileSync(file, text)
    await t.rejects(loadConfigFile(file), { message: new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid YAML or JSON: .*line \\d+, column \\d+$`) }, why)
    const err = await loadConfigFile(file).catch((e: unknown) => e as Error)
    t.notOk((err as Error).message.includes('\n'), `${why}: one line`)
    t.notMatch((err as Error).message, /:\s*$/, `${why}: no dangling colon`)
  }
  const dup = join(dir, 'dup.yaml')
  writeFileSync(dup, example + '\ncache:\n  maxEntries: 5\n')
  await t.rejects(loadConfigFile(dup), ConfigError, 'duplicate keys are refused, not silently merged')
  const json = join(dir, 'c.json')
  writeFileSync(json, JSON.stringify(valid()))
  t.equal((await loadConfigFile(json)).grants[0]?.name, 'uploads', 'JSON works too')
})
