#!/usr/bin/env node
// Chart check (npm run test:chart). helm is not installed here, so
// tools/helm-render (a `helm template` stand-in built from Debian's Go
// packages) renders helm/sts-vending, and this script checks the result:
//
//  - values.yaml merged with each ci/*.yaml (and --set overrides) validates
//    against values.schema.json (ajv, draft-07, as Helm would at install);
//  - every rendered object validates against the Kubernetes OpenAPI schemas
//    (kubernetes-models); the ServiceMonitor, which has no installed model,
//    is checked structurally;
//  - invariants: non-root, read-only root, dropped caps, RuntimeDefault
//    seccomp, probes on /healthz and /readyz, /tmp emptyDir,
//    terminationGracePeriodSeconds >= preStop sleep + shutdown grace, the
//    ConfigMap's config.yaml parses (and passes the service's own start-up
//    checks, `check-config --no-env`, when dist/ is built), the Ingress routes
//    no internal path;
//  - self-tests: broken value sets and mutated copies of the chart must make
//    this checker exit non-zero.
//
//   node scripts/test-chart.mjs                      everything (CI)
//   node scripts/test-chart.mjs --check [--chart DIR] [-f values.yaml]... [--set k=v]...
//                                                    one case, exit 1 on failure
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import { parse as parseYaml, parseAllDocuments } from 'yaml'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const CHART = join(ROOT, 'helm/sts-vending')
const FIXTURES = join(ROOT, 'test/deploy/fixtures')
const RENDERER = process.env.HELM_RENDER ?? '/tmp/sts-vending-helm-render/helm-render'
const SELF = fileURLToPath(import.meta.url)

// --- renderer ---------------------------------------------------------------

function buildRenderer () {
  const gopath = '/usr/share/gocode'
  const need = [
    ['go', 'golang-go'],
    [join(gopath, 'src/github.com/Masterminds/sprig'), 'golang-github-masterminds-sprig-dev'],
    [join(gopath, 'src/gopkg.in/yaml.v3'), 'golang-gopkg-yaml.v3-dev']
  ]
  const missing = need.filter(([what]) => what === 'go'
    ? spawnSync('sh', ['-c', 'command -v go'], { stdio: 'ignore' }).status !== 0
    : !existsSync(what)).map(([, pkg]) => pkg)
  if (missing.length) {
    console.log(`--- test:chart needs Debian packages that are missing: ${missing.join(' ')}; installing them now with apt-get (root)`)
    run('apt-get', ['update', '-qq'])
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { DEBIAN_FRONTEND: 'noninteractive' })
  }
  mkdirSync(dirname(RENDERER), { recursive: true })
  run('go', ['build', '-o', RENDERER, './tools/helm-render'], {
    GO111MODULE: 'off',
    GOPATH: gopath,
    GOFLAGS: '',
    GOCACHE: join(dirname(RENDERER), 'gocache')
  })
}

