// The pure builders: what each document allows (asked of the policy evaluator, not read
// off the JSON), names RAM will accept, semantic comparison, request checks, and the
// grant block the service's config accepts.
import t from 'tap'
import fc from 'fast-check'
import { parse as parseYaml } from 'yaml'
import { Value } from '@sinclair/typebox/value'
import { GrantSchema } from '../../../src/config/schema.js'
import {
  POLICY_NAME, ROLE_NAME, buildAssumePolicy, buildDocuments, buildRolePolicy, buildTrustPolicy, checkRequest, defaultGrantName,
  defaultRoleName, describeTrustDifference, grantYaml, policyNames, renderPolicy, samePolicy
} from '../../../src/cli/provision/documents.js'
import { buildSessionPolicy } from '../../../src/policy/build.js'
import { evaluatePolicy, isAllowedByAll } from '../../../devkit/policy/evaluate.js'
import { checkPolicy } from '../../../devkit/emulator/policy-grammar.js'
import { trustPolicyProblem } from '../../../devkit/emulator/ram.js'
import { ACCOUNT, BUCKET, PREFIX, USER, exampleRequest } from '../../helpers/provision.js'

const obj = (key: string): string => `acs:oss:*:*:${BUCKET}/${key}`
const bucketArn = `acs:oss:*:*:${BUCKET}`

t.test('the trust policy lets exactly the one RAM user assume the role', async (t) => {
  const trust = buildTrustPolicy(ACCOUNT, USER)
  t.equal(trustPolicyProblem(renderPolicy(trust)), undefined, 'RAM accepts it')
  const who = (principal: string): string => evaluatePolicy(trust, { action: 'sts:AssumeRole', principal })
  t.equal(who(`acs:ram::${ACCOUNT}:user/${USER}`), 'allow')
  t.equal(who(`acs:ram::${ACCOUNT}:root`), 'implicit-deny', 'not the whole account')
  t.equal(who(`acs:ram::${ACCOUNT}:user/${USER}2`), 'implicit-deny', 'not a user whose name starts alike')
  t.equal(who(`acs:ram::9999999999999999:user/${USER}`), 'implicit-deny', 'not the same name in another account')
  t.throws(() => buildTrustPolicy('12x', USER))
  t.throws(() => buildTrustPolicy(ACCOUNT, 'a*'))
})

t.test('the role policy is the session-policy shape and passes RAM grammar', async (t) => {
  const doc = buildRolePolicy(BUCKET, PREFIX, ['list', 'read', 'write'])
  t.same(doc, buildSessionPolicy(BUCKET, PREFIX, ['list', 'read', 'write']))
  t.equal(checkPolicy(renderPolicy(doc), 6144), undefined)
  t.throws(() => buildRolePolicy('-bad', PREFIX, ['read']))
  t.throws(() => buildRolePolicy(BUCKET, 'dir*/', ['read']))
  // The longest safe prefix (1024 characters) still fits RAM's 6144, indented and with every action.
  const longest = Array.from({ length: 8 }, (_, i) => String(i).repeat(127)).join('/') + '/'
  t.equal(longest.length, 1024)
  t.ok(renderPolicy(buildRolePolicy(BUCKET, longest, ['list', 'read', 'write', 'delete'])).length <= 6144)
})

t.test('the user policy allows assuming this role only', async (t) => {
  const arn = `acs:ram::${ACCOUNT}:role/sts-x`
  const doc = buildAssumePolicy(arn)
  t.equal(checkPolicy(renderPolicy(doc)), undefined)
  t.equal(evaluatePolicy(doc, { action: 'sts:AssumeRole', resource: arn }), 'allow')
  t.equal(evaluatePolicy(doc, { action: 'sts:AssumeRole', resource: `${arn}2` }), 'implicit-deny')
  t.equal(evaluatePolicy(doc, { action: 'sts:AssumeRole', resource: `acs:ram::${ACCOUNT}:role/admin` }), 'implicit-deny')
  t.equal(evaluatePolicy(doc, { action: 'ram:CreateRole', resource: arn }), 'implicit-deny')
  t.throws(() => buildAssumePolicy('acs:ram::1:role/*'))
})

