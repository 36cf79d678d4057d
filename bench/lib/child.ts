// The child side of ./process.ts: wait for `init` over IPC, start, report `ready`,
// answer calls, and exit on `close` or when the parent goes away.
export interface Served {
  /** Sent to the parent with the `ready` message (e.g. the port). */
  info: Record<string, unknown>
  handle?: (body: unknown) => Promise<unknown> | unknown
  close?: () => Promise<void>
}

interface Message { type: string, id?: number, init?: unknown, body?: unknown }

export function serve<Init> (start: (init: Init) => Promise<Served>): void {
  if (process.send === undefined) throw new Error('a bench child must be started by bench/lib/process.ts')
  const send = (m: object): void => { process.send?.(m) }
  let served: Served | undefined

  const shutdown = async (): Promise<void> => {
    try {
      await served?.close?.()
    } finally {
      process.exit(0)
    }
  }
  process.on('disconnect', () => { void shutdown() })
  process.on('message', (m: Message) => {
    if (m.type === 'init') {
      start(m.init as Init).then((s) => {
        served = s
        send({ type: 'ready', ...s.info })
      }, (err: unknown) => {
        send({ type: 'failed', error: err instanceof Error ? err.stack ?? err.message : String(err) })
        process.exitCode = 1
        process.disconnect()
      })
    } else if (m.type === 'call') {
      Promise.resolve()
        .then(() => served?.handle?.(m.body))
        .then((result) => send({ type: 'answer', id: m.id, result }), (err: unknown) => send({ type: 'answer', id: m.id, error: String(err) }))
    } else if (m.type === 'close') {
      void shutdown()
    }
  })
}
