#!/usr/bin/env node
// Static checks for the sts-vending Dockerfile, run before the (slow) image
// build in scripts/test-image.sh. It encodes the packaging contract, not
// general Dockerfile style: a base image chosen by ARG BASE_IMAGE, a numeric
// non-root USER in the final stage, exec-form ENTRYPOINT so node is PID 1 and
// receives SIGTERM, production-only dependencies, and nothing secret or
// network-specific (CA bundle, npmrc) baked in.
//
// Usage: node scripts/lint-dockerfile.mjs [Dockerfile]   (exit 1 on problems)
import { readFileSync, existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Split a Dockerfile into instructions, joining `\` continuations. */
export function parseDockerfile (text) {
  const out = []
  let buf = ''
  let start = 0
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]
    if (buf === '' && /^\s*(#|$)/.test(raw)) continue
    if (buf === '') start = i + 1
    if (/^\s*#/.test(raw)) continue // comment inside a continuation
    const cont = /\\\s*$/.test(raw)
    buf += (buf ? ' ' : '') + raw.replace(/\\\s*$/, '').trim()
    if (cont) continue
    const m = /^(\w+)\s*(.*)$/s.exec(buf)
    if (m) out.push({ line: start, cmd: m[1].toUpperCase(), args: m[2].trim() })
    buf = ''
  }
  if (buf) {
    const m = /^(\w+)\s*(.*)$/s.exec(buf)
    if (m) out.push({ line: start, cmd: m[1].toUpperCase(), args: m[2].trim() })
  }
  return out
}

const SECRET_NAME = /(ACCESS_?KEY|SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_?KEY|CREDENTIAL)/i
const NETWORK_SPECIFIC = [
  [/ca-certificates\.crt|\bcafile\b|NODE_EXTRA_CA_CERTS|strict-ssl|\.npmrc\b|_authToken/i,
    'network-specific CA bundle / npmrc settings do not belong in the Dockerfile'],
  [/LTAI[0-9A-Za-z]{8,}/, 'looks like an Alibaba Cloud AccessKey id'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'private key material']
]

/**
 * @param {string} text Dockerfile contents
 * @param {{ dockerignore?: string | null }} [opts] .dockerignore contents (null: missing)
 * @returns {string[]} problems, empty when the file passes
 */
export function lintDockerfile (text, opts = {}) {
  const problems = []
  const ins = parseDockerfile(text)
  const froms = ins.filter((i) => i.cmd === 'FROM')
  if (froms.length === 0) return ['no FROM instruction']

  // ARG BASE_IMAGE with a default, declared before the first FROM.
  const firstFrom = ins.indexOf(froms[0])
  const baseArg = ins.slice(0, firstFrom).find((i) => i.cmd === 'ARG' && /^BASE_IMAGE=\S+/.test(i.args))
  if (!baseArg) problems.push('ARG BASE_IMAGE=<default> must be declared before the first FROM')
  else if (!/^BASE_IMAGE=(docker\.io\/(library\/)?)?node:24[\w.-]*(@sha256:[0-9a-f]{64})?$/.test(baseArg.args)) {
    problems.push(`BASE_IMAGE default should be the official Node 24 image, got "${baseArg.args}"`)
  }
  const stageNames = new Set()
  for (const f of froms) {
    const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(f.args)
    if (!m) { problems.push(`line ${f.line}: cannot parse FROM ${f.args}`); continue }
    const image = m[1]
    if (!stageNames.has(image) && !/^\$\{?BASE_IMAGE\}?$/.test(image)) {
      problems.push(`line ${f.line}: FROM ${image} ignores BASE_IMAGE`)
    }
    if (m[2]) stageNames.add(m[2])
  }
  if (froms.length < 2) problems.push('expected a multi-stage build (build stage + runtime stage)')

  // Final stage rules.
  const final = ins.slice(ins.lastIndexOf(froms[froms.length - 1]) + 1)
  const users = final.filter((i) => i.cmd === 'USER')
  const user = users[users.length - 1]
  if (!user) problems.push('final stage has no USER (would run as root)')
  else {
    const m = /^(\d+)(?::(\d+))?$/.exec(user.args)
    if (!m) problems.push(`line ${user.line}: USER must be numeric uid[:gid], got "${user.args}"`)
    else if (Number(m[1]) === 0) problems.push(`line ${user.line}: USER must not be root (0)`)
  }
  const entry = [...final].reverse().find((i) => i.cmd === 'ENTRYPOINT' || i.cmd === 'CMD')
  if (!entry) problems.push('final stage has no ENTRYPOINT/CMD')
  else {
    let arr = null
    try { arr = JSON.parse(entry.args) } catch {}
    if (!Array.isArray(arr)) problems.push(`line ${entry.line}: ${entry.cmd} must use exec form (JSON array) so node is PID 1 and gets SIGTERM`)
    else if (!/(^|\/)(node|tini|dumb-init)$/.test(String(arr[0]))) {
      problems.push(`line ${entry.line}: ${entry.cmd} should start node (or an init) directly, got ${arr[0]}`)
    }
  }
  const finalEnv = final.filter((i) => i.cmd === 'ENV').map((i) => i.args).join(' ')
  if (!/\bNODE_ENV[= ]production\b/.test(finalEnv)) problems.push('final stage must set NODE_ENV=production')
  if (!final.some((i) => i.cmd === 'EXPOSE' && /\b3000\b/.test(i.args))) problems.push('final stage must EXPOSE 3000')
  if (!ins.some((i) => i.cmd === 'RUN' && /npm ci(\s+-[-\w=]+)*\s+--omit[= ]dev/.test(i.args))) {
    problems.push('production dependencies must be installed with npm ci --omit=dev')
  }
  const copiesContext = (i) => {
    const parts = i.args.split(/\s+/).filter((a) => !a.startsWith('--'))
    return !/--from/.test(i.args) && parts.slice(0, -1).some((src) => src === '.' || src === './')
  }
  if (final.some((i) => (i.cmd === 'COPY' || i.cmd === 'ADD') && copiesContext(i))) {
    problems.push('final stage copies the whole build context')
  }

  // Secrets and network-specific settings anywhere.
  for (const i of ins) {
    if (i.cmd === 'ENV' || i.cmd === 'ARG') {
      for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)(?:=|\s+)("[^"]*"|\S*)/g)) {
        if (SECRET_NAME.test(m[1]) && m[2] !== '' && m[2] !== '""') {
          problems.push(`line ${i.line}: ${i.cmd} ${m[1]} bakes a secret-looking value into the image`)
        }
      }
    }
    for (const [re, why] of NETWORK_SPECIFIC) {
      if (re.test(`${i.cmd} ${i.args}`)) problems.push(`line ${i.line}: ${why}`)
    }
  }

  if (opts.dockerignore === null) problems.push('.dockerignore is missing')
  else if (typeof opts.dockerignore === 'string') {
    const lines = opts.dockerignore.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    const denyAll = lines.includes('**') || lines.includes('*')
    for (const f of ['.npmrc', '.env', 'node_modules', '.git']) {
      const reincluded = lines.some((l) => l === `!${f}` || l.startsWith(`!${f}/`))
      if (denyAll ? reincluded : !lines.some((l) => l === f || l === `${f}/` || l === `**/${f}`)) {
        problems.push(`.dockerignore does not exclude ${f}`)
      }
    }
  }
  return problems
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = resolve(process.argv[2] ?? 'Dockerfile')
  const ignorePath = join(dirname(file), '.dockerignore')
  const problems = lintDockerfile(readFileSync(file, 'utf8'), {
    dockerignore: existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8') : null
  })
  for (const p of problems) console.error(`${file}: ${p}`)
  console.log(problems.length ? `FAIL dockerfile-lint ${file} (${problems.length} problems)` : `PASS dockerfile-lint ${file}`)
  process.exit(problems.length ? 1 : 0)
}
