// GET /metrics (Prometheus text) and the per-request HTTP metrics. With
// `metrics.port` set, the endpoint moves to its own listener so that the ingress,
// which only routes the main port, can never expose it.
import { createServer, type Server } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/schema.js'
import type { Metrics } from './metrics.js'

export interface MetricsPluginOptions { settings: Config['metrics'], metrics: Metrics }

async function metricsPlugin (app: FastifyInstance, opts: MetricsPluginOptions): Promise<void> {
  const { metrics, settings } = opts
  // The request counter's series are counted in place (metrics.ts, `tallied`); the
  // histogram's labelled child is looked up once per (route, method, status). Bounded
  // like the labels: route templates, the methods Node's parser accepts, statuses.
  // Keyed by route, then method and status, so that a request builds no key string.
  type Series = { requests: { inc: () => void }, duration: { observe: (v: number) => void } }
  const series = new Map<string, Map<string, Map<number, Series>>>()
  // A callback hook, not an async one: no promise per request for synchronous work.
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched'
    const method = request.method
    const status = reply.statusCode
    let byMethod = series.get(route)
    if (byMethod === undefined) series.set(route, byMethod = new Map())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map())
    let s = byStatus.get(status)
    if (s === undefined) {
      const labels = { route, method, status: String(status) }
      s = { requests: metrics.httpRequests.series(labels), duration: metrics.httpDuration.labels(labels) }
      byStatus.set(status, s)
    }
    s.requests.inc()
    s.duration.observe(reply.elapsedTime / 1000)
    done()
  })
  if (!settings.enabled) return

  if (settings.port === 0) {
    app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
      void reply.type(metrics.registry.contentType).header('cache-control', 'no-store')
      return await metrics.registry.metrics()
    })
    return
  }
  let server: Server | undefined
  app.addHook('onListen', async () => {
    server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url !== '/metrics') {
        res.writeHead(404, { 'x-content-type-options': 'nosniff' }).end()
        return
      }
      metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).end(text)
      }, () => res.writeHead(500, { 'x-content-type-options': 'nosniff' }).end())
    })
    await new Promise<void>((resolve, reject) => {
      server?.once('error', reject)
      server?.listen(settings.port, settings.host ?? listenAddress(app), () => resolve())
    })
  })
  app.addHook('onClose', async () => {
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server?.close(() => resolve()))
  })
}

/** Where the main server listens (`HOST`): a metrics port must not be reachable from where the service is not. */
function listenAddress (app: FastifyInstance): string {
  const address = app.server.address()
  return typeof address === 'object' && address !== null ? address.address : '127.0.0.1'
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x' })
