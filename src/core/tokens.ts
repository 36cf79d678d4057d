// What the service asks of the callers' tokens and of the keys that verify them.

/** Shortest HMAC secret accepted for HS256/HS384/HS512 issuers (RFC 7518 §3.2 asks for at least the hash size). */
export const HMAC_SECRET_MIN_BYTES = 32
