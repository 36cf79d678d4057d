// docs/api.html, the readable API reference, is built from openapi.yaml by
// `npm run docs:api` (Redocly build-docs, offline). It must not drift from the
// document the service serves: the definition it embeds is the YAML's.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

const root = new URL('../', import.meta.url)

t.test('docs/api.html embeds the current openapi.yaml (run npm run docs:api after changing it)', async (t) => {
  const html = readFileSync(new URL('docs/api.html', root), 'utf8')
  const match = /const __redoc_definition = (\{.*?\});\n/s.exec(html)
  t.ok(match, 'the page embeds a definition')
  const embedded: unknown = JSON.parse(match?.[1] ?? '{}')
  const document: unknown = parse(readFileSync(new URL('openapi.yaml', root), 'utf8'))
  t.same(embedded, document)
})

t.test('the README links the reference', async (t) => {
  t.match(readFileSync(new URL('README.md', root), 'utf8'), /\(docs\/api\.html\)/)
})
