// The demo page's logic: a dev token for a typed user, credentials from POST /credentials
// (refreshed by ali-oss through refreshSTSToken), uploads straight to OSS. The token and
// the credentials live in this closure only: never in storage, never in the URL.
/* global OSS */
(function () {
  'use strict'
  const $ = (id) => document.getElementById(id)
  let token = null
  let grant = null
  let client = null

  function status (text, kind) {
    const el = $('status')
    el.textContent = text
    el.className = kind || ''
  }

  async function postJson (url, body, bearer) {
    const headers = { 'content-type': 'application/json' }
    if (bearer) headers.authorization = 'Bearer ' + bearer
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) })
    const json = await res.json().catch(() => ({}))
    if (!res.ok) throw new Error((json.code || res.status) + ': ' + (json.message || 'request failed'))
    return json
  }

  const credentials = () => postJson('/credentials', {}, token)

  // ali-oss copies whatever this returns into its options: the three credential fields,
  // and the next refresh interval, which follows each answer (as the README shows).
  async function refreshSTSToken () {
    const c = await credentials()
    return { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, stsToken: c.securityToken, refreshSTSTokenInterval: c.refreshAfterSeconds * 1000 }
  }

  function ossError (err) {
    return (err && err.code ? err.code + ': ' : '') + (err && err.message ? err.message : String(err))
  }

  async function refreshListing () {
    // No delimiter: a form's key is <directory><id>/<file name>, one level down.
    const result = await client.list({ prefix: grant.prefix, 'max-keys': 100 })
    const ul = $('listing')
    ul.replaceChildren()
    for (const o of result.objects || []) {
      const li = document.createElement('li')
      li.textContent = o.name + ' (' + o.size + ' bytes)'
      ul.append(li)
    }
    if (ul.children.length === 0) {
      const li = document.createElement('li')
      li.textContent = '(empty)'
      ul.append(li)
    }
  }

  async function upload (key) {
    const file = $('file').files[0]
    if (!file) {
      status('Pick a file first.', 'denied')
      return
    }
    status('Uploading ' + key + ' …')
    try {
      await client.put(key, file)
      status('Uploaded ' + key, 'ok')
      await refreshListing()
    } catch (err) {
      status('Denied: upload to ' + key + ' failed with ' + ossError(err), 'denied')
    }
  }

  // A signed PostObject form: the fields as returned, then the file, last. The service
  // picks the key (the directory, a random id, the file's name) and OSS enforces the
  // policy (that key, written once, size, expiry).
  async function formUpload () {
    const file = $('file').files[0]
    if (!file) {
      status('Pick a file first.', 'denied')
      return
    }
    status('Signing a form …')
    try {
      const { url, fields } = await postJson('/uploads/form', { fileName: file.name }, token)
      const form = new FormData()
      for (const [name, value] of Object.entries(fields)) form.append(name, value)
      form.append('file', file)
      const res = await fetch(url, { method: 'POST', body: form })
      const text = await res.text()
      // With a callback, OSS answers 200 with what the app server said (through the service).
      if (res.status !== 201 && res.status !== 200) {
        const code = /<Code>([^<]+)<\/Code>/.exec(text)
        status('Denied: the form upload failed with ' + (code ? code[1] : res.status), 'denied')
        return
      }
      let answer = ''
      if (res.status === 200) {
        try {
          const app = JSON.parse(text)
          answer = '; the app answered: ' + (typeof app.message === 'string' ? app.message : JSON.stringify(app))
        } catch {
          answer = '; the app\'s answer was not JSON'
        }
      }
      status('Uploaded ' + fields.key + ' with a signed form' + answer, 'ok')
      await refreshListing()
    } catch (err) {
      status('Form upload failed: ' + ossError(err), 'denied')
    }
  }

  $('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    const user = $('user').value.trim()
    status('Signing in …')
    try {
      token = (await postJson('/dev/token', { user })).token
      grant = await credentials()
      client = new OSS({
        accessKeyId: grant.accessKeyId,
        accessKeySecret: grant.accessKeySecret,
        stsToken: grant.securityToken,
        refreshSTSToken,
        refreshSTSTokenInterval: grant.refreshAfterSeconds * 1000,
        bucket: grant.bucket,
        region: 'oss-' + grant.region,
        endpoint: grant.endpoint
      })
      $('who-name').textContent = user
      $('prefix').textContent = grant.prefix
      $('bucket').textContent = grant.bucket
      $('expires').textContent = grant.expiration
      $('who').hidden = false
      $('upload-box').disabled = false
      $('list-box').disabled = false
      status('Signed in. Actions granted: ' + grant.actions.join(', '), 'ok')
      await refreshListing()
    } catch (err) {
      status('Sign-in failed: ' + ossError(err), 'denied')
    }
  })

  $('upload').addEventListener('click', () => upload(grant.prefix + $('file').files[0]?.name))

  // Someone else's directory: the parent of ours, then another user's name.
  $('outside').addEventListener('click', () => {
    const parent = grant.prefix.replace(/[^/]+\/$/, '')
    const name = $('file').files[0]?.name
    upload(parent + 'someone-else/' + name)
  })

  $('form-upload').addEventListener('click', () => { formUpload() })

  $('refresh').addEventListener('click', () => {
    refreshListing().catch((err) => status('Listing failed: ' + ossError(err), 'denied'))
  })
})()
