// Rows 3-5, the service itself: buildApp() with the bench's config, signing AssumeRole
// with a static AccessKey against the emulator, logging as server.ts does (pino JSON,
// written synchronously to stdout, which the parent sends to /dev/null) at the level
// it is given.
import { serviceModule } from '../lib/process.js'
import type { Running } from './host.js'

export interface ServiceInit {
  config: Record<string, unknown>
  accessKeyId: string
  accessKeySecret: string
  logLevel: string
}

export async function start (init: ServiceInit): Promise<Running> {
  const [{ buildApp }, { prepare }, { parseConfig }, { createLogger }, { createStsClient }, { createStaticCredential }] = await Promise.all([
    serviceModule<typeof import('../../src/app.js')>('app'),
    serviceModule<typeof import('../../src/prepare.js')>('prepare'),
    serviceModule<typeof import('../../src/config/load.js')>('config/load'),
    serviceModule<typeof import('../../src/observability/logger.js')>('observability/logger'),
    serviceModule<typeof import('../../src/alicloud/sts-client.js')>('alicloud/sts-client'),
    serviceModule<typeof import('../../src/alicloud/credentials.js')>('alicloud/credentials')
  ])
  const config = parseConfig(init.config)
  const app = await buildApp(prepare(config, {}), {
    logger: createLogger(init.logLevel),
    stsClient: createStsClient({ endpoint: config.sts.endpoint, timeoutMs: config.sts.timeoutMs, credential: createStaticCredential(init.accessKeyId, init.accessKeySecret) })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  return { port: typeof address === 'object' && address !== null ? address.port : 0, close: async () => { await app.close() } }
}
