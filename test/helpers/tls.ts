// A throwaway certificate authority for tests: a CA and a certificate for 127.0.0.1
// and localhost, made with openssl in the test's temp dir and removed in teardown. The
// certificate serves as a client one too: Redis Cluster nodes on a TLS bus present it
// to each other, and the bus always asks for one. Each call is a new CA, so a second
// one is "a CA the server does not use".
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

type Tap = { teardown: (fn: () => unknown) => void }

export interface TestCa {
  /** The CA certificate, PEM: what a client trusts. */
  caPem: string
  caFile: string
  /** The server's certificate and key, signed by the CA. */
  certFile: string
  keyFile: string
}

export function makeCa (t: Tap): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'stsv-ca-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const f = (name: string): string => join(dir, name)
  const openssl = (...args: string[]): void => { execFileSync('openssl', args, { stdio: 'ignore' }) }
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=sts-vending test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'))
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr'))
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n')
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('ext.cnf'), '-out', f('server.crt'))
  return { caPem: readFileSync(f('ca.crt'), 'utf8'), caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key') }
}
