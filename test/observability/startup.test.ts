// The start-up line's upstream credential kind: read from the variables the SDK's
// default chain reads first, named by kind only.
import t from 'tap'
import { upstreamCredentialType } from '../../src/observability/startup.js'

const AK = { ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAIexample', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'not-a-real-secret' }
const RRSA = { ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/x', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/y', ALIBABA_CLOUD_OIDC_TOKEN_FILE: '/var/run/token' }

const CASES: Array<{ description: string, env: Record<string, string>, type: string }> = [
  { description: 'an AccessKey pair', env: AK, type: 'access_key' },
  { description: 'an AccessKey pair with a security token', env: { ...AK, ALIBABA_CLOUD_SECURITY_TOKEN: 'tok' }, type: 'sts' },
  { description: 'the environment pair wins over RRSA, as in the chain', env: { ...AK, ...RRSA }, type: 'access_key' },
  { description: 'RRSA', env: RRSA, type: 'oidc_role_arn' },
  { description: 'an id without its secret is not a pair', env: { ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAIexample' }, type: 'profile_or_ecs_ram_role' },
  { description: 'RRSA without its token file is not RRSA', env: { ...RRSA, ALIBABA_CLOUD_OIDC_TOKEN_FILE: '' }, type: 'profile_or_ecs_ram_role' },
  { description: 'nothing set', env: {}, type: 'profile_or_ecs_ram_role' },
  { description: 'nothing set, metadata disabled', env: { ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true' }, type: 'profile_or_credentials_uri' }
]

for (const c of CASES) {
  t.equal(upstreamCredentialType(c.env), c.type, c.description)
}
