// A small RAM policy evaluator in the style of the policy simulator, so tests (and the
// OSS emulator) can ask "would this request be allowed?" instead of comparing JSON.
// Semantics: an explicit Deny wins over any Allow; nothing allowed is an implicit deny.
// `*` matches any run of characters (including `/`), `?` exactly one; actions compare
// case-insensitively, resources and condition values case-sensitively. An ARN is
// matched field by field (acs:service:region:account:resource), so a `*` in the region
// field can never swallow a colon of an object key and reach another bucket.
// Fail closed: a malformed document allows nothing; an unknown condition operator
// makes an Allow statement not apply and a Deny statement apply.

export interface AccessRequest {
  /** e.g. 'oss:PutObject' */
  action: string
  /** 'acs:oss:*:*:bucket/key' or the real form 'acs:oss:cn-hangzhou:123:bucket/key' */
  resource?: string
  /** Condition keys, e.g. { 'oss:Prefix': 'dir/' }; names compare case-insensitively. */
  context?: Record<string, string>
  /** For trust policies: the caller, matched against any value of `Principal`. */
  principal?: string
}

export type Decision = 'allow' | 'deny' | 'implicit-deny'

type Operator = 'StringEquals' | 'StringNotEquals' | 'StringLike' | 'StringNotLike'
const OPERATORS = new Set<string>(['StringEquals', 'StringNotEquals', 'StringLike', 'StringNotLike'])
const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition', 'Principal'])

interface Statement {
  effect: 'Allow' | 'Deny'
  /** Lower-cased: actions compare in any case. */
  actions: string[]
  notAction: boolean
  /** Each pattern split into ARN fields (or one field when it is not an ARN). */
  resources: string[][] | undefined
  notResource: boolean
  principals: string[] | undefined
  conditions: Array<{ op: Operator, key: string, values: string[] }>
  /** A condition operator this evaluator does not know: Allow never applies, Deny always does. */
  unknownOperator: boolean
}

/**
 * Wildcard match without regular expressions (no backtracking blow-up): `*` is any
 * run, `?` one UTF-16 unit. Linear in practice, O(n·m) at worst.
 */
export function wildcardMatch (pattern: string, value: string, ignoreCase = false): boolean {
  return ignoreCase ? globMatch(pattern.toLowerCase(), value.toLowerCase()) : globMatch(pattern, value)
}

function globMatch (p: string, v: string): boolean {
  let pi = 0
  let vi = 0
  let star = -1
  let mark = 0
  while (vi < v.length) {
    if (pi < p.length && (p[pi] === '?' || (p[pi] !== '*' && p[pi] === v[vi]))) {
      pi++
      vi++
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++
      mark = vi
    } else if (star !== -1) {
      pi = star + 1
      vi = ++mark
    } else {
      return false
    }
  }
  while (pi < p.length && p[pi] === '*') pi++
  return pi === p.length
}

/** Split `acs:svc:region:account:rest` into 5 fields (the rest may hold colons). */
function arnFields (arn: string): string[] | undefined {
  const fields: string[] = []
  let rest = arn
  for (let i = 0; i < 4; i++) {
    const at = rest.indexOf(':')
    if (at === -1) return undefined
    fields.push(rest.slice(0, at))
    rest = rest.slice(at + 1)
  }
  fields.push(rest)
  return fields
}

/** A resource pattern as fields: 5 for an ARN (service lower-cased), else the whole string. */
function patternFields (pattern: string): string[] {
  const f = arnFields(pattern)
  if (f === undefined) return [pattern]
  f[1] = (f[1] as string).toLowerCase()
  return f
}

function fieldsMatch (pf: string[], resource: string, rf: string[] | undefined): boolean {
  if (pf.length === 1) return globMatch(pf[0] as string, resource)
  // The service name compares case-insensitively like actions; the rest is exact.
  return rf !== undefined && pf.every((f, i) => globMatch(f, rf[i] as string))
}

function requestFields (resource: string): string[] | undefined {
  const f = arnFields(resource)
  if (f !== undefined) f[1] = (f[1] as string).toLowerCase()
  return f
}

export function resourceMatches (pattern: string, resource: string): boolean {
  return fieldsMatch(patternFields(pattern), resource, requestFields(resource))
}

