import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', 'coverage/**', '.tap/**', 'helm/**', 'public/vendor/**', 'test-artifacts/**']
  }),
  // `void promise` marks a deliberately unawaited promise as a statement.
  // TypeBox's idiom names a schema and its Static type alike (`Action` and `type Action`).
  { rules: { 'no-void': ['error', { allowAsStatement: true }], '@typescript-eslint/no-redeclare': 'off' } }
]
