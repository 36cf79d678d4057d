// Where the service's log lines go: stdout, one write(2) per turn of the event loop
// instead of one per line. A cache hit writes an audit line (and at the default level a
// request line); on this kind of machine the system call is the costliest part of a
// line, and under load one turn handles many requests, so their lines share one write.
//
// Nothing is held longer than the current turn: the batch is written in the same turn's
// check phase (setImmediate), and at exit. And an answer that hands out credentials is
// sent only once its audit line has been written (`written()`, awaited by the routes
// through the audit trail): a crash can lose the record of nothing it sent.
//
// The lines go through pino's synchronous destination (sonic-boom): it retries EAGAIN,
// and on EPIPE (stdout's reader is gone) pino turns it into a no-op, so the service
// keeps running and shutting down without its logs rather than hanging on them
// (server.ts, the grace period).
import { pino, type DestinationStream } from 'pino'

export interface LogSink extends DestinationStream {
  write (line: string): void
  /** Resolves once every line taken so far has been handed to the kernel. */
  written (): Promise<void>
  /** Writes what is pending now (at exit). */
  flushSync (): void
}

interface Writable { write (text: string): unknown }

/** `schedule` runs the batch's write later in this turn (setImmediate; a test holds it). */
export function batchedSink (inner: Writable = pino.destination({ dest: 1, sync: true }), schedule: (flush: () => void) => void = setImmediate): LogSink {
  let pending = ''
  let scheduled = false
  let waiting: { promise: Promise<void>, resolve: () => void } | undefined

  const flushSync = (): void => {
    scheduled = false
    const out = pending
    pending = ''
    const w = waiting
    waiting = undefined
    // Whatever the write does (pino's destination reports its errors as events), no
    // answer may wait for a batch that is gone.
    try {
      if (out !== '') inner.write(out)
    } finally {
      w?.resolve()
    }
  }

  return {
    write (line) {
      pending += line
      if (!scheduled) {
        scheduled = true
        schedule(flushSync)
      }
    },
    written () {
      if (!scheduled) return Promise.resolve()
      if (waiting === undefined) {
        let resolve = (): void => {}
        const promise = new Promise<void>((_resolve) => { resolve = _resolve })
        waiting = { promise, resolve }
      }
      return waiting.promise
    },
    flushSync
  }
}

const exitFlushed = new Set<LogSink>()

/** stdout, batched per turn, and written out at exit (close-with-grace exits through process.exit). */
export function stdoutSink (): LogSink {
  const sink = batchedSink()
  if (exitFlushed.size === 0) process.once('exit', () => { for (const s of exitFlushed) s.flushSync() })
  exitFlushed.add(sink)
  return sink
}

/** The sink behind a logger, when it is one of these: its `written` (else nothing to wait for). */
export function sinkOf (logger: object): LogSink | undefined {
  const stream = (logger as Record<symbol, unknown>)[pino.symbols.streamSym] as Partial<LogSink> | undefined
  return typeof stream?.written === 'function' && typeof stream.flushSync === 'function' ? stream as LogSink : undefined
}
