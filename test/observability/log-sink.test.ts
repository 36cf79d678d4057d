// The batched stdout sink: lines of one event-loop turn leave in one write, nothing is
// held past the turn or the exit, and credentials leave only after their audit line.
import t from 'tap'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { batchedSink, sinkOf } from '../../src/observability/log-sink.js'
import { createLogger } from '../../src/observability/logger.js'
import { build } from '../helpers/build.js'

t.test('one write per turn, in order; written() resolves once the lines are out', async (t) => {
  const writes: string[] = []
  const sink = batchedSink({ write: (s) => writes.push(s.toString()) })
  await sink.written() // nothing pending: resolves at once
  sink.write('a\n')
  sink.write('b\n')
  const done = sink.written()
  t.same(writes, [], 'nothing written within the turn')
  await done
  t.same(writes, ['a\nb\n'], 'one write for the turn, lines in order')
  sink.write('c\n')
  sink.flushSync()
  t.same(writes, ['a\nb\n', 'c\n'], 'flushSync writes what is pending at once')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(writes, ['a\nb\n', 'c\n'], 'and the scheduled flush finds nothing left')
})

t.test('lines are written as UTF-8, in order, whatever their size and however many', async (t) => {
  const writes: Buffer[] = []
  // The written buffers themselves, not copies: a sink that reused one would show below.
  const sink = batchedSink({ write: (b) => writes.push(b) })
  const lines = ['é, ü and 中文\n', '😀 a surrogate pair\n', `${'x'.repeat(40_000)}\n`, ...Array.from({ length: 2000 }, (_, i) => `{"n":${i},"s":"ß"}\n`)]
  for (const line of lines) sink.write(line)
  await sink.written()
  t.equal(writes.length, 1, 'one write for the turn, past the first buffer\'s size')
  t.equal(writes[0]?.toString('utf8'), lines.join(''), 'every byte, in order')
  t.equal(writes[0]?.length, Buffer.byteLength(lines.join('')), 'and nothing after the last line')
  sink.write('next\n')
  await sink.written()
  t.equal(writes[1]?.toString('utf8'), 'next\n', 'the next turn starts a batch of its own')
  t.equal(writes[0]?.toString('utf8'), lines.join(''), 'and leaves the written one alone')
})

t.test('the logger behind the app is found, and only a sink is', async (t) => {
  const sink = batchedSink({ write: () => {} })
  t.equal(sinkOf(createLogger('info', sink)), sink)
  t.equal(sinkOf(createLogger('info', sink).child({ log: 'audit' })), sink, 'children share it')
  t.equal(sinkOf(createLogger('info', { write: () => {} })), undefined)
})

const ANSWERS = [
  { what: 'credentials', url: '/credentials', body: {}, event: 'credentials.issued' },
  { what: 'a signed upload form', url: '/uploads/form', body: {}, event: 'upload.signed' }
]
for (const a of ANSWERS) {
  t.test(`${a.what}: sent only after the audit line is written`, async (t) => {
    const writes: string[] = []
    let flush: (() => void) | undefined
    // The batch waits until the test lets it go, as a slow turn would.
    const sink = batchedSink({ write: (s) => writes.push(s.toString()) }, (f) => { flush = f })
    const h = await build(t, {
      deps: { logger: createLogger('warn', sink) },
      config: (c) => ({ ...c, grants: (c.grants as Array<Record<string, unknown>>).map((g) => ({ ...g, signing: { maxBytes: 64, expiresSeconds: 600 } })) })
    })
    let answered = false
    const pending = h.app.inject({ method: 'POST', url: a.url, headers: { authorization: `Bearer ${h.token({ sub: 'dora' })}`, 'content-type': 'application/json' }, payload: JSON.stringify(a.body) })
      .then((r) => { answered = true; return r })
    // The first AssumeRole (and the STS SDK's first load) may take a while on a busy machine.
    const waiting = (): boolean => flush === undefined && !answered
    for (let i = 0; i < 300 && waiting(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    t.ok(flush, 'the audit line is waiting in the batch')
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.notOk(answered, 'no answer while the audit line is unwritten')
    t.same(writes, [])
    flush?.()
    const res = await pending
    t.equal(res.statusCode, 200)
    const lines = writes.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    t.match(lines.find((l) => l.log === 'audit'), { event: a.event, subject: 'dora' })
    const body = res.json() as Record<string, any>
    for (const secret of [body.accessKeySecret, body.securityToken, body.fields?.['x-oss-signature'], body.fields?.['x-oss-security-token']]) {
      if (typeof secret === 'string') t.notOk(writes.join('').includes(secret), 'no secret in the line')
    }
  })
}

t.test('lines still pending at exit are written before the process ends', async (t) => {
  const sinkModule = fileURLToPath(new URL('../../src/observability/log-sink.ts', import.meta.url))
  // A process that logs and exits in the same turn: no setImmediate ever runs.
  const script = `import { stdoutSink } from ${JSON.stringify(sinkModule)}; const s = stdoutSink(); s.write('first\\n'); s.write('x'.repeat(100000) + '\\n'); s.write('last\\n'); process.exit(0)`
  const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const [code] = await once(child, 'exit') as [number]
  t.equal(code, 0)
  t.equal(out, `first\n${'x'.repeat(100_000)}\nlast\n`, 'in order, a line larger than a pipe\'s buffer included')
})
