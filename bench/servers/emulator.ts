// The STS emulator in a process of its own (its signature checks must not take CPU
// from the server under test or from the load generator). Answers `count`: the number
// of AssumeRole calls it has received.
import type { StsEmulatorOptions } from '../../devkit/emulator/sts.js'
import { serve } from '../lib/child.js'
import { devkitModule } from '../lib/process.js'

serve<StsEmulatorOptions>(async (opts) => {
  const { startStsEmulator } = await devkitModule<typeof import('../../devkit/emulator/sts.js')>('emulator/sts')
  const emulator = await startStsEmulator(opts)
  return {
    info: { url: emulator.url },
    handle: (body) => {
      if (body === 'count') return emulator.callCount
      throw new Error(`unknown call ${String(body)}`)
    },
    close: async () => { await emulator.close() }
  }
})
