// Who a verified token speaks for: what the verifier hands out and every use case reads.
// Its own file so that the verifier and its memory of verified tokens (verified-tokens.ts)
// can both name it without importing each other.

/** Frozen, with its claims: a recalled token hands out the same object every time. */
export interface Caller {
  /** The issuer's configured name. */
  readonly issuer: string
  /** The validated `sub` claim. */
  readonly subject: string
  readonly claims: Readonly<Record<string, unknown>>
}
