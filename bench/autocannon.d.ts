// The part of autocannon's programmatic API the benchmark uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  interface Request {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string
    setupRequest?: (request: Request, context: Record<string, unknown>) => Request
  }

  interface Options {
    url: string
    connections?: number
    pipelining?: number
    duration?: number
    amount?: number
    timeout?: number
    sampleInt?: number
    method?: string
    headers?: Record<string, string>
    body?: string
    requests?: Request[]
  }

  interface Result {
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
    requests: { total: number, sent: number, average: number }
    latency: { p50: number, p99: number }
  }

  interface Instance extends EventEmitter {
    stop (): void
  }

  function autocannon (opts: Options, cb: (err: Error | null, result: Result) => void): Instance
  export default autocannon
  export type { Options, Request, Result, Instance }
}
