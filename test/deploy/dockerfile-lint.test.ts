// The Dockerfile lint (scripts/lint-dockerfile.mjs) gates the slow image build
// in `npm run test:image`; here it is run as a CLI against the real Dockerfile
// and the deliberately broken fixtures, so a lint that accepts everything fails.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('../../', import.meta.url))
const lint = (dockerfile: string) => spawnSync(process.execPath, ['scripts/lint-dockerfile.mjs', dockerfile], { cwd: root, encoding: 'utf8' })

t.test('the repository Dockerfile passes', async (t) => {
  const r = lint('Dockerfile')
  t.equal(r.status, 0, r.stderr)
})

const broken = [
  {
    description: 'root user, shell-form CMD, fixed base, whole context, no .dockerignore',
    file: 'test/deploy/fixtures/dockerfile-root/Dockerfile',
    expect: [/no USER/, /exec form/, /ignores BASE_IMAGE/, /copies the whole build context/, /\.dockerignore is missing/, /npm ci --omit=dev/]
  },
  {
    description: 'baked AccessKey secret, CA bundle/npmrc settings, named USER',
    file: 'test/deploy/fixtures/dockerfile-secrets/Dockerfile',
    expect: [/ALIBABA_CLOUD_ACCESS_KEY_SECRET bakes a secret/, /CA bundle/, /USER must be numeric/]
  }
]
for (const row of broken) {
  t.test(`rejects: ${row.description}`, async (t) => {
    const r = lint(row.file)
    t.equal(r.status, 1)
    for (const re of row.expect) t.match(r.stderr, re)
  })
}
