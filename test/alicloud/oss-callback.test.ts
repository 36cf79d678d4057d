// OSS's callback public key is fetched with a deadline and read only up to its size
// limit: a key server that answers too much, or an error, never becomes a key.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKeyPairSync } from 'node:crypto'
import { fetchPublicKey, PUBLIC_KEY_MAX_BYTES } from '../../src/alicloud/oss-callback.js'

const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()

t.test('the key is read whole when within the limit; too much, an error status or a redirect is refused', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/key.pem') res.writeHead(200).end(pem)
    else if (req.url === '/big.pem') res.writeHead(200).end('x'.repeat(PUBLIC_KEY_MAX_BYTES + 1))
    else if (req.url === '/moved') res.writeHead(302, { location: '/key.pem' }).end()
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const signal = (): AbortSignal => AbortSignal.timeout(5000)
  t.equal(await fetchPublicKey(`${base}/key.pem`, signal()), pem)
  await t.rejects(fetchPublicKey(`${base}/big.pem`, signal()), /too large/, 'one byte over the limit')
  await t.rejects(fetchPublicKey(`${base}/missing.pem`, signal()), /answered 404/)
  await t.rejects(fetchPublicKey(`${base}/moved`, signal()), 'a redirect is not followed')
})
