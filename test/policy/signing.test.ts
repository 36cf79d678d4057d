// The session policy of a grant's signing credential: the grant's whole tree for every
// caller, signing actions only, size-checked like the caller's policy.
import t from 'tap'
import { signingPolicy, signingSessionName } from '../../src/policy/signing.js'
import { POLICY_MAX_BYTES } from '../../src/core/index.js'

const DIR = 'dir111/dir111_secondline1/'
const grant = { name: 'uploads', issuers: ['app'], roleArn: 'acs:ram::1234567890123456:role/uploads', bucket: 'oss-test', region: 'cn-hangzhou', prefix: `${DIR}{sub}/`, actions: ['read', 'write'], durationSeconds: 3600 }

t.test('the signing policy: the grant\'s tree for every caller, signing actions only', async (t) => {
  const p = (g: Record<string, unknown>) => JSON.parse(signingPolicy({ ...grant, ...g } as never))
  t.strictSame(p({}).Statement, [{ Effect: 'Allow', Action: ['oss:PutObject', 'oss:GetObject'], Resource: [`acs:oss:*:*:oss-test/${DIR}*`] }])
  t.strictSame(p({ actions: ['write', 'delete', 'list'] }).Statement[0].Action, ['oss:PutObject'])
  t.strictSame(p({ actions: ['read'], prefix: 'tenants/{tenant}/{sub}/' }).Statement[0], { Effect: 'Allow', Action: ['oss:GetObject'], Resource: ['acs:oss:*:*:oss-test/tenants/*'] })
  t.throws(() => p({ actions: ['list'] }), /read or write/)
})

t.test('the signing policy is refused over STS\'s size limit (fail closed)', async (t) => {
  const head = 'a/'.repeat(POLICY_MAX_BYTES / 2)
  t.throws(() => signingPolicy({ ...grant, prefix: `${head}{sub}/` } as never), /over STS's limit of 2048 bytes/)
})

t.test('the signing session name: the grant\'s, within STS\'s 64 characters', async (t) => {
  t.equal(signingSessionName(grant as never), 'sign@uploads')
  t.equal(signingSessionName({ ...grant, name: 'g'.repeat(80) } as never).length, 64)
})

t.test('no action a form field could reach beyond the upload: no ACL, no tagging', async (t) => {
  for (const actions of [['read', 'write'], ['list', 'read', 'write', 'delete']]) {
    const doc = JSON.parse(signingPolicy({ ...grant, actions } as never))
    const granted = doc.Statement.flatMap((s: { Action: string[] }) => s.Action)
    for (const a of ['oss:PutObjectAcl', 'oss:PutObjectTagging', 'oss:DeleteObject', 'oss:*']) t.notOk(granted.includes(a), `${actions.join(',')}: no ${a}`)
  }
})
