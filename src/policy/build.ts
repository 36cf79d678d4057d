// The session policy passed to AssumeRole. STS hands back credentials whose rights are
// the intersection of the role's policies and this document, so this is the one place
// that confines a caller to their directory. Invariants, asserted here even though
// callers validated first (fail closed): the bucket and prefix come from the safe
// alphabet only, the object Resource is `acs:oss:*:*:<bucket>/<prefix>*` whose only
// key wildcard is that final `*`, and the document is built as objects and serialised
// with JSON.stringify, never by gluing strings.
import { ACTIONS, isBucketName, isSafePrefix, type Action } from '../core/index.js'

/** STS refuses session policies longer than this (InvalidParameter.PolicyGrammar / length). */

export interface PolicyStatement {
  Effect: 'Allow' | 'Deny'
  Action: string[]
  Resource: string[]
  Condition?: Record<string, Record<string, string[]>>
}
export interface PolicyDocument { Version: '1', Statement: PolicyStatement[] }

/**
 * What each grant action allows in OSS. `write` needs the multipart calls a browser
 * or SDK upload makes; oss:PutObject also authorises PostObject, InitiateMultipartUpload,
 * UploadPart and CompleteMultipartUpload. `read` (oss:GetObject) also covers HeadObject
 * and GetObjectMeta. `list` is a bucket action, confined by the `oss:Prefix` condition.
 */
export const ACTION_MAP: Readonly<Record<Action, readonly string[]>> = Object.freeze({
  list: Object.freeze(['oss:ListObjects']),
  read: Object.freeze(['oss:GetObject']),
  write: Object.freeze(['oss:PutObject', 'oss:AbortMultipartUpload', 'oss:ListParts']),
  delete: Object.freeze(['oss:DeleteObject'])
})

/** Actions in the canonical order (list, read, write, delete), without duplicates. */
export function canonicalActions (actions: readonly Action[]): Action[] {
  return ACTIONS.filter((a) => actions.includes(a))
}

export function bucketArn (bucket: string): string {
  return `acs:oss:*:*:${bucket}`
}

export function objectArn (bucket: string, prefix: string): string {
  return `acs:oss:*:*:${bucket}/${prefix}*`
}

export function buildSessionPolicy (bucket: string, prefix: string, actions: readonly Action[]): PolicyDocument {
  if (!isBucketName(bucket)) throw new Error('session policy: the bucket name is not valid')
  if (!isSafePrefix(prefix)) throw new Error('session policy: the prefix is not a safe directory')
  if (!Array.isArray(actions) || actions.some((a) => !(ACTIONS as readonly string[]).includes(a))) {
    throw new Error('session policy: unknown action')
  }
  const wanted = canonicalActions(actions)
  if (wanted.length === 0) throw new Error('session policy: no actions')

  const Statement: PolicyStatement[] = []
  const objectActions = wanted.filter((a) => a !== 'list').flatMap((a) => ACTION_MAP[a])
  if (objectActions.length > 0) {
    Statement.push({ Effect: 'Allow', Action: [...objectActions], Resource: [objectArn(bucket, prefix)] })
  }
  if (wanted.includes('list')) {
    Statement.push({
      Effect: 'Allow',
      Action: [...ACTION_MAP.list],
      Resource: [bucketArn(bucket)],
      Condition: { StringLike: { 'oss:Prefix': [`${prefix}*`] } }
    })
  }
  return { Version: '1', Statement }
}

export function serializePolicy (doc: PolicyDocument): string {
  return JSON.stringify(doc)
}

/** Size in bytes of the serialised policy (what STS counts). */
export function policyBytes (doc: PolicyDocument): number {
  return Buffer.byteLength(serializePolicy(doc), 'utf8')
}
