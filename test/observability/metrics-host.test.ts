// Issue 16 item 11: the separate metrics listener binds where the service does
// (`HOST`), or to `metrics.host`, never to every interface behind the operator's back.
// 127.0.0.1 and 127.0.0.2 are both loopback, but a socket bound to one does not
// answer on the other, while one bound to 0.0.0.0 answers on both.
import tap from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { build } from '../helpers/build.js'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function reachable (t: Pick<typeof tap, 'equal'>, host: string, port: number): Promise<number | string> {
  try {
    const res = await fetch(`http://${host}:${port}/metrics`)
    t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${host}: nosniff`)
    await res.text()
    return res.status
  } catch (err) {
    return String((err as { cause?: { code?: string } }).cause?.code ?? err)
  }
}

tap.test('metrics.port listens on the server\'s address by default, on metrics.host when set', async (t) => {
  const rows: Array<{ desc: string, host?: string, listen: string, answers: string, refuses: string }> = [
    { desc: 'default: where the server listens', listen: '127.0.0.1', answers: '127.0.0.1', refuses: '127.0.0.2' },
    { desc: 'metrics.host set', host: '127.0.0.2', listen: '127.0.0.1', answers: '127.0.0.2', refuses: '127.0.0.1' }
  ]
  for (const row of rows) {
    const port = await freePort()
    const h = await build(t, { config: (c) => ({ ...c, metrics: { port, ...(row.host !== undefined ? { host: row.host } : {}) } }) })
    await h.app.listen({ port: 0, host: row.listen })
    t.equal(await reachable(t, row.answers, port), 200, `${row.desc}: answers on ${row.answers}`)
    t.equal(await reachable(t, row.refuses, port), 'ECONNREFUSED', `${row.desc}: nothing on ${row.refuses}`)
    await h.app.close()
  }
})
