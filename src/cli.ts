#!/usr/bin/env node
// The documented entry point, `node dist/cli.js <command>` (and the package's `bin`).
// Everything lives in cli/; this file only hands it the process's streams and
// environment and sets the exit code.
import { runCli } from './cli/main.js'

// `… | head` closes the pipe early: the reader has what it wanted, so no stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  process.exitCode = 1
})

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then((code) => {
  process.exitCode = code
}, () => {
  process.exitCode = 1
})
