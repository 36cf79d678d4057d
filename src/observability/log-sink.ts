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
// Each line is encoded into the batch's buffer as it arrives, while its text is still
// in the cache: a batch kept as one long string (pino's lines are built by joining
// pieces) was measured to cost more than its write, at flush time, when sonic-boom
// measured its byte length and Node encoded it (BENCHMARKS.md, issue 25).
//
// The bytes go through pino's synchronous destination (sonic-boom, in buffer mode): it
// retries EAGAIN, and on EPIPE (stdout's reader is gone) pino turns it into a no-op, so
// the service keeps running and shutting down without its logs rather than hanging on
// them (server.ts, the grace period). A batch's buffer is handed over, never reused.
import { pino, type DestinationStream } from 'pino'

export interface LogSink extends DestinationStream {
  write (line: string): void
  /** Resolves once every line taken so far has been handed to the kernel. */
  written (): Promise<void>
  /** Writes what is pending now (at exit). */
  flushSync (): void
}

interface Writable { write (bytes: Buffer): unknown }

/** A batch's first buffer; a larger batch grows it (and the next batch starts at that size). */
const FIRST_BATCH_BYTES = 16 * 1024
/** One write(2) per batch: sonic-boom would cut a batch into 16 KiB writes otherwise. */
const MAX_WRITE_BYTES = 16 * 1024 * 1024

function destination (): Writable {
  // In buffer mode sonic-boom's write takes bytes (its type says string, for utf8 mode).
  return pino.destination({ dest: 1, sync: true, contentMode: 'buffer', maxWrite: MAX_WRITE_BYTES }) as unknown as Writable
}

/** `schedule` runs the batch's write later in this turn (setImmediate; a test holds it). */
export function batchedSink (inner: Writable = destination(), schedule: (flush: () => void) => void = setImmediate): LogSink {
  let size = FIRST_BATCH_BYTES
  let batch: Buffer | undefined
  let used = 0
  let scheduled = false
  let waiting: { promise: Promise<void>, resolve: () => void } | undefined

  const flushSync = (): void => {
    scheduled = false
    const out = batch?.subarray(0, used)
    // The next batch starts the size this one needed.
    size = FIRST_BATCH_BYTES
    while (size < used) size *= 2
    batch = undefined
    used = 0
    const w = waiting
    waiting = undefined
    // Whatever the write does (pino's destination reports its errors as events), no
    // answer may wait for a batch that is gone.
    try {
      if (out !== undefined && out.length > 0) inner.write(out)
    } finally {
      w?.resolve()
    }
  }

  return {
    write (line) {
      // At most three bytes per UTF-16 unit: the line always fits once this much is free.
      const needed = used + line.length * 3
      if (batch === undefined || needed > batch.length) {
        while (size < needed) size *= 2
        const bigger = Buffer.allocUnsafe(size)
        if (batch !== undefined) batch.copy(bigger, 0, 0, used)
        batch = bigger
      }
      used += batch.write(line, used)
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
