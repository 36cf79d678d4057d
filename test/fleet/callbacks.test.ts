// Upload callbacks across a fleet on one real Redis: a ticket is used once for the whole
// fleet, so OSS's callback replayed to another replica is refused and never forwarded
// twice; any replica verifies a ticket another one issued (the forward secret is shared).
import t from 'tap'
import { createSign, generateKeyPairSync } from 'node:crypto'
import { startFleet } from './fleet.js'
import type { Forward } from '../../src/callback.js'

const SECRET = 'a-fleet-wide-upload-webhook-secret-0123456789'
const KEY_URL = 'https://keys.oss.test/pub.pem'
const oss = generateKeyPairSync('rsa', { modulusLength: 2048 })
const variable = (name: string): string => '$' + `{${name}}`

t.test('a callback is forwarded once for the whole fleet; its replay on another replica is 409', async (t) => {
  const forwarded: string[] = []
  const forward: Forward = async (_url, body) => { forwarded.push(body); return { status: 200, contentType: 'application/json', body: '{"ok":true}' } }
  const fleet = await startFleet(t, {
    replicas: 2,
    env: { UPLOAD_WEBHOOK_SECRET: SECRET },
    deps: { callbacks: { fetchKey: async () => oss.publicKey.export({ type: 'spki', format: 'pem' }).toString(), forward } },
    config: (c) => ({
      ...c,
      uploads: { callbackKeyUrlPrefixes: ['https://keys.oss.test/'] },
      grants: c.grants.map((g: Record<string, unknown>) => ({ ...g, signing: { callback: { url: 'https://sts.example.com/uploads/callback', forwardUrl: 'https://app.example.com/landed', forwardSecretEnv: 'UPLOAD_WEBHOOK_SECRET' } } }))
    })
  })
  const form = await fleet.upload('form', fleet.token({ sub: 'alice' }), { fileName: 'a.png' }, 0)
  t.equal(form.statusCode, 200)
  const param = JSON.parse(Buffer.from(form.json.fields.callback, 'base64').toString('utf8'))
  const body = (param.callbackBody as string)
    .replace(variable('bucket'), JSON.stringify('oss-test'))
    .replace(variable('object'), JSON.stringify(form.json.fields.key))
    .replace(variable('size'), '3')
    .replace(variable('mimeType'), JSON.stringify('image/png'))
    .replace(variable('etag'), JSON.stringify('"ABC"'))
  const signature = createSign('RSA-MD5').update(`/uploads/callback\n${body}`).sign(oss.privateKey).toString('base64')
  const call = async (replica: number) => await fleet.apps[replica]!.inject({
    method: 'POST',
    url: '/uploads/callback',
    headers: { 'content-type': 'application/json', authorization: signature, 'x-oss-pub-key-url': Buffer.from(KEY_URL).toString('base64') },
    payload: body
  })
  t.equal((await call(1)).statusCode, 200, 'verified by a replica that did not sign the form')
  const replay = await call(0)
  t.equal(replay.statusCode, 409, 'the replay on the other replica')
  t.equal(replay.json().code, 'STS_VENDING_CALLBACK_REPLAYED')
  t.equal(forwarded.length, 1, 'forwarded once for the fleet')
})
