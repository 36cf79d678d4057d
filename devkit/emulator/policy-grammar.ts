// What real STS checks in AssumeRole's `Policy` parameter (a session policy), so the
// emulator refuses what Alibaba Cloud would refuse. The grammar is the one RAM documents
// in "Policy structure and syntax": Version "1"; a non-empty Statement list; per
// statement Effect, one of Action/NotAction, one of Resource/NotResource, and an optional
// Condition. Principal belongs to resource policies (trust policies) only, and RAM has no
// Sid: both are unknown keys here. Strict but accurate: anything RAM documents as valid
// passes, anything outside it fails.
//
// Not checked (STS does not know either): whether a service code or action exists.
// Not detectable with JSON.parse: duplicate keys (the last one wins here).

export const MAX_POLICY_BYTES = 2048

export type PolicyErrorCode = 'InvalidParameter.PolicySize' | 'InvalidParameter.PolicyGrammar'

export interface PolicyProblem {
  code: PolicyErrorCode
  /** Why, for the emulator's error Message and for test diagnostics. */
  reason: string
}

export type ConditionValue = string | number | boolean

export interface RamStatement {
  Effect: 'Allow' | 'Deny'
  Action?: string | string[]
  NotAction?: string | string[]
  Resource?: string | string[]
  NotResource?: string | string[]
  Condition?: Record<string, Record<string, ConditionValue | ConditionValue[]>>
}

export interface RamPolicy {
  Version: '1'
  Statement: RamStatement[]
}

const TOP_KEYS = new Set(['Version', 'Statement'])
const STATEMENT_KEYS = new Set(['Effect', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition'])

// RAM's five operator families ("Conditional operators"); multi-valued condition keys take
// a ForAnyValue:/ForAllValues: qualifier.
const CONDITION_OPERATORS = new Set([
  'StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike',
  'NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals',
  'DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan', 'DateGreaterThanEquals',
  'Bool',
  'IpAddress', 'NotIpAddress'
])
const OPERATOR_QUALIFIER = /^(?:ForAnyValue|ForAllValues):/

// <ram-code>:<action-name>, either part may use the wildcards * and ?; or "*" alone.
const ACTION = /^(?:\*|[A-Za-z0-9*?-]+:[A-Za-z0-9*?_-]+)$/
// "*" or acs:<service>:<region>:<account-id>:<relative-id> (region and account may be empty or *).
const RESOURCE = /^(?:\*|acs:[A-Za-z0-9*?-]+:[^:]*:[^:]*:.+)$/
const CONDITION_KEY = /^[A-Za-z0-9_-]+:[A-Za-z0-9_./:*-]+$/
// C0 controls, DEL, C1 controls, and the JSON-legal but line-breaking U+2028/U+2029.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function grammar (reason: string): PolicyProblem {
  return { code: 'InvalidParameter.PolicyGrammar', reason }
}

function checkStringList (value: unknown, name: string, pattern: RegExp): PolicyProblem | undefined {
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || list.length === 0) return grammar(`${name} must be a string or a non-empty array of strings`)
  for (const item of list) {
    if (typeof item !== 'string') return grammar(`${name} must contain strings only`)
    if (CONTROL.test(item)) return grammar(`${name} contains a control character`)
    if (!pattern.test(item)) return grammar(`${name} "${item.slice(0, 64)}" is not well-formed`)
  }
  return undefined
}

function checkConditionValue (v: unknown): boolean {
  if (typeof v === 'string') return !CONTROL.test(v)
  if (typeof v === 'number') return Number.isFinite(v)
  return typeof v === 'boolean'
}

function checkCondition (value: unknown): PolicyProblem | undefined {
  if (!isPlainObject(value) || Object.keys(value).length === 0) return grammar('Condition must be a non-empty object')
  for (const [operator, block] of Object.entries(value)) {
    if (!CONDITION_OPERATORS.has(operator.replace(OPERATOR_QUALIFIER, ''))) return grammar(`unknown condition operator "${operator.slice(0, 64)}"`)
    if (!isPlainObject(block) || Object.keys(block).length === 0) return grammar(`${operator} must be a non-empty object`)
    for (const [key, v] of Object.entries(block)) {
      if (!CONDITION_KEY.test(key)) return grammar(`condition key "${key.slice(0, 64)}" is not well-formed`)
      const values = Array.isArray(v) ? v : [v]
      if (values.length === 0 || !values.every(checkConditionValue)) return grammar(`condition ${operator}/${key} must be a value or a non-empty array of values`)
    }
  }
  return undefined
}

function checkStatement (s: unknown, i: number): PolicyProblem | undefined {
  if (!isPlainObject(s)) return grammar(`Statement[${i}] must be an object`)
  for (const key of Object.keys(s)) {
    if (!STATEMENT_KEYS.has(key)) return grammar(`Statement[${i}] has an unknown element "${key.slice(0, 64)}"`)
  }
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny') return grammar(`Statement[${i}].Effect must be "Allow" or "Deny"`)
  if (('Action' in s) === ('NotAction' in s)) return grammar(`Statement[${i}] needs exactly one of Action and NotAction`)
  if (('Resource' in s) === ('NotResource' in s)) return grammar(`Statement[${i}] needs exactly one of Resource and NotResource`)
  const action = 'Action' in s ? 'Action' : 'NotAction'
  const resource = 'Resource' in s ? 'Resource' : 'NotResource'
  return checkStringList(s[action], `Statement[${i}].${action}`, ACTION) ??
    checkStringList(s[resource], `Statement[${i}].${resource}`, RESOURCE) ??
    ('Condition' in s ? checkCondition(s.Condition) : undefined)
}

/**
 * The problem with a session policy, or undefined when STS would accept it. maxBytes
 * defaults to STS's session-policy limit; the RAM emulator passes RAM's custom-policy one.
 */
export function checkPolicy (text: string, maxBytes: number = MAX_POLICY_BYTES): PolicyProblem | undefined {
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes > maxBytes) return { code: 'InvalidParameter.PolicySize', reason: `the policy is ${bytes} bytes; at most ${maxBytes} are allowed` }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    return grammar('the policy is not JSON')
  }
  if (!isPlainObject(doc)) return grammar('the policy must be a JSON object')
  for (const key of Object.keys(doc)) {
    if (!TOP_KEYS.has(key)) return grammar(`unknown top-level element "${key.slice(0, 64)}"`)
  }
  if (doc.Version !== '1') return grammar('Version must be the string "1"')
  if (!Array.isArray(doc.Statement) || doc.Statement.length === 0) return grammar('Statement must be a non-empty array')
  for (const [i, s] of doc.Statement.entries()) {
    const problem = checkStatement(s, i)
    if (problem !== undefined) return problem
  }
  return undefined
}

/** The STS error code for a session policy, or undefined when it is acceptable. */
export function policyGrammarError (text: string): PolicyErrorCode | undefined {
  return checkPolicy(text)?.code
}

/** The parsed policy when it is acceptable; undefined otherwise. */
export function parsePolicy (text: string): RamPolicy | undefined {
  return checkPolicy(text) === undefined ? JSON.parse(text) as RamPolicy : undefined
}
