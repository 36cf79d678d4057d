// What a failed STS client call rejected with, for tests of the client's error kinds.
import { StsError } from '../../src/alicloud/sts-client.js'

/** The StsError `p` rejects with; anything else (or success) fails the test. */
export async function stsFailure (p: Promise<unknown>): Promise<StsError> {
  try {
    await p
  } catch (err) {
    if (err instanceof StsError) return err
    throw err
  }
  throw new Error('expected the call to fail')
}
