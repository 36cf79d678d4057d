// The retry quota of the AWS SDKs' standard retry mode: a bucket of 500 tokens; a retry
// costs 5 (10 after a timeout, which holds a connection longer); a request that succeeds
// at its first attempt puts 1 back. During an outage the bucket runs dry and requests
// stop retrying, so retries cannot multiply the load on a struggling STS; as successes
// return, so do retries. It counts requests, not time, so it needs no clock.

export interface RetryQuota {
  /** Pays for one retry; false (and nothing paid) when the quota cannot afford it. */
  spend: (afterTimeout: boolean) => boolean
  /** A request succeeded at its first attempt. */
  refund: () => void
  readonly available: number
}

export interface RetryQuotaOptions {
  capacity?: number
  retryCost?: number
  timeoutRetryCost?: number
  successRefund?: number
}

export function createRetryQuota (opts: RetryQuotaOptions = {}): RetryQuota {
  const capacity = opts.capacity ?? 500
  const retryCost = opts.retryCost ?? 5
  const timeoutRetryCost = opts.timeoutRetryCost ?? 10
  const successRefund = opts.successRefund ?? 1
  let available = capacity
  return {
    spend (afterTimeout) {
      const cost = afterTimeout ? timeoutRetryCost : retryCost
      if (available < cost) return false
      available -= cost
      return true
    },
    refund () {
      available = Math.min(capacity, available + successRefund)
    },
    get available () { return available }
  }
}