t.test('role policy ∩ one caller\'s session policy: that caller\'s directory and nothing else', async (t) => {
  const actions = ['list', 'read', 'write'] as const
  const role = buildRolePolicy(BUCKET, PREFIX, [...actions])
  const alice = buildSessionPolicy(BUCKET, `${PREFIX}alice/`, [...actions])
  const both = [role, alice]
  const rows: Array<[string, string, string | undefined, Record<string, string> | undefined, boolean, boolean]> = [
    // description, action, resource, context, allowed by both, allowed by the role alone
    ['put inside alice\'s dir', 'oss:PutObject', obj(`${PREFIX}alice/photo.jpg`), undefined, true, true],
    ['get inside alice\'s subdir', 'oss:GetObject', obj(`${PREFIX}alice/a/b.txt`), undefined, true, true],
    ['put in bob\'s dir', 'oss:PutObject', obj(`${PREFIX}bob/x`), undefined, false, true],
    ['get in bob\'s dir', 'oss:GetObject', obj(`${PREFIX}bob/x`), undefined, false, true],
    ['put in the directory itself', 'oss:PutObject', obj(`${PREFIX}x`), undefined, false, true],
    ['put in the parent', 'oss:PutObject', obj('dir111/x'), undefined, false, false],
    ['put in a sibling sharing the name', 'oss:PutObject', obj('dir111/dir111_secondline1x/alice/x'), undefined, false, false],
    ['get in a sibling sharing the name', 'oss:GetObject', obj('dir111/dir111_secondline1x/x'), undefined, false, false],
    ['put in another bucket', 'oss:PutObject', `acs:oss:*:*:oss-test2/${PREFIX}alice/x`, undefined, false, false],
    ['delete in alice\'s dir (not granted)', 'oss:DeleteObject', obj(`${PREFIX}alice/x`), undefined, false, false],
    ['list alice\'s dir', 'oss:ListObjects', bucketArn, { 'oss:Prefix': `${PREFIX}alice/` }, true, true],
    ['list inside alice\'s dir', 'oss:ListObjects', bucketArn, { 'oss:Prefix': `${PREFIX}alice/2024/` }, true, true],
    ['list bob\'s dir', 'oss:ListObjects', bucketArn, { 'oss:Prefix': `${PREFIX}bob/` }, false, true],
    ['list the directory', 'oss:ListObjects', bucketArn, { 'oss:Prefix': PREFIX }, false, true],
    ['list the parent', 'oss:ListObjects', bucketArn, { 'oss:Prefix': 'dir111/' }, false, false],
    ['list the sibling', 'oss:ListObjects', bucketArn, { 'oss:Prefix': 'dir111/dir111_secondline1x/' }, false, false],
    ['list the whole bucket', 'oss:ListObjects', bucketArn, { 'oss:Prefix': '' }, false, false],
    ['list without a prefix', 'oss:ListObjects', bucketArn, undefined, false, false]
  ]
  for (const [what, action, resource, context, want, roleAlone] of rows) {
    const req = { action, ...(resource !== undefined ? { resource } : {}), ...(context !== undefined ? { context } : {}) }
    t.equal(isAllowedByAll(both, req), want, `role ∩ session: ${what}`)
    t.equal(isAllowedByAll([role], req), roleAlone, `role alone: ${what}`)
  }
})

t.test('names RAM accepts, derived deterministically', async (t) => {
  const name = defaultRoleName(BUCKET, PREFIX)
  t.match(name, /^sts-oss-test-dir111-dir111-secondline1-[0-9a-f]{8}$/)
  t.equal(defaultRoleName(BUCKET, PREFIX), name, 'the same request finds the same role')
  t.not(defaultRoleName(BUCKET, 'a_b/'), defaultRoleName(BUCKET, 'a-b/'), 'directories that slug alike get different roles')
  t.not(defaultRoleName(BUCKET, PREFIX), defaultRoleName('oss-test2', PREFIX))
  t.same(policyNames('my.role'), { rolePolicy: 'my-role-oss', userPolicy: 'my-role-assume' })
  t.equal(defaultGrantName(BUCKET, PREFIX), 'oss-test-dir111_secondline1')
  const segment = fc.stringMatching(/^[A-Za-z0-9_.@-]{1,40}$/).filter((s) => s !== '.' && s !== '..')
  fc.assert(fc.property(
    fc.stringMatching(/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/),
    fc.array(segment, { minLength: 1, maxLength: 8 }),
    (bucket, segments) => {
      const prefix = segments.join('/') + '/'
      const role = defaultRoleName(bucket, prefix)
      const names = policyNames(role)
      return ROLE_NAME.test(role) && POLICY_NAME.test(names.rolePolicy) && POLICY_NAME.test(names.userPolicy) &&
        /^[a-z0-9][a-z0-9_-]{0,62}$/.test(defaultGrantName(bucket, prefix))
    }
  ))
})

t.test('documents compare by meaning, not by text', async (t) => {
  const doc = buildRolePolicy(BUCKET, PREFIX, ['list', 'read', 'write'])
  const reordered = {
    Statement: [...doc.Statement].reverse().map((s) => ({
      ...(s.Condition !== undefined ? { Condition: s.Condition } : {}),
      Resource: s.Resource.length === 1 ? s.Resource[0] : s.Resource,
      Action: [...s.Action].reverse().map((a) => a.toUpperCase()),
      Effect: s.Effect
    })),
    Version: '1'
  }
  t.ok(samePolicy(JSON.stringify(reordered, null, 4), doc), 'key order, indentation, string-vs-list, list order, action case, statement order')
  t.notOk(samePolicy(buildRolePolicy(BUCKET, PREFIX, ['list', 'read']), doc), 'fewer actions')
  t.notOk(samePolicy(buildRolePolicy(BUCKET, 'dir111/', ['list', 'read', 'write']), doc), 'another directory')
  t.notOk(samePolicy('{', doc), 'not JSON')
  t.notOk(samePolicy(JSON.stringify(doc).replace(`${PREFIX}*`, PREFIX.toUpperCase() + '*'), doc), 'resources compare case-sensitively')
})

