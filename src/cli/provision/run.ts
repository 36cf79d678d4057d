// What provision and provision-rrsa do alike against RAM: check the endpoint, open a
// client (the RAM SDK is an optional package), plan, apply, and report in one voice.
import type { RamOperations } from '../../alicloud/ram-types.js'
import { RamApiError } from '../../alicloud/ram-types.js'
import { Failure, UsageError, loadOptional, type CliIo } from '../args.js'
import { ProvisionError, applyPlan, explainError, type Changes } from './plan.js'

/** A usage error (exit 2) for an --endpoint the SDK could not use. */
export async function checkRamEndpoint (endpoint: string): Promise<void> {
  const { parseEndpoint } = await import('../../alicloud/sdk-base.js')
  try {
    parseEndpoint(endpoint, 'the RAM endpoint')
  } catch (err) {
    throw new UsageError(`--endpoint: ${(err as Error).message}`)
  }
}

export interface RamRun<P extends Changes & { warnings: string[] }> {
  /** The first line, saying what is being provisioned. */
  heading: string
  plan: (ram: RamOperations) => Promise<P>
  /** Lines of the plan worth reading before it is applied (`  ! …`). */
  notes?: (plan: P) => string[]
  handover: (plan: P) => void
}

/** Plan against the account and apply what differs; a refusal or a RAM error is one line (Failure). */
export async function runOnRam<P extends Changes & { warnings: string[] }> (io: CliIo, endpoint: string, run: RamRun<P>): Promise<number> {
  const { createRamClient } = await loadOptional('@alicloud/ram20150501', async () => await import('../../alicloud/ram-client.js'))
  const credential = io.credential ?? (await import('../../alicloud/credentials.js')).createUpstreamCredential()
  const ram = createRamClient({ endpoint, credential })
  const out = io.stdout
  try {
    out.write(`${run.heading}\n`)
    const plan = await run.plan(ram)
    for (const line of plan.unchanged) out.write(`  = ${line}\n`)
    for (const note of run.notes?.(plan) ?? []) out.write(`  ! ${note}\n`)
    for (const warning of plan.warnings) io.stderr.write(`WARNING: ${warning}\n`)
    if (plan.changes.length === 0) {
      out.write('Nothing changed: RAM already matches this request.\n')
    } else {
      await applyPlan(plan, ram, (line) => out.write(`  + ${line}\n`))
      out.write(`Applied ${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'}.\n`)
    }
    run.handover(plan)
    return 0
  } catch (err) {
    if (err instanceof RamApiError || err instanceof ProvisionError) throw new Failure(explainError(err))
    throw err
  }
}
