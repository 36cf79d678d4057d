// `sts-vending verify` against the dev setup (service + STS + OSS emulators), and
// against a deliberately broken service whose session policy is too wide: verify must
// notice that an upload outside the caller's directory succeeded.
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { runCli } from '../../../src/cli/main.js'
import { type CliIo } from '../../../src/cli/args.js'
import { startDevStack } from '../../../devkit/dev/stack.js'
import { DEV_BUCKET, DEV_ROLE_ARN, devRolePolicy } from '../../../devkit/dev/emulators.js'
import { buildApp } from '../../../src/app.js'
import { prepare } from '../../../src/prepare.js'
import { parseConfig } from '../../../src/config/load.js'
import { createDevIssuer } from '../../../devkit/dev/issuer.js'
import { startOssEmulator } from '../../../devkit/emulator/oss.js'
import { startStsEmulator } from '../../../devkit/emulator/sts.js'
import { createStsClient } from '../../../src/alicloud/sts-client.js'
import { createStaticCredential } from '../../../src/alicloud/credentials.js'
import { buildSessionPolicy, serializePolicy } from '../../../src/policy/build.js'

async function runVerify (argv: string[], io: CliIo): Promise<number> {
  return await runCli(['verify', ...argv], io)
}

function capture (env: Record<string, string | undefined> = {}): CliIo & { out: () => string, err: () => string } {
  let out = ''
  let err = ''
  return { stdout: { write: (s: string) => { out += s } }, stderr: { write: (s: string) => { err += s } }, env, out: () => out, err: () => err }
}

const silent = pino({ level: 'silent' })

/** A loopback URL on which nothing listens (a port just released). */
async function freePort (): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return `http://127.0.0.1:${port}`
}

t.test('passes against the dev setup, and leaves nothing behind', async (t) => {
  const stack = await startDevStack({ logger: silent })
  t.teardown(stack.close)
  const token = stack.issuer.mint({ sub: 'alice' })
  const dir = t.testdir({ token: token + '\n' })
  const io = capture()
  const code = await runVerify(['--url', stack.url, '--token-file', join(dir, 'token'), '--expect-actions', 'list,read,write,delete'], io)
  t.equal(code, 0, io.out() + io.err())
  t.match(io.out(), /prefix users\/alice\/, actions list,read,write,delete/)
  t.match(io.out(), /list the bucket root\s+denied\s+denied\s+ok/)
  t.match(io.out(), /put in a sibling directory: users\/sts-vending-verify-\w+\/probe\.txt\s+denied\s+denied\s+ok/)
  t.match(io.out(), /put in a lookalike sibling: users\/alice-sts-vending-verify-\w+\/probe\.txt\s+denied\s+denied\s+ok/)
  t.match(io.out(), /all 10 checks as expected/)
  t.notMatch(io.out() + io.err(), token, 'the token is never printed')
  const issued = stack.sts.calls.length
  t.equal(issued, 1)
  t.same(stack.oss.keys(), [], 'the probe object was deleted')
  const puts = stack.oss.requests.filter((r) => r.operation === 'PutObject')
  t.same(puts.map((r) => r.outcome), ['ok', 'AccessDenied', 'AccessDenied', 'AccessDenied'], 'really tried, really refused')

  const viaEnv = capture({ STS_VENDING_TOKEN: token })
  t.equal(await runVerify(['--url', stack.url, '--oss-endpoint', stack.oss.url], viaEnv), 0, 'token from the environment, endpoint overridden')

  const credentialsUrl = capture({ STS_VENDING_TOKEN: token })
  t.equal(await runVerify(['--url', `${stack.url}/credentials`], credentialsUrl), 0, 'the credentials URL works as --url too (as the sidecar takes it)')
  t.equal(stack.sts.calls.length, 1, 'the same credentials, from the cache')

  const wrongExpectation = capture({ STS_VENDING_TOKEN: token })
  t.equal(await runVerify(['--url', stack.url, '--expect-actions', 'list,read'], wrongExpectation), 1, 'more actions than expected is a surprise')
  t.match(wrongExpectation.out(), /granted actions\s+list,read\s+delete,list,read,write\s+SURPRISE/)
})

