// Which object keys a caller may name, beside the grant rules they extend: a key is the
// caller's directory (grants/resolve.ts) followed by whole segments of the directory
// alphabet (template.ts), optionally ending in the literal `${filename}`, which OSS
// replaces with the uploaded file's name. Keys are checked, never escaped; what passes
// is signed as it is (alicloud/oss-signing.ts), so OSS itself holds the caller to it.
import { isSafePrefix, isSafeSegment } from '../core/index.js'

/** The documented trailing placeholder of a form key. */
// eslint-disable-next-line no-template-curly-in-string -- OSS's literal placeholder, not a template
export const FILENAME_PLACEHOLDER = '${filename}'
/** OSS object keys are 1-1023 bytes. */
export const OBJECT_KEY_MAX_BYTES = 1023

/** What a form may write: exactly one key, or any key starting with `prefix`. */
export type KeyTarget = { kind: 'exact', key: string } | { kind: 'prefix', prefix: string, key: string }

const STEM = /^[A-Za-z0-9_.@-]{0,128}$/

/**
 * A requested object key inside `directory` (which ends with `/`), or undefined when it
 * is outside it or not safe: only whole safe segments, no `..`, `//`, wildcard, `$`,
 * control character or anything else outside the alphabet; `${filename}` only at the
 * very end (a form target). The answer for `${filename}` keys is a prefix target.
 */
export function checkObjectKey (directory: string, key: unknown, allowFilename: boolean): KeyTarget | undefined {
  if (typeof directory !== 'string' || !isKnownSafePrefix(directory) || typeof key !== 'string') return undefined
  if (Buffer.byteLength(key, 'utf8') > OBJECT_KEY_MAX_BYTES || !key.startsWith(directory)) return undefined
  const rest = key.slice(directory.length)
  if (allowFilename && rest.endsWith(FILENAME_PLACEHOLDER)) {
    const base = rest.slice(0, -FILENAME_PLACEHOLDER.length)
    const segments = base.split('/')
    const stem = segments.pop() as string
    if (!segments.every(isSafeSegment) || !STEM.test(stem) || stem === '.' || stem === '..') return undefined
    return { kind: 'prefix', prefix: directory + base, key }
  }
  if (rest === '' || !rest.split('/').every(isSafeSegment)) return undefined
  return { kind: 'exact', key }
}

/** The default form target: anything the browser names inside the directory. */
export function directoryTarget (directory: string): KeyTarget {
  return { kind: 'prefix', prefix: directory, key: directory + FILENAME_PLACEHOLDER }
}

/** The grant-wide directory a template covers: its literal head, up to the first placeholder. */
export function literalHead (template: string): string {
  const at = template.indexOf('{')
  const head = at === -1 ? template : template.slice(0, at)
  return head.slice(0, head.lastIndexOf('/') + 1)
}

/** The file name of a `keys: unique` form when the caller names none. */
export const DEFAULT_FILE_NAME = 'upload'
const FILE_NAME_MAX = 128
const OUTSIDE_ALPHABET = /[^A-Za-z0-9_.@-]+/g

/**
 * A caller's file name made into one safe segment: its last path component (browsers
 * send `C:\fakepath\a.png`), every run of characters outside the directory alphabet
 * replaced by `_`, no leading dots, at most 128 characters with the extension kept;
 * `upload` when nothing usable is left. Sanitised, not refused: the name is cosmetic,
 * the random segment before it is what makes the key the caller's and unique.
 */
export function sanitiseFileName (name: unknown): string {
  if (typeof name !== 'string') return DEFAULT_FILE_NAME
  const last = name.split(/[/\\]/).pop() ?? ''
  let safe = last.normalize('NFC').replace(OUTSIDE_ALPHABET, '_').replace(/^\.+/, '')
  if (safe.length > FILE_NAME_MAX) {
    const dot = safe.lastIndexOf('.')
    const ext = dot > 0 && safe.length - dot <= 16 ? safe.slice(dot) : ''
    safe = safe.slice(0, FILE_NAME_MAX - ext.length) + ext
  }
  return isSafeSegment(safe) ? safe : DEFAULT_FILE_NAME
}

// Directories already found safe, so that a form for a directory met before skips
// splitting it again (about 2 µs of a signed form under load, issue 25). Bounded; a
// directory is a string, so the set holds no caller object alive.
const SAFE_DIRECTORIES_KEPT = 10_000
const safeDirectories = new Set<string>()

function isKnownSafePrefix (directory: string): boolean {
  if (safeDirectories.has(directory)) return true
  if (!isSafePrefix(directory)) return false
  if (safeDirectories.size >= SAFE_DIRECTORIES_KEPT) safeDirectories.clear()
  safeDirectories.add(directory)
  return true
}

/**
 * The key a `keys: unique` form writes: `<directory><id>/<file name>`, or undefined when
 * it would not be a safe key (a directory near OSS's key limit). `id` comes from the
 * caller of this function (random, at least 128 bits, one segment), so this stays pure.
 * What `checkObjectKey(directory, key, false)` answers for that key, checked the short
 * way: a safe directory, then two safe segments.
 */
export function uniqueKey (directory: string, id: string, fileName: unknown): KeyTarget | undefined {
  const name = sanitiseFileName(fileName)
  if (!isKnownSafePrefix(directory) || !isSafeSegment(id) || !isSafeSegment(name)) return undefined
  const key = `${directory}${id}/${name}`
  return Buffer.byteLength(key, 'utf8') > OBJECT_KEY_MAX_BYTES ? undefined : { kind: 'exact', key }
}
