// The one error a bad configuration raises, wherever the rule lives (the schema,
// the issuer rules here, the grant rules in grants/compile.ts). The process shell
// prints its message as one line and exits 2.
export class ConfigError extends Error {
  override name = 'ConfigError'
}
