// The README's Android (Java) and iOS (Swift) snippets for the `oss-app-server` format.
// There is no Java or Swift toolchain here to compile them, so this holds them to what
// can be checked: every field they read is one the format documents (OpenAPI) and the
// service really returns, they read what they need (credentials and the grant's
// endpoint, bucket and directory: nothing hard-coded), and the two SDK contracts the
// former snippets broke: Java's getFederationToken() may throw only ClientException
// (IOException/JSONException are wrapped), and Swift's token getter cannot throw.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { build } from '../helpers/build.js'
import { assertContract, document, exchange } from '../helpers/contract.js'

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
const MARKER = '<!-- test/clients/mobile-snippets.test.ts checks this block -->'

function blocks (readme: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of readme.split(MARKER).slice(1)) {
    const m = /^\s*```(java|swift)\n([\s\S]*?)^```$/m.exec(part)
    if (m?.[1] !== undefined && m[2] !== undefined && part.trimStart().startsWith('```')) out[m[1]] = m[2]
  }
  return out
}

/** The JSON property names a snippet reads. */
function fieldsRead (lang: string, code: string): string[] {
  const re = lang === 'java' ? /\b(?:get|opt)(?:String|Int|Long|Boolean|JSONObject)\("([^"]+)"\)/g : /\b\w+\["([^"]+)"\]/g
  return [...new Set([...code.matchAll(re)].map((m) => m[1] as string))].sort()
}

const props = (name: string): string[] => Object.keys(document.components.schemas[name].properties)
const SUCCESS = props('OssAppServerCredentials')
const ERROR = props('OssAppServerError')
const NEEDED = ['AccessKeyId', 'AccessKeySecret', 'SecurityToken', 'Expiration', 'StatusCode', 'Endpoint', 'Bucket', 'Prefix']

const snippets = blocks(README)

t.test('both snippets are in the README, under their marker', async (t) => {
  t.same(Object.keys(snippets).sort(), ['java', 'swift'])
})

for (const [lang, code] of Object.entries(snippets)) {
  t.test(`${lang}: reads only documented fields, and all it needs`, async (t) => {
    const read = fieldsRead(lang, code)
    t.same(read.filter((f) => !SUCCESS.includes(f) && !ERROR.includes(f)), [], 'every field read is in OssAppServerCredentials or OssAppServerError')
    t.same(NEEDED.filter((f) => !read.includes(f)), [], 'the credentials, the status and the grant\'s endpoint, bucket and directory')
    t.notMatch(code, /aliyuncs\.com/, 'no hard-coded OSS endpoint')
  })
}

t.test('java: getFederationToken throws only ClientException', async (t) => {
  const java = snippets.java ?? ''
  const method = /getFederationToken\(\) throws ClientException \{([\s\S]*?)\n {2}\}\n\};/.exec(java)?.[1] ?? ''
  t.match(method, /catch \(IOException \| JSONException e\) \{\s*throw new ClientException\(e\);/, 'checked exceptions are wrapped')
  t.match(java, /static JSONObject fetchAnswer\(String idToken\) throws IOException, JSONException \{/, 'the helper declares what it throws')
})

t.test('swift: the token getter cannot throw', async (t) => {
  const swift = (snippets.swift ?? '').replace(/(^|\s)\/\/.*$/gm, '$1') // comments may say "throw"
  t.match(swift, /OSSFederationCredentialProvider\(federationTokenGetter: \{ \(\) -> OSSFederationToken\? in/, 'the SDK\'s initialiser and block type')
  t.notMatch(swift, /\bthrow\b/, 'nothing throws')
  for (const m of swift.matchAll(/\btry\b/g)) {
    const before = swift.slice(0, m.index)
    t.ok(before.lastIndexOf('do {') > before.lastIndexOf('} catch'), 'every try is inside do { } catch')
  }
  t.match(swift, /\} catch \{\s*return nil\s*\}/, 'a failure is nil: no token')
})

t.test('the names the snippets read are what the service answers', async (t) => {
  const h = await build(t)
  const ok = await h.app.inject({ method: 'POST', url: '/credentials?format=oss-app-server', headers: { authorization: `Bearer ${h.token({ sub: 'alice' })}` } })
  assertContract(t, exchange(ok))
  h.secret(ok.json().AccessKeySecret)
  h.secret(ok.json().SecurityToken)
  const denied = await h.app.inject({ method: 'POST', url: '/credentials?format=oss-app-server', headers: { authorization: 'Bearer nope' } })
  assertContract(t, exchange(denied))
  const answered = new Set([...Object.keys(ok.json()), ...Object.keys(denied.json())])
  for (const [lang, code] of Object.entries(snippets)) {
    t.same(fieldsRead(lang, code).filter((f) => !answered.has(f)), [], `${lang}: every field read is in a real answer`)
  }
  t.equal(ok.json().Endpoint, 'https://oss-cn-hangzhou.aliyuncs.com', 'the grant\'s endpoint')
})

t.test('the checks notice a snippet that reads a field the format lacks', async (t) => {
  t.same(fieldsRead('java', 'j.getString("AccessKeyID"); j.optInt("StatusCode")'), ['AccessKeyID', 'StatusCode'])
  t.same(fieldsRead('swift', 'json["Expiry"] as? String'), ['Expiry'])
  t.notOk(SUCCESS.includes('AccessKeyID') || SUCCESS.includes('Expiry'), 'those are not documented')
})
