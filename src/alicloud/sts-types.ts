// What one AssumeRole takes and gives back, with no code: the STS client (sts-client.ts),
// its lazily loaded SDK half (sts-sdk.ts) and everything that holds credentials (the
// caches, the credential source) name these without importing the client or each other.

export interface AssumeRoleInput {
  roleArn: string
  roleSessionName: string
  durationSeconds: number
  policy?: string
  externalId?: string
  sourceIdentity?: string
}

export interface StsCredentials {
  accessKeyId: string
  accessKeySecret: string
  securityToken: string
  expiration: Date
}
