// The session policy of a grant's signing credential, beside the caller's (build.ts):
// one AssumeRole per grant whose rights cover the grant's whole directory tree for every
// caller (`users/*` for `users/{sub}/`), with only what signing needs (oss:PutObject for
// forms and PUT URLs, oss:GetObject for GET URLs). OSS holds each form or URL to the one
// key or directory signed into it; this policy bounds what any of them can reach.
// Built as objects, serialised once, and size-checked like the caller's (fail closed).
import type { GrantConfig } from '../config/schema.js'
import { literalHead } from '../grants/object-keys.js'
import { POLICY_MAX_BYTES } from '../core/index.js'
import { bucketArn, serializePolicy, type PolicyDocument } from './build.js'

/** The grant-level session policy (serialised): only what signing needs, over the grant's whole directory tree. */
export function signingPolicy (grant: GrantConfig): string {
  const actions = [
    ...(grant.actions.includes('write') ? ['oss:PutObject'] : []),
    ...(grant.actions.includes('read') ? ['oss:GetObject'] : [])
  ]
  if (actions.length === 0) throw new Error(`grant ${grant.name}: signing needs the read or write action`)
  const doc: PolicyDocument = {
    Version: '1',
    Statement: [{ Effect: 'Allow', Action: actions, Resource: [`${bucketArn(grant.bucket)}/${literalHead(grant.prefix)}*`] }]
  }
  const policy = serializePolicy(doc)
  if (Buffer.byteLength(policy, 'utf8') > POLICY_MAX_BYTES) throw new Error(`grant ${grant.name}: the signing policy is over STS's limit of ${POLICY_MAX_BYTES} bytes`)
  return policy
}

/** The role session name of a grant's signing credential (2-64 of [A-Za-z0-9.@_-]). */
export function signingSessionName (grant: GrantConfig): string {
  return `sign@${grant.name}`.slice(0, 64)
}