function stringList (v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v]
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return v as string[]
  return undefined
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function parseStatement (s: unknown): Statement | undefined {
  if (!isPlainObject(s)) return undefined
  if (Object.keys(s).some((k) => !STATEMENT_KEYS.has(k))) return undefined
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny') return undefined
  if ((s.Action === undefined) === (s.NotAction === undefined)) return undefined

  let principals: string[] | undefined
  if (s.Principal !== undefined) {
    if (s.Principal === '*') {
      principals = ['*']
    } else {
      if (!isPlainObject(s.Principal)) return undefined
      principals = []
      for (const v of Object.values(s.Principal)) {
        const list = stringList(v)
        if (list === undefined) return undefined
        principals.push(...list)
      }
    }
  }
  if (s.Resource !== undefined && s.NotResource !== undefined) return undefined
  const rawResources = s.Resource ?? s.NotResource
  // Identity policies need a Resource; trust policies (with Principal) have none.
  if (rawResources === undefined && principals === undefined) return undefined
  const resources = rawResources === undefined ? undefined : stringList(rawResources)
  if (rawResources !== undefined && resources === undefined) return undefined
  const actionList = stringList(s.Action ?? s.NotAction)
  if (actionList === undefined) return undefined

  const conditions: Statement['conditions'] = []
  let unknownOperator = false
  if (s.Condition !== undefined) {
    if (!isPlainObject(s.Condition)) return undefined
    for (const [op, block] of Object.entries(s.Condition)) {
      if (!isPlainObject(block)) return undefined
      // Values of operators we do not know (Bool, NumericLessThan, IpAddress…) may be
      // of any type; the statement is judged by the fail-closed rule, not refused.
      if (!OPERATORS.has(op)) {
        unknownOperator = true
        continue
      }
      for (const [key, raw] of Object.entries(block)) {
        const values = stringList(raw)
        if (values === undefined) return undefined
        conditions.push({ op: op as Operator, key, values })
      }
    }
  }
  return {
    effect: s.Effect,
    actions: actionList.map((a) => a.toLowerCase()),
    notAction: s.Action === undefined,
    resources: resources?.map(patternFields),
    notResource: s.NotResource !== undefined,
    principals,
    conditions,
    unknownOperator
  }
}

function parseDocument (doc: unknown): Statement[] | undefined {
  if (typeof doc === 'string') {
    try {
      doc = JSON.parse(doc)
    } catch {
      return undefined
    }
  }
  if (!isPlainObject(doc) || doc.Version !== '1' || !Array.isArray(doc.Statement)) return undefined
  if (Object.keys(doc).some((k) => k !== 'Version' && k !== 'Statement')) return undefined
  const out: Statement[] = []
  for (const raw of doc.Statement) {
    const s = parseStatement(raw)
    if (s === undefined) return undefined
    out.push(s)
  }
  return out
}

function contextValue (context: Record<string, string> | undefined, key: string): string | undefined {
  if (context === null || typeof context !== 'object') return undefined
  const want = key.toLowerCase()
  for (const k of Object.keys(context)) {
    if (k.toLowerCase() === want) {
      const v = context[k]
      return typeof v === 'string' ? v : undefined
    }
  }
  return undefined
}

function conditionHolds (op: Operator, actual: string | undefined, values: string[]): boolean {
  switch (op) {
    // Positive operators need the key; negated ones hold when it is absent (as in RAM and IAM).
    case 'StringEquals': return actual !== undefined && values.includes(actual)
    case 'StringNotEquals': return actual === undefined || !values.includes(actual)
    case 'StringLike': return actual !== undefined && values.some((p) => wildcardMatch(p, actual))
    case 'StringNotLike': return actual === undefined || !values.some((p) => wildcardMatch(p, actual))
  }
}

interface Request { action: string, resource: string | undefined, fields: string[] | undefined, req: AccessRequest }

function anyMatch (patterns: string[], value: string): boolean {
  for (const p of patterns) if (globMatch(p, value)) return true
  return false
}

function statementApplies (s: Statement, r: Request): boolean {
  if (anyMatch(s.actions, r.action) === s.notAction) return false
  if (s.principals !== undefined) {
    const who = r.req.principal
    if (typeof who !== 'string' || !anyMatch(s.principals, who)) return false
  }
  if (s.resources !== undefined) {
    const what = r.resource
    if (what === undefined) return false
    let hit = false
    for (const p of s.resources) {
      if (fieldsMatch(p, what, r.fields)) {
        hit = true
        break
      }
    }
    if (hit === s.notResource) return false
  }
  if (s.unknownOperator) return s.effect === 'Deny'
  for (const c of s.conditions) {
    if (!conditionHolds(c.op, contextValue(r.req.context, c.key), c.values)) return false
  }
  return true
}

/**
 * Check a document once and return a decision function for many requests (the OSS
 * emulator and property tests ask thousands of questions of one policy).
 */
export function compilePolicy (doc: unknown): (req: AccessRequest) => Decision {
  const statements = parseDocument(doc)
  return (req) => {
    if (statements === undefined || req === null || typeof req !== 'object' || typeof req.action !== 'string') return 'implicit-deny'
    const resource = typeof req.resource === 'string' ? req.resource : undefined
    const r: Request = { action: req.action.toLowerCase(), resource, fields: resource === undefined ? undefined : requestFields(resource), req }
    let allowed = false
    for (const s of statements) {
      if (!statementApplies(s, r)) continue
      if (s.effect === 'Deny') return 'deny'
      allowed = true
    }
    return allowed ? 'allow' : 'implicit-deny'
  }
}

export function evaluatePolicy (doc: unknown, req: AccessRequest): Decision {
  return compilePolicy(doc)(req)
}

/** Effective rights of STS credentials: every policy (role policies, session policy) must allow. */
export function isAllowedByAll (docs: unknown[], req: AccessRequest): boolean {
  return Array.isArray(docs) && docs.length > 0 && docs.every((d) => evaluatePolicy(d, req) === 'allow')
}
