// The argument kit's shared pieces: the service URL both verify and sidecar take, and
// the loader that tells a missing optional package from any other failure.
import t from 'tap'
import { MissingPackage, UsageError, credentialsUrl, loadOptional, parse } from '../../src/cli/args.js'

t.test('credentialsUrl: the base URL or the credentials URL, to the same place', async (t) => {
  const rows: Array<[string, string]> = [
    ['https://sts.example', 'https://sts.example/credentials'],
    ['https://sts.example/', 'https://sts.example/credentials'],
    ['https://sts.example/credentials', 'https://sts.example/credentials'],
    ['https://sts.example/credentials/', 'https://sts.example/credentials'],
    ['http://127.0.0.1:3000', 'http://127.0.0.1:3000/credentials'],
    ['https://gw.example/sts', 'https://gw.example/sts/credentials'],
    ['https://gw.example/sts/', 'https://gw.example/sts/credentials'],
    ['https://gw.example/sts/credentials', 'https://gw.example/sts/credentials'],
    ['https://gw.example/my-credentials', 'https://gw.example/my-credentials/credentials']
  ]
  for (const [given, want] of rows) t.equal(credentialsUrl(given).href, want, given)

  const refused: Array<[string, string, RegExp]> = [
    ['not a URL', 'sts.example', /--url is not a URL/],
    ['another scheme', 'ftp://sts.example', /--url must be http\(s\)/],
    ['a user in it', 'https://me:pw@sts.example', /must not carry a user or password/],
    ['a query', 'https://sts.example/credentials?format=x', /must not carry a query or fragment/],
    ['a fragment', 'https://sts.example/#x', /must not carry a query or fragment/]
  ]
  for (const [what, given, want] of refused) t.throws(() => credentialsUrl(given), { name: 'UsageError', message: want }, what)
})

t.test('loadOptional: a missing package is MissingPackage, anything else passes through', async (t) => {
  const missing = await loadOptional('sts-vending-no-such-package', async () => await import('sts-vending-no-such-package' as string))
    .then(() => undefined, (err: unknown) => err)
  t.ok(missing instanceof MissingPackage, 'a real ERR_MODULE_NOT_FOUND for that package')
  t.equal((missing as Error).message, 'needs the optional package sts-vending-no-such-package (npm install sts-vending-no-such-package)')

  // A package that is there but fails to load for another reason is not "missing".
  const other = await loadOptional('ali-oss', async () => await import('sts-vending-no-such-package' as string)).then(() => undefined, (err: unknown) => err)
  t.notOk(other instanceof MissingPackage, 'another package missing underneath is not reported as this one')
  const broken = new Error('boom')
  await t.rejects(loadOptional('ali-oss', async () => { throw broken }), broken)
  t.equal((await loadOptional('ali-oss', async () => await import('ali-oss'))).default.name, 'Client', 'present: the module')
})

t.test('parse: strict, no positionals, --help always known', async (t) => {
  t.same(parse(['--a', 'x', '-h'], { a: { type: 'string' } }), { a: 'x', help: true })
  t.throws(() => parse(['x'], {}), new UsageError("Unexpected argument 'x'"))
  t.throws(() => parse(['--b'], { a: { type: 'string' } }), { name: 'UsageError', message: "Unknown option '--b'" })
})
