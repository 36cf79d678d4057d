// readSdkError: the one reader of what the official SDKs throw. Shapes below are those
// openapi-core and httpx produce (the STS client's tests drive the real SDK against the
// emulator; these pin the mapping, and that nothing signed or secret is copied).
import t from 'tap'
import { readSdkError, trimUpstreamMessage, type SdkFailure } from '../../src/alicloud/sdk-errors.js'
import { CredentialLookupFailed } from '../../src/alicloud/sdk-base.js'
import { classifySdkError } from '../../src/alicloud/sts-client.js'
import { toRamApiError } from '../../src/alicloud/ram-client.js'

const SIGNED = 'ACS3-HMAC-SHA256 Credential=LTAIexample,SignedHeaders=host,Signature=' + 'ab'.repeat(32)

function sdkResponseError (fields: Record<string, unknown>): Error {
  // openapi-core's ResponseError: the request it sent rides along in `data`.
  return Object.assign(new Error(String(fields.message ?? '')), { data: { headers: { authorization: SIGNED } }, ...fields })
}

const cases: Array<[string, unknown, SdkFailure]> = [
  ['credential chain failed', new CredentialLookupFailed('x'), { kind: 'credential' }],
  ['an answer with code, status, request id', sdkResponseError({ code: 'NoPermission', statusCode: 403, requestId: 'R-1', message: 'NoPermission: code: 403, You are not authorized request id: R-1' }),
    { kind: 'answer', code: 'NoPermission', status: 403, requestId: 'R-1', message: 'You are not authorized' }],
  ['an answer without a code', sdkResponseError({ statusCode: 502, code: 'undefined' }), { kind: 'answer', code: 'Unknown', status: 502 }],
  ['a throttling hint', sdkResponseError({ code: 'Throttling.User', statusCode: 400, retryAfter: 3000 }), { kind: 'answer', code: 'Throttling.User', status: 400, retryAfterMs: 3000 }],
  ['a hint that is not a number is dropped', sdkResponseError({ code: 'Throttling', statusCode: 400, retryAfter: '3000' }), { kind: 'answer', code: 'Throttling', status: 400 }],
  ['a negative hint is dropped', sdkResponseError({ code: 'Throttling', statusCode: 400, retryAfter: -1 }), { kind: 'answer', code: 'Throttling', status: 400 }],
  ['the SDK timer', Object.assign(new Error('timeout'), { name: 'RequestTimeoutError' }), { kind: 'timeout' }],
  ['a socket error', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), { kind: 'network', code: 'ECONNREFUSED' }],
  ['a TLS error', Object.assign(new Error('x'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }), { kind: 'network', code: 'ERR_SSL_WRONG_VERSION_NUMBER' }],
  ['a code that is text, not an errno', Object.assign(new Error('x'), { code: 'E secret=1' }), { kind: 'unknown' }],
  ['a body that is not JSON', new SyntaxError('Unexpected token <'), { kind: 'not-json' }],
  ['a string', 'boom', { kind: 'unknown' }],
  ['null', null, { kind: 'unknown' }]
]

t.test('maps every shape to a closed set of safe fields', async (t) => {
  for (const [desc, err, want] of cases) {
    const got = readSdkError(err)
    t.same(got, want, desc)
    t.notMatch(JSON.stringify(got), /Signature=|ACS3-HMAC|LTAIexample/, `${desc}: nothing signed`)
  }
})

t.test('the STS and RAM clients read SDK errors through it', async (t) => {
  const err = sdkResponseError({ code: 'ServiceUnavailable', statusCode: 503, requestId: 'R-2', message: `ServiceUnavailable: code: 503, down ${SIGNED} request id: R-2` })
  const sts = classifySdkError(err)
  t.match(sts, { kind: 'unavailable', code: 'ServiceUnavailable', status: 503, requestId: 'R-2' })
  const ram = toRamApiError('GetRole', err)
  t.match(ram, { code: 'ServiceUnavailable', status: 503, requestId: 'R-2' })
  for (const e of [sts, ram]) {
    t.notMatch(`${e.message} ${JSON.stringify(e)}`, /Signature=[0-9a-f]|LTAIexample/, `${e.name}: redacted`)
    t.notOk('data' in e || 'cause' in e, `${e.name}: no SDK error attached`)
  }
  t.match(classifySdkError(sdkResponseError({ code: 'Throttling.Api', statusCode: 400, retryAfter: 2000 })), { kind: 'throttled', retryAfterMs: 2000 })
  t.match(classifySdkError(sdkResponseError({ code: 'X', statusCode: 429 })), { kind: 'throttled' })
  t.match(classifySdkError(Object.assign(new Error('x'), { code: 'ETIMEDOUT' })), { kind: 'unavailable', code: 'ETIMEDOUT', timedOut: true })
  t.match(toRamApiError('GetRole', new SyntaxError('x')), { code: 'InvalidJSON' })
  t.match(toRamApiError('GetRole', new CredentialLookupFailed('x')), { code: 'CredentialUnavailable' })
})

t.test('trimUpstreamMessage: one short, redacted line', async (t) => {
  t.equal(trimUpstreamMessage(undefined), undefined)
  t.equal(trimUpstreamMessage('undefined'), undefined)
  t.equal(trimUpstreamMessage('Code: code: 400, bad\nthing request id: X'), 'bad thing')
  t.equal(trimUpstreamMessage(`no ${SIGNED}`), 'no [redacted]')
  t.equal(trimUpstreamMessage('AccessKeySecret=abc rest'), '[redacted] rest')
  t.equal(trimUpstreamMessage('x'.repeat(500))?.length, 160)
})
