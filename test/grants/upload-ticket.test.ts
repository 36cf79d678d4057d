import t from 'tap'
import { callerHash, issueTicket, readTicket, ticketCovers, type TicketClaims } from '../../src/grants/upload-ticket.js'

const SECRET = Buffer.from('s'.repeat(32))
const claims: TicketClaims = { g: 'uploads', c: callerHash('app', 'alice'), k: 'users/alice/x/cat.png', x: 'exact', e: 2_000_000_000, n: 'abc' }

t.test('a ticket reads back only under its grant\'s secret, unexpired and untampered', async (t) => {
  const ticket = issueTicket(SECRET, claims)
  t.match(ticket, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
  const secretFor = (g: string) => g === 'uploads' ? SECRET : undefined
  t.same(readTicket(ticket, secretFor, 1_999_999_999_000), claims)
  t.equal(readTicket(ticket, secretFor, 2_000_000_001_000), undefined, 'expired')
  t.equal(readTicket(ticket, () => Buffer.from('o'.repeat(32)), 0), undefined, 'another secret')
  const forged = Buffer.from(JSON.stringify({ ...claims, k: 'users/bob/', x: 'prefix' })).toString('base64url') + '.' + ticket.split('.')[1]
  t.equal(readTicket(forged, secretFor, 0), undefined, 'claims changed under the old tag')
  for (const bad of [undefined, 42, '', 'a', 'a.b.c', '.', 'x'.repeat(3000)]) t.equal(readTicket(bad, secretFor, 0), undefined, JSON.stringify(bad)?.slice(0, 20))
  t.equal(readTicket(issueTicket(SECRET, { ...claims, g: 'other' }), secretFor, 0), undefined, 'a grant without a secret')
})

t.test('what a ticket covers', async (t) => {
  t.ok(ticketCovers(claims, claims.k))
  t.notOk(ticketCovers(claims, claims.k + 'x'))
  const prefix: TicketClaims = { ...claims, k: 'users/alice/', x: 'prefix' }
  t.ok(ticketCovers(prefix, 'users/alice/a.png'))
  t.notOk(ticketCovers(prefix, 'users/alice/'))
  t.notOk(ticketCovers(prefix, 'users/bob/a.png'))
  t.not(callerHash('app', 'alice'), callerHash('other', 'alice'), 'the issuer is part of the caller')
})
