// Loaded after tsx (node --import tsx --import ./scripts/tsx-source-maps.mjs) in every
// test process. tsx writes its inline source maps with "sourcesContent": [null];
// v8-to-istanbul (tap's coverage) takes that null for the original text and counts each
// file as one line. Without the field it reads the .ts file from disk, and every line
// maps. This load hook, which runs before tsx's, drops the nulls.
import { register } from 'node:module'
import { isMainThread } from 'node:worker_threads'

if (isMainThread) register(import.meta.url)

const INLINE = /\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/

/** @public The module hook Node calls (registered above); nothing imports it. */
export async function load (url, context, nextLoad) {
  const result = await nextLoad(url, context)
  if (!/\.[cm]?tsx?$/.test(new URL(url).pathname) || result.source == null) return result
  const text = result.source.toString()
  const m = INLINE.exec(text)
  if (m === null) return result
  const map = JSON.parse(Buffer.from(m[1], 'base64').toString())
  if (!Array.isArray(map.sourcesContent) || map.sourcesContent.some((s) => s !== null)) return result
  delete map.sourcesContent
  return { ...result, source: `${text.slice(0, m.index)}//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}\n` }
}
