// The 200 bodies of POST /uploads/form and /uploads/url, written as JSON directly: a
// signed form carries its policy (base64, about a kilobyte and a half) and the security
// token, which the route's schema serialiser would scan for characters to escape on
// every request (about 5 µs of a form's cost, issue 25). The form's fields arrive as
// JSON from the signer; the rest is a fixed list of fields in the schema's order, each
// value serialised. test/http/uploads/bodies.test.ts holds both byte-equal to the
// serialiser compiled from the response schemas, so the schemas stay the contract.
import type { SignedFormResult, SignedUrlResult } from '../../sign.js'
import { stsTime } from '../../core/index.js'

export function formBody (form: SignedFormResult): string {
  // The bucket URL needs no escaping (sign.ts, SignedCommon): written as it is.
  return `{"url":"${form.url}","fields":${form.fieldsJson},"keyPrefix":${JSON.stringify(form.keyPrefix)},"expiration":"${stsTime(form.expiration)}"}`
}

export function urlBody (url: SignedUrlResult): string {
  const type = url.headers['Content-Type']
  const forbid = url.headers['x-oss-forbid-overwrite']
  let headers = type !== undefined ? `"Content-Type":${JSON.stringify(type)}` : ''
  if (forbid !== undefined) headers += `${headers === '' ? '' : ','}"x-oss-forbid-overwrite":${JSON.stringify(forbid)}`
  // A presigned URL needs no escaping (sign.ts, SignedCommon): written as it is.
  return `{"url":"${url.url}","method":${JSON.stringify(url.method)},"headers":{${headers}},"expiration":"${stsTime(url.expiration)}"}`
}
