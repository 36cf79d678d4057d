// A real redis-server for tests: on a free loopback port, in a temp dir, with no
// persistence (--save '' --appendonly no), stopped in teardown. kill() and restart()
// rehearse a Redis that dies and comes back empty on the same address.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { SharedStateSettings } from '../../src/redis/settings.js'

type Tap = { teardown: (fn: () => unknown) => void }

export interface TestRedis {
  url: string
  port: number
  /** A plain client (no key prefix) for inspecting and vandalising what the service stored. */
  admin: Redis
  /** SIGKILL: every connection drops at once, as when a pod or node dies. */
  kill (): Promise<void>
  /** Start again on the same port, empty. */
  restart (): Promise<void>
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      s.close(() => { resolve(typeof addr === 'object' && addr !== null ? addr.port : 0) })
    })
  })
}

/** Base64 32-byte keys for cache.encryptionKeysEnv. */
export function cacheKey (): string {
  return randomBytes(32).toString('base64')
}

export async function startRedis (t: Tap): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-redis-'))
  const port = await freePort()
  let child: ChildProcess | undefined

  async function start (): Promise<void> {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    let out = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000)
      c.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('Ready to accept connections')) { clearTimeout(timer); resolve() }
      })
      c.on('error', (err) => { clearTimeout(timer); reject(err) })
      c.on('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited ${code}: ${out}`)) })
    })
    c.stdout?.resume()
    c.removeAllListeners('exit')
  }

  async function kill (): Promise<void> {
    const c = child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve())
      c.kill('SIGKILL')
    })
    child = undefined
  }

  await start()
  const admin = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 50 })
  admin.on('error', () => {})
  t.teardown(async () => {
    admin.disconnect()
    await kill()
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    admin,
    kill,
    async restart () {
      await kill()
      await start()
    }
  }
}

/** Connection settings for src/redis/connection.ts's createRedis, standalone at `url`. */
export function standalone (url: string, over: Partial<SharedStateSettings> = {}): Pick<SharedStateSettings, 'target' | 'username' | 'password' | 'tls' | 'keyPrefix' | 'commandTimeoutMs'> {
  return { target: { mode: 'standalone', url }, username: undefined, password: undefined, tls: false, keyPrefix: 'stsv:', commandTimeoutMs: 200, ...over }
}
