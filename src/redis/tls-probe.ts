// Why TLS to Sentinels or cluster nodes fails, when ioredis cannot say. It asks a
// Sentinel for the master, and a cluster node for the slot map, over short-lived inner
// connections whose `error` events it drops: a certificate that does not chain to the
// CA then surfaces as "All sentinels are unreachable ... Connection is closed." or a
// ClusterAllFailedError whose last node error is "Connection is closed.". One TLS
// handshake of our own to each of those nodes, with the options ioredis was given,
// finds the real reason. It runs only on that error path, and only when the failure
// is about to be logged (at most once a minute while it lasts).
import { connect, type ConnectionOptions } from 'node:tls'
import type { RedisNode } from './settings.js'

/**
 * The handshake error of each of `nodes` that fails one (tried at once); none when
 * every handshake succeeds or stalls past `withinMs`: then TLS is not what is wrong.
 */
export async function tlsHandshakeErrors (nodes: RedisNode[], options: ConnectionOptions, withinMs: number): Promise<Error[]> {
  const errors = await Promise.all(nodes.map(async (node) => await handshake(node, options, withinMs)))
  return errors.filter((err) => err !== undefined)
}

async function handshake (node: RedisNode, options: ConnectionOptions, withinMs: number): Promise<Error | undefined> {
  return await new Promise((resolve) => {
    const socket = connect({ ...options, host: node.host, port: node.port })
    const done = (err?: Error): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(err)
    }
    const timer = setTimeout(() => done(), withinMs)
    socket.once('secureConnect', () => done())
    // Every error is handled: a second one after destroy() must not go unheard.
    socket.on('error', done)
  })
}