t.test('reports a deliberately over-broad grant as a failure', async (t) => {
  // A broken service: everything real (app, STS, OSS, ali-oss) except that the session
  // policy it sends to AssumeRole covers users/ instead of users/<sub>/, while it still
  // tells the caller their prefix is users/<sub>/. The role policy covers users/*.
  const accessKeyId = `test${randomBytes(6).toString('hex')}`
  const accessKeySecret = randomBytes(24).toString('base64url')
  const sts = await startStsEmulator({ accessKeys: { [accessKeyId]: accessKeySecret }, roles: { [DEV_ROLE_ARN]: {} } })
  t.teardown(sts.close)
  const oss = await startOssEmulator({ bucket: DEV_BUCKET, credentials: (id) => sts.issued(id), rolePolicies: { [DEV_ROLE_ARN]: devRolePolicy() } })
  t.teardown(oss.close)
  const issuer = createDevIssuer()
  const config = parseConfig({
    sts: { endpoint: sts.url },
    issuers: [{ name: 'dev', issuer: issuer.issuer, audience: issuer.audience, publicKey: issuer.publicKeyPem, algorithms: [issuer.alg] }],
    grants: [{ name: 'uploads', issuers: ['dev'], roleArn: DEV_ROLE_ARN, bucket: DEV_BUCKET, region: 'cn-hangzhou', endpoint: oss.url, prefix: 'users/{sub}/', actions: ['list', 'read', 'write', 'delete'], durationSeconds: 3600 }]
  })
  const client = createStsClient({ endpoint: sts.url, timeoutMs: 2000, credential: createStaticCredential(accessKeyId, accessKeySecret) })
  const broad = serializePolicy(buildSessionPolicy(DEV_BUCKET, 'users/', ['list', 'read', 'write', 'delete']))
  const app = await buildApp(prepare(config, {}), {
    logger: silent,
    upstream: { assumeRole: async (input) => client.assumeRole({ ...input, policy: broad }), breakerState: () => 'closed' }
  })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`

  const io = capture({ STS_VENDING_TOKEN: issuer.mint({ sub: 'alice' }) })
  const code = await runVerify(['--url', url], io)
  t.equal(code, 1, 'exit status 1')
  t.match(io.out(), /put in a sibling directory: \S+\s+denied\s+allowed\s+SURPRISE/)
  t.match(io.out(), /put in a lookalike sibling: \S+\s+denied\s+allowed\s+SURPRISE/)
  t.match(io.out(), /put at the bucket root: \S+\s+denied\s+denied\s+ok/, 'the role policy still stops the root')
  t.match(io.out(), /list the parent users\/\s+denied\s+allowed\s+SURPRISE/)
  t.match(io.out(), /the credentials reach outside the caller's directory/)
  t.same(oss.keys(), [], 'the probes that got through were deleted again')
})

t.test('usage errors and an unreachable or refusing service exit 2 without printing the token', async (t) => {
  const stack = await startDevStack({ logger: silent })
  t.teardown(stack.close)
  const closed = await freePort()
  const rows: Array<{ desc: string, argv: string[], env?: Record<string, string>, err: RegExp }> = [
    { desc: 'no --url', argv: ['--token', 'x'], err: /--url is required/ },
    { desc: 'no token', argv: ['--url', stack.url], err: /a token is required/ },
    { desc: 'unknown flag', argv: ['--url', stack.url, '--bogus'], err: /Unknown option '--bogus'/ },
    { desc: 'bad action', argv: ['--url', stack.url, '--token', 'x', '--expect-actions', 'list,admin'], err: /unknown action admin/ },
    { desc: 'missing token file', argv: ['--url', stack.url, '--token-file', '/nonexistent/token'], err: /cannot read --token-file: ENOENT/ },
    { desc: 'a forged token', argv: ['--url', stack.url, '--token', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'], err: /POST \/credentials answered 401 \(STS_VENDING_\w+/ },
    { desc: 'nothing listening', argv: ['--url', closed, '--token', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.secret-token-value'], err: /cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/ }
  ]
  for (const row of rows) {
    const io = capture(row.env)
    t.equal(await runVerify(row.argv, io), 2, row.desc)
    t.match(io.err(), row.err, row.desc)
    t.notMatch(io.err() + io.out(), /secret-token-value|eyJzdWIi/, `${row.desc}: no token in the output`)
  }
  const help = capture()
  t.equal(await runVerify(['--help'], help), 0)
  t.match(help.out(), /Usage: sts-vending verify/)
})

t.test('--token-file never prints what the file holds; it says what is wrong with it', async (t) => {
  // Secret-shaped contents made at run time: nothing key-like is committed.
  const keyId = `LTAI${randomBytes(9).toString('hex')}`
  const keySecret = randomBytes(15).toString('base64url')
  const dotenv = `ALIBABA_CLOUD_ACCESS_KEY_ID=${keyId}\nALIBABA_CLOUD_ACCESS_KEY_SECRET=${keySecret}\n`
  const privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const keyBody = privateKey.split('\n')[1] ?? ''
  const rows: Array<{ desc: string, content: string | Buffer, err: RegExp, secrets: string[] }> = [
    { desc: 'a .env file', content: dotenv, err: /^sts-vending verify: --token-file does not hold a JWT \(header\.payload\.signature in base64url; it has 2 lines\); its contents are not shown/, secrets: [keyId, keySecret, 'ALIBABA_CLOUD'] },
    { desc: 'a private key', content: privateKey, err: /--token-file does not hold a JWT/, secrets: [keyBody, 'PRIVATE KEY'] },
    { desc: 'a password', content: 'hunter2-is-my-password', err: /--token-file does not hold a JWT \(header\.payload\.signature in base64url\); its contents/, secrets: ['hunter2'] },
    { desc: 'three parts, no JSON header', content: 'abc.def.ghi', err: /--token-file does not hold a JWT/, secrets: ['abc.def'] },
    { desc: 'a header with a newline in it', content: 'eyJhbGciOiJub25lIn0\n.eyJzdWIiOiJ4In0.', err: /--token-file does not hold a JWT/, secrets: ['eyJhbGci'] },
    { desc: 'binary', content: Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x0a, 0x00, 0x41]), err: /--token-file does not hold a JWT/, secrets: ['\u0000'] },
    { desc: 'empty', content: '', err: /^sts-vending verify: --token-file is empty/, secrets: [] },
    { desc: 'only whitespace', content: ' \n\t\n', err: /--token-file is empty/, secrets: [] },
    { desc: 'too large', content: `eyJhbGciOiJub25lIn0.${'QUJD'.repeat(5000)}.`, err: /--token-file is too large for a JWT \(more than 16384 bytes\)/, secrets: ['QUJDQUJD'] }
  ]
  const dir = t.testdir(Object.fromEntries(rows.map((r, i) => [`f${i}`, r.content])))
  for (const [i, row] of rows.entries()) {
    const io = capture()
    t.equal(await runVerify(['--url', 'http://127.0.0.1:1', '--token-file', join(dir, `f${i}`)], io), 2, row.desc)
    t.equal(io.out(), '', `${row.desc}: nothing on stdout`)
    t.match(io.err(), row.err, row.desc)
    t.ok(io.err().endsWith('\n') && !io.err().trimEnd().includes('\n'), `${row.desc}: one line`)
    for (const secret of row.secrets) t.notOk(io.err().includes(secret), `${row.desc}: does not print ${JSON.stringify(secret)}`)
  }
  const io = capture()
  t.equal(await runVerify(['--url', 'http://127.0.0.1:1', '--token-file', dir], io), 2)
  t.match(io.err(), /cannot read --token-file: EISDIR/, 'a directory')

  const env = capture({ STS_VENDING_TOKEN: dotenv })
  t.equal(await runVerify(['--url', 'http://127.0.0.1:1'], env), 2)
  t.match(env.err(), /STS_VENDING_TOKEN does not hold a JWT/, 'the environment variable is checked alike')
  t.notMatch(env.err(), /LTAI5t|sEcReT/)
})
