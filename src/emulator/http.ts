// Small helpers the loopback emulators share.
import type { IncomingMessage } from 'node:http'

/** The whole request body, or undefined once it passes maxBytes. */
export async function readBody (req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const buf = chunk as Buffer
    size += buf.length
    if (size > maxBytes) return undefined
    chunks.push(buf)
  }
  return Buffer.concat(chunks)
}