function run (cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`)
}

function render (chartDir, files, sets) {
  const args = [...files.flatMap((f) => ['-f', f]), ...sets.flatMap((s) => ['--set', s]),
    '--name', 'sts', '--namespace', 'platform', '--show-notes', chartDir]
  const r = spawnSync(RENDERER, args, { encoding: 'utf8' })
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr }
}

// --- values -----------------------------------------------------------------

/** Helm's merge: maps deep-merge, anything else replaces, null deletes. */
function merge (base, over) {
  for (const [k, v] of Object.entries(over ?? {})) {
    if (v === null) delete base[k]
    else if (isMap(v) && isMap(base[k])) merge(base[k], v)
    else base[k] = v
  }
  return base
}
const isMap = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

function applySet (values, expr) {
  const eq = expr.indexOf('=')
  const keys = expr.slice(0, eq).split(/(?<!\\)\./).map((k) => k.replace(/\\\./g, '.'))
  const raw = expr.slice(eq + 1)
  const val = raw === 'true' ? true : raw === 'false' ? false : raw === 'null' ? null : /^-?\d+$/.test(raw) ? Number(raw) : raw
  let m = values
  for (const k of keys.slice(0, -1)) m = isMap(m[k]) ? m[k] : (m[k] = {})
  m[keys.at(-1)] = val
}

function mergedValues (chartDir, files, sets) {
  const values = parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) ?? {}
  for (const f of files) merge(values, parseYaml(readFileSync(f, 'utf8')) ?? {})
  for (const s of sets) applySet(values, s)
  return values
}

// --- Kubernetes validation ----------------------------------------------------

const MODELS = {
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'v1/Secret': 'kubernetes-models/v1/Secret',
  'v1/Service': 'kubernetes-models/v1/Service',
  'v1/ServiceAccount': 'kubernetes-models/v1/ServiceAccount',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'networking.k8s.io/v1/Ingress': 'kubernetes-models/networking.k8s.io/v1/Ingress',
  'networking.k8s.io/v1/NetworkPolicy': 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
  'autoscaling/v2/HorizontalPodAutoscaler': 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
  'policy/v1/PodDisruptionBudget': 'kubernetes-models/policy/v1/PodDisruptionBudget'
}

async function validateK8s (obj) {
  const key = `${obj.apiVersion}/${obj.kind}`
  if (key === 'monitoring.coreos.com/v1/ServiceMonitor') return validateServiceMonitor(obj)
  if (key === 'monitoring.coreos.com/v1/PrometheusRule') return validatePrometheusRule(obj)
  const mod = MODELS[key]
  if (!mod) return [`no schema for ${key}`]
  const Cls = (await import(mod))[obj.kind]
  try {
    new Cls(obj).validate()
    return []
  } catch (err) {
    return [`${key} ${obj.metadata?.name}: ${err.message}`]
  }
}

// @kubernetes-models/prometheus-operator is not installed: check the fields
// this chart sets against the CRD's documented shape.
function validateServiceMonitor (o) {
  const p = []
  const dur = /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/
  if (!o.metadata?.name) p.push('ServiceMonitor: metadata.name missing')
  if (!isMap(o.spec?.selector) || (!isMap(o.spec.selector.matchLabels) && !Array.isArray(o.spec.selector.matchExpressions))) p.push('ServiceMonitor: spec.selector must have matchLabels or matchExpressions')
  if (!Array.isArray(o.spec?.endpoints) || o.spec.endpoints.length === 0) p.push('ServiceMonitor: spec.endpoints must be a non-empty list')
  for (const e of o.spec?.endpoints ?? []) {
    const known = new Set(['port', 'targetPort', 'path', 'scheme', 'interval', 'scrapeTimeout', 'honorLabels', 'relabelings', 'metricRelabelings', 'tlsConfig', 'bearerTokenSecret', 'authorization'])
    for (const k of Object.keys(e)) if (!known.has(k)) p.push(`ServiceMonitor: unknown endpoint field ${k}`)
    if (typeof e.port !== 'string' || !e.port) p.push('ServiceMonitor: endpoint.port must be a named port')
    if (e.path !== undefined && (typeof e.path !== 'string' || !e.path.startsWith('/'))) p.push('ServiceMonitor: endpoint.path must be an absolute path')
    for (const k of ['interval', 'scrapeTimeout']) if (e[k] !== undefined && !dur.test(String(e[k]))) p.push(`ServiceMonitor: endpoint.${k} "${e[k]}" is not a Prometheus duration`)
  }
  const ns = o.spec?.namespaceSelector
  if (ns !== undefined && !(Array.isArray(ns.matchNames) || typeof ns.any === 'boolean')) p.push('ServiceMonitor: namespaceSelector needs matchNames or any')
  return p
}

// The alerts must name metrics the service really exports (src/observability/),
// with balanced braces and parentheses; PromQL itself is not parsed here.
function validatePrometheusRule (o) {
  const p = []
  const dur = /^[0-9]+(ms|s|m|h|d|w|y)$/
  const exported = new Set()
  const metricsDir = join(ROOT, 'src/observability')
  for (const f of readdirSync(metricsDir)) {
    for (const m of readFileSync(join(metricsDir, f), 'utf8').matchAll(/name: '(stsv_[a-z_]+)'/g)) exported.add(m[1])
  }
  if (!o.metadata?.name) p.push('PrometheusRule: metadata.name missing')
  const groups = o.spec?.groups
  if (!Array.isArray(groups) || groups.length === 0) return [...p, 'PrometheusRule: spec.groups must be a non-empty list']
  for (const g of groups) {
    if (typeof g.name !== 'string' || !g.name) p.push('PrometheusRule: group without a name')
    for (const r of g.rules ?? []) {
      const known = new Set(['alert', 'record', 'expr', 'for', 'labels', 'annotations', 'keep_firing_for'])
      for (const k of Object.keys(r)) if (!known.has(k)) p.push(`PrometheusRule: unknown rule field ${k}`)
      if (typeof r.alert !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(r.alert)) p.push(`PrometheusRule: bad alert name ${r.alert}`)
      if (typeof r.expr !== 'string' || !r.expr) { p.push(`PrometheusRule ${r.alert}: expr missing`); continue }
      if (r.for !== undefined && !dur.test(String(r.for))) p.push(`PrometheusRule ${r.alert}: for "${r.for}" is not a duration`)
      for (const [open, close] of [['(', ')'], ['{', '}'], ['[', ']']]) {
        if (r.expr.split(open).length !== r.expr.split(close).length) p.push(`PrometheusRule ${r.alert}: unbalanced ${open}${close}`)
      }
      for (const m of r.expr.matchAll(/\b(stsv_[a-z_]+)/g)) {
        const base = m[1].replace(/_(bucket|sum|count)$/, '')
        if (!exported.has(m[1]) && !exported.has(base)) p.push(`PrometheusRule ${r.alert}: the service exports no metric ${m[1]}`)
      }
    }
  }
  return p
}

// --- invariants ------------------------------------------------------------

async function invariants (objs, values) {
  const p = []
  const by = (kind) => objs.filter((o) => o.kind === kind)
  const [dep] = by('Deployment')
  if (!dep) return ['no Deployment rendered']
  const pod = dep.spec.template.spec
  const c = pod.containers.find((x) => x.name === 'sts-vending')
  if (!c) return ['no sts-vending container']
  const psc = pod.securityContext ?? {}
  const sc = c.securityContext ?? {}
  if (psc.runAsNonRoot !== true && sc.runAsNonRoot !== true) p.push('runAsNonRoot is not true')
  if (psc.runAsUser === 0 || sc.runAsUser === 0) p.push('runAsUser is 0')
  if (sc.readOnlyRootFilesystem !== true) p.push('readOnlyRootFilesystem is not true')
  if (sc.allowPrivilegeEscalation !== false) p.push('allowPrivilegeEscalation is not false')
  if (!(sc.capabilities?.drop ?? []).includes('ALL')) p.push('capabilities.drop does not include ALL')
  if ((psc.seccompProfile ?? sc.seccompProfile)?.type !== 'RuntimeDefault') p.push('seccompProfile is not RuntimeDefault')
  if (c.livenessProbe?.httpGet?.path !== '/healthz') p.push('livenessProbe is not GET /healthz')
  if (c.readinessProbe?.httpGet?.path !== '/readyz') p.push('readinessProbe is not GET /readyz')
  const tmp = (c.volumeMounts ?? []).find((m) => m.mountPath === '/tmp')
  const tmpVol = tmp && (pod.volumes ?? []).find((v) => v.name === tmp.name)
  if (!tmpVol?.emptyDir) p.push('/tmp is not an emptyDir')

  // terminationGracePeriodSeconds >= preStop sleep + shutdown grace (+1 s margin).
  const pre = c.lifecycle?.preStop
  const preStop = pre?.sleep ? Number(pre.sleep.seconds) : pre?.exec?.command?.[0] === 'sleep' ? Number(pre.exec.command[1]) : 0
  const cfgMap = by('ConfigMap')[0]
  let cfg
  try {
    cfg = parseYaml(cfgMap?.data?.['config.yaml'] ?? '')
    if (!isMap(cfg)) throw new Error('not a mapping')
  } catch (err) {
    p.push(`ConfigMap config.yaml does not parse as a YAML mapping: ${err.message}`)
  }
  const graceMs = cfg?.server?.shutdownGraceMs ?? 25000
  const need = preStop + Math.ceil(graceMs / 1000) + 1
  if (!(pod.terminationGracePeriodSeconds >= need)) {
    p.push(`terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} < preStop ${preStop}s + shutdownGrace ${graceMs / 1000}s + 1s`)
  }
  if (!preStop) p.push('no preStop sleep')

  // The container reads the config the ConfigMap holds, and the service accepts it.
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]))
  const mount = (c.volumeMounts ?? []).find((m) => env.STS_VENDING_CONFIG?.value?.startsWith(m.mountPath + '/'))
  const mountVol = mount && pod.volumes.find((v) => v.name === mount.name)
  if (mountVol?.configMap?.name !== cfgMap?.metadata?.name) p.push('STS_VENDING_CONFIG does not point into the ConfigMap volume')
  if (cfg && serviceCli) {
    // The server's own start-up checks (check-config), without the secrets: a config
    // this passes is one every new pod starts with, given its environment.
    const file = join(mkdtempSync(join(tmpdir(), 'sts-vending-config-')), 'config.yaml')
    writeFileSync(file, cfgMap.data['config.yaml'])
    const r = spawnSync(process.execPath, [serviceCli, 'check-config', '--no-env', '--config', file], { encoding: 'utf8', env: { PATH: process.env.PATH } })
    rmSync(dirname(file), { recursive: true, force: true })
    if (r.status !== 0) p.push(`service rejects the rendered config: ${(r.stderr.trim().split('\n')[0] ?? '').replace(/^sts-vending: /, '')}`)
  }
  if (!dep.spec.template.metadata.annotations?.['checksum/config']) p.push('no checksum/config annotation')

  // Credentials: exactly one of AccessKey or RRSA.
  const hasAK = 'ALIBABA_CLOUD_ACCESS_KEY_ID' in env
  const hasRole = 'ALIBABA_CLOUD_ROLE_ARN' in env
  if (values.rrsa?.enabled) {
    if (hasAK) p.push('RRSA enabled but AccessKey env present')
    if (values.rrsa.mode === 'manual' && !(hasRole && env.ALIBABA_CLOUD_OIDC_TOKEN_FILE)) p.push('RRSA manual without role/token env')
  } else {
    if (!hasAK || !env.ALIBABA_CLOUD_ACCESS_KEY_ID.valueFrom?.secretKeyRef) p.push('AccessKey id not from a Secret')
    if (env.ALIBABA_CLOUD_ACCESS_KEY_SECRET?.value !== undefined) p.push('AccessKey secret given as a plain value')
  }
  // Ports: metrics port declared where config says.
  const mp = cfg?.metrics?.port ?? 0
  const ports = Object.fromEntries((c.ports ?? []).map((x) => [x.name, x.containerPort]))
  if (mp && ports.metrics !== mp) p.push(`config.metrics.port ${mp} has no container port`)
  for (const ing of by('Ingress')) {
    for (const r of ing.spec.rules ?? []) {
      for (const path of r.http?.paths ?? []) {
        if (/^\/(metrics|healthz|readyz)?$/.test(path.path) || path.path.startsWith('/metrics')) p.push(`Ingress routes ${path.path}`)
      }
    }
  }
  for (const sm of by('ServiceMonitor')) {
    const svc = by('Service')[0]
    for (const e of sm.spec.endpoints) {
      if (e.path !== '/metrics') p.push('ServiceMonitor path is not /metrics')
      if (!(svc?.spec.ports ?? []).some((x) => x.name === e.port)) p.push(`ServiceMonitor port ${e.port} is not a Service port`)
    }
  }
  return p
}

let serviceCli // dist/cli.js when built: its check-config runs the server's start-up checks
async function loadServiceConfig () {
  const f = join(ROOT, 'dist/cli.js')
  if (existsSync(f)) serviceCli = f
}

// --- one case ----------------------------------------------------------------

let ajvValidate
function schemaValidator (chartDir) {
  const ajv = new Ajv({ allErrors: true, strict: false })
  addFormats.default ? addFormats.default(ajv) : addFormats(ajv)
  return ajv.compile(JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')))
}

/** Returns a list of problems; empty means the case passes. */
async function checkCase ({ chartDir, files, sets }) {
  const problems = []
  const values = mergedValues(chartDir, files, sets)
  ajvValidate ??= schemaValidator(chartDir)
  if (!ajvValidate(values)) {
    for (const e of ajvValidate.errors) problems.push(`values.schema.json: ${e.instancePath || '/'} ${e.message}${e.params?.allowedValue !== undefined ? ` (${JSON.stringify(e.params.allowedValue)})` : ''}`)
  }
  const r = render(chartDir, files, sets)
  if (!r.ok) return [...problems, `render failed: ${r.stderr.trim()}`]
  const objs = []
  for (const doc of parseAllDocuments(r.stdout)) {
    if (doc.errors.length) { problems.push(`rendered YAML: ${doc.errors[0].message}`); continue }
    const o = doc.toJS()
    if (o) objs.push(o)
  }
  const names = new Set()
  for (const o of objs) {
    const id = `${o.kind}/${o.metadata?.name}`
    if (names.has(id)) problems.push(`duplicate object ${id}`)
    names.add(id)
    problems.push(...await validateK8s(o))
  }
  problems.push(...await invariants(objs, values))
  return problems
}

function parseArgs (argv) {
  const o = { chartDir: CHART, files: [], sets: [], check: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--check') o.check = true
    else if (a === '--chart') o.chartDir = resolve(argv[++i])
    else if (a === '-f') o.files.push(resolve(argv[++i]))
    else if (a === '--set') o.sets.push(argv[++i])
    else throw new Error(`unknown argument ${a}`)
  }
  return o
}

// --- main --------------------------------------------------------------------

const opts = parseArgs(process.argv.slice(2))
if (opts.check) {
  if (!existsSync(RENDERER)) buildRenderer()
  await loadServiceConfig()
  const problems = await checkCase(opts)
  for (const p of problems) console.error(`  ${p}`)
  process.exit(problems.length ? 1 : 0)
}

const t0 = Date.now()
let failed = 0
const pass = (m) => console.log(`PASS ${m}`)
const fail = (m, details = []) => { failed++; console.log(`FAIL ${m}`); for (const d of details) console.log(`  ${d}`) }

console.log('--- build tools/helm-render')
buildRenderer()
await loadServiceConfig()
if (!serviceCli) console.log('note: dist/ not built; rendered configs are only parsed, not checked with the service\'s check-config')
console.log('--- note: ServiceMonitor is validated structurally (@kubernetes-models/prometheus-operator is not installed)')

// Drift between values.schema.json's config and the service's schema.
const drift = spawnSync(process.execPath, [join(ROOT, 'scripts/chart-config-schema.mjs')], { encoding: 'utf8' })
if (drift.status === 0) console.log(drift.stdout.trim())
else fail('values.schema.json config schema drift', [drift.stdout.trim()])

const rnd = (n) => randomBytes(n).toString('base64url')
const cases = [
  { name: 'default values', files: [], sets: [] },
  ...readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('.yaml')).sort().map((f) => ({
    name: `ci/${f}`,
    files: [join(CHART, 'ci', f)],
    // The chart-made Secret case: throwaway values, generated now.
    sets: f.startsWith('ingress') ? [`accessKey.id=ci-${rnd(9)}`, `accessKey.secret=${rnd(21)}`] : []
  }))
]
for (const c of cases) {
  const problems = await checkCase({ chartDir: CHART, ...c })
  if (problems.length) fail(`chart ${c.name}`, problems)
  else pass(`chart ${c.name}`)
}

// Self-tests: the checker (as a CLI) must exit non-zero on broken input.
console.log('--- self-tests: broken inputs must fail the check')
const tmp = mkdtempSync(join(tmpdir(), 'sts-vending-chart-'))
const mutate = (name, file, from, to) => {
  const dir = join(tmp, name)
  cpSync(CHART, dir, { recursive: true })
  const f = join(dir, 'templates', file)
  const text = readFileSync(f, 'utf8')
  if (!text.includes(from)) throw new Error(`self-test ${name}: "${from}" not found in ${file}`)
  writeFileSync(f, text.replace(from, to))
  return dir
}
const broken = [
  ...readdirSync(join(FIXTURES, 'chart-values')).filter((f) => f.endsWith('.yaml')).sort()
    // server-refuses-*: the schema passes them; only the server's own checks refuse them.
    .map((f) => ({ name: `values ${f}`, args: ['-f', join(FIXTURES, 'chart-values', f)], ...(f.startsWith('server-refuses-') ? { why: /^service rejects the rendered config: / } : {}) })),
  { name: 'template with a YAML indentation error', args: ['--chart', mutate('indent', 'service.yaml', '  type: {{', ' type: {{')] },
  { name: 'template with a parse error', args: ['--chart', mutate('parse', 'hpa.yaml', '{{- end }}\n', '')] },
  { name: 'readiness probe on the wrong path', args: ['--chart', mutate('probe', 'deployment.yaml', 'path: /readyz', 'path: /healthz')] },
  { name: 'grace period below preStop + shutdown grace', args: ['--chart', mutate('grace', 'deployment.yaml', '{{ include "sts-vending.terminationGracePeriodSeconds" . }}', '10')] },
  { name: 'Deployment invalid for Kubernetes (replicas as a string)', args: ['--chart', mutate('k8s', 'deployment.yaml', 'replicas: {{ .Values.replicaCount }}', 'replicas: "{{ .Values.replicaCount }}"'), '--set', 'autoscaling.enabled=false'] },
  { name: 'alert on a metric the service does not export', args: ['--chart', mutate('alert', 'prometheusrule.yaml', 'stsv_sts_rejected_total', 'stsv_sts_rejected_typo_total'), '--set', 'prometheusRule.enabled=true'] },
  { name: 'ConfigMap config not YAML', args: ['--chart', mutate('cfg', 'configmap.yaml', '{{- toYaml .Values.config | nindent 4 }}', '{{- toJson .Values.config | nindent 4 }}\n    : [oops')] }
]
for (const b of broken) {
  const r = spawnSync(process.execPath, [SELF, '--check', ...b.args], { encoding: 'utf8', env: { ...process.env, HELM_RENDER: RENDERER } })
  const why = (r.stderr.trim().split('\n')[0] ?? '').slice(0, 200)
  if (b.why !== undefined && !b.why.test(why.trim())) fail(`self-test: ${b.name} was rejected for another reason`, [why])
  else if (r.status !== 0 && r.status !== null) pass(`self-test rejects ${b.name}: ${why.trim()}`)
  else fail(`self-test: ${b.name} was accepted`, [r.stdout, r.stderr])
}
rmSync(tmp, { recursive: true, force: true })

console.log(failed ? `FAIL test:chart (${failed} failed, ${((Date.now() - t0) / 1000).toFixed(1)}s)` : `PASS test:chart (${((Date.now() - t0) / 1000).toFixed(1)}s)`)
process.exit(failed ? 1 : 0)