t.test('what differs in a foreign trust policy is named', async (t) => {
  const want = buildTrustPolicy(ACCOUNT, USER)
  const withRoot = { Version: '1', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { RAM: [`acs:ram::${ACCOUNT}:root`] } }] }
  t.equal(describeTrustDifference(JSON.stringify(withRoot), want),
    `it also trusts RAM acs:ram::${ACCOUNT}:root; it does not trust RAM acs:ram::${ACCOUNT}:user/${USER}`)
  const plusService = { Version: '1', Statement: [...want.Statement, { Effect: 'Allow', Action: ['sts:AssumeRole'], Principal: { Service: ['ecs.aliyuncs.com'] } }] }
  t.equal(describeTrustDifference(plusService, want), 'it also trusts Service ecs.aliyuncs.com')
  const withCondition = { Version: '1', Statement: [{ ...want.Statement[0], Condition: { StringEquals: { 'sts:ExternalId': 'x' } } }] }
  t.match(describeTrustDifference(withCondition, want), /same principal but its statements differ/)
  t.equal(describeTrustDifference('nope', want), 'its trust policy is not valid JSON')
})

t.test('requests are checked before anything is built', async (t) => {
  t.equal(checkRequest(exampleRequest()), undefined)
  const rows: Array<[string, Parameters<typeof exampleRequest>[0], RegExp]> = [
    ['account id with letters', { accountId: '12ab' }, /--account-id/],
    ['bucket with capitals', { bucket: 'OSS-test' }, /--bucket "OSS-test" is not a valid OSS bucket name/],
    ['bucket too short', { bucket: 'ab' }, /--bucket/],
    ['prefix without trailing slash', { prefix: 'dir111', grantPrefix: 'dir111/{sub}/' }, /--prefix "dir111" is not a safe directory/],
    ['prefix with a wildcard', { prefix: 'dir*/', grantPrefix: 'dir*/{sub}/' }, /--prefix/],
    ['prefix with ..', { prefix: 'a/../b/', grantPrefix: 'a/../b/{sub}/' }, /--prefix/],
    ['prefix with a leading slash', { prefix: '/dir/', grantPrefix: '/dir/{sub}/' }, /--prefix/],
    ['logon name instead of user name', { ramUser: 'devops_test@xxx.onaliyun.com' }, /user name \("devops_test"\), not the logon name/],
    ['user name with a space', { ramUser: 'dev ops' }, /--ram-user/],
    ['role name with _', { roleName: 'my_role' }, /--role-name/],
    ['role name of 65', { roleName: 'r'.repeat(65) }, /--role-name/],
    ['region', { region: 'hangzhou' }, /--region/],
    ['no actions', { actions: [] }, /--actions/],
    ['max session below 3600', { maxSessionDuration: 900 }, /--max-session-duration/],
    ['max session above 43200', { maxSessionDuration: 43_201 }, /--max-session-duration/],
    ['grant name with capitals', { grantName: 'Uploads' }, /--grant-name/],
    ['issuer name', { issuers: ['Bad Issuer'] }, /--issuer/],
    ['grant prefix outside the directory', { grantPrefix: 'dir111/{sub}/' }, /must lie inside --prefix/],
    ['grant prefix with a partial placeholder', { grantPrefix: `${PREFIX}u-{sub}/` }, /--grant-prefix/]
  ]
  for (const [what, over, want] of rows) t.match(checkRequest(exampleRequest(over)) ?? 'accepted', want, what)
})

t.test('the grant block is valid service config', async (t) => {
  const request = exampleRequest({ issuers: ['app', 'partner'] })
  const { roleArn } = buildDocuments(request)
  const parsed = parseYaml(grantYaml(request, roleArn)) as { grants: unknown[] }
  t.equal(parsed.grants.length, 1)
  const grant = parsed.grants[0]
  t.ok(Value.Check(GrantSchema, grant), [...Value.Errors(GrantSchema, grant)].map((e) => `${e.path} ${e.message}`).join('; '))
  t.same(grant, {
    name: 'oss-test-dir111_secondline1',
    issuers: ['app', 'partner'],
    roleArn,
    bucket: BUCKET,
    region: 'cn-hangzhou',
    prefix: `${PREFIX}{sub}/`,
    actions: ['list', 'read', 'write'],
    durationSeconds: 3600
  })
})
