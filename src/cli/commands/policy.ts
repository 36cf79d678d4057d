// `sts-vending policy`: the role's OSS permission policy alone, for operators who apply
// it with their own tooling. Pure: reads nothing, calls nothing.
import { buildSessionPolicy } from '../../policy/build.js'
import { isSafePrefix } from '../../core/index.js'
import { PROGRAM, UsageError, defineCommand, parseActions, required, type Options } from '../args.js'
import { BUCKET, renderPolicy } from '../provision/documents.js'

const help = `Usage: ${PROGRAM} policy --bucket <bucket> --prefix <dir/> [--actions list,read,write]

Prints the role's OSS permission policy (JSON) alone, exactly as provision creates it,
for operators who apply it with their own tooling (Terraform, ROS, the console).

  --bucket <name>      OSS bucket
  --prefix <dir/>      directory, ends with /
  --actions <list>     comma-separated: list, read, write, delete (default list,read,write)
  -h, --help           show this help

Exit codes: 0 ok, 2 usage error.
`

const options = {
  bucket: { type: 'string' },
  prefix: { type: 'string' },
  actions: { type: 'string' }
} as const satisfies Options

export const command = defineCommand({
  help,
  options,
  async run (v, io) {
    const bucket = required(v.bucket, 'bucket')
    const prefix = required(v.prefix, 'prefix')
    if (!BUCKET.test(bucket)) throw new UsageError(`--bucket "${bucket}" is not a valid OSS bucket name`)
    if (!isSafePrefix(prefix)) throw new UsageError(`--prefix "${prefix}" is not a safe directory (segments of A-Z a-z 0-9 _ . @ -, ending with /)`)
    io.stdout.write(renderPolicy(buildSessionPolicy(bucket, prefix, parseActions(v.actions))) + '\n')
    return 0
  }
})
