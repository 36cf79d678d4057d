// The domain vocabulary at the bottom of every layer: actions, the names and
// directories that may reach a session policy, and what STS dictates. It imports
// nothing of ours, so every other folder may import it.
export { ACTIONS, isAction, type Action } from './actions.js'
export {
  BUCKET_PATTERN, isBucketName, isSafePrefix, isSafeSegment, NAME_MAX_LENGTH, NAME_PATTERN, PREFIX_MAX_LENGTH, SAFE_SEGMENT
} from './names.js'
export { MAX_DURATION_SECONDS, MIN_DURATION_SECONDS, MIN_USABLE_SECONDS, POLICY_MAX_BYTES, stsTime } from './sts.js'
export { randomHex } from './random.js'
export { HMAC_SECRET_MIN_BYTES } from './tokens.js'
export { takeToken, type BucketState } from './token-bucket.js'
