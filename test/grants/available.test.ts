// availableGrants (GET /grants) against resolveGrant (POST /credentials): for any caller,
// a listed grant resolves to the listed directory, an unusable one is refused with the
// listed reason, and every grant not listed is refused as not this caller's. The list
// can neither promise what vending refuses nor hide what it gives.
import t from 'tap'
import fc from 'fast-check'
import type { GrantConfig } from '../../src/config/schema.js'
import { availableGrants, resolveGrant } from '../../src/grants/resolve.js'
import { compileGrants } from '../../src/grants/compile.js'

function grant (g: Partial<GrantConfig> & { name: string }): GrantConfig {
  return { issuers: ['corp'], roleArn: 'acs:ram::123456789012:role/uploader', bucket: 'uploads', region: 'cn-hangzhou', prefix: 'users/{sub}/', actions: ['list', 'read'], durationSeconds: 3600, ...g }
}

const GRANTS = compileGrants({
  issuers: [{ name: 'corp' }, { name: 'partner' }],
  cache: { minRemainingSeconds: 1200 },
  grants: [
    grant({ name: 'home' }),
    grant({ name: 'reports', prefix: 'reports/{tenant}/{sub:sha256}/', when: { scope: 'reports:read' } }),
    grant({ name: 'admin', prefix: 'admin/{sub}/', when: { groups: 'admins' } }),
    grant({ name: 'partners', issuers: ['partner', 'corp'], prefix: 'apps/{issuer}/{sub}/', when: { role: 'partner' } }),
    grant({ name: 'mail', prefix: 'mail/{email}/' })
  ]
})
const NAMES = GRANTS.map((g) => g.config.name)

const claimValue = fc.oneof(fc.constantFrom('alice', 'a.b@c', 'acme', 'reports:read', 'admins', 'partner', '', '../x', 'has space', 'x'.repeat(200)), fc.array(fc.constantFrom('admins', 'reports:read', 'x'), { maxLength: 3 }), fc.integer())
const claims = fc.record({ sub: claimValue, tenant: claimValue, scope: claimValue, groups: claimValue, role: claimValue, email: claimValue }, { requiredKeys: [] })

t.test('what is listed is exactly what vending decides', async (t) => {
  fc.assert(fc.property(fc.constantFrom('corp', 'partner'), claims, (issuer, c) => {
    const { usable, unusable } = availableGrants(GRANTS, issuer, c)
    for (const name of NAMES) {
      const listed = usable.find((u) => u.grant.config.name === name)
      const broken = unusable.find((u) => u.name === name)
      let outcome: { prefix: string } | { code: string, message: string }
      try {
        outcome = { prefix: resolveGrant(GRANTS, issuer, c, { grant: name }).grantPrefix }
      } catch (err) {
        outcome = { code: (err as { code: string }).code, message: (err as Error).message }
      }
      if (listed !== undefined) {
        if (!('prefix' in outcome) || outcome.prefix !== listed.prefix) return false
      } else if (broken !== undefined) {
        if (!('code' in outcome) || outcome.code !== 'STS_VENDING_CLAIM_NOT_USABLE' || !outcome.message.includes(broken.reason)) return false
      } else if (!('code' in outcome) || outcome.code !== 'STS_VENDING_GRANT_NOT_ALLOWED') {
        return false
      }
    }
    return true
  }), { numRuns: 500 })
  t.pass('500 callers')
})

t.test('a few callers by hand', async (t) => {
  const names = (issuer: string, c: Record<string, unknown>): unknown => {
    const r = availableGrants(GRANTS, issuer, c)
    return { usable: r.usable.map((u) => `${u.grant.config.name}:${u.prefix}`), unusable: r.unusable.map((u) => u.name) }
  }
  t.strictSame(names('corp', { sub: 'alice', email: 'alice@example.com' }), { usable: ['home:users/alice/', 'mail:mail/alice@example.com/'], unusable: [] })
  t.strictSame(names('corp', { sub: 'alice', groups: ['admins'], email: 'a b' }), { usable: ['home:users/alice/', 'admin:admin/alice/'], unusable: ['mail'] })
  t.strictSame(names('partner', { sub: 'bob', role: 'partner' }), { usable: ['partners:apps/partner/bob/'], unusable: [] })
  t.strictSame(names('partner', { sub: 'bob' }), { usable: [], unusable: [] }, 'a `when` that does not hold hides the grant')
})
