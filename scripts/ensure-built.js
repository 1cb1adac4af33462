'use strict'
// Builds the native addon (debug by default, `--release` for benchmarks). Cargo makes this a
// no-op when nothing changed. CARGO_TARGET_DIR, when set, lets builds be reused across clones.
const { execFileSync } = require('node:child_process')
const path = require('node:path')
const release = process.argv.includes('--release')
const args = ['napi', 'build', '--platform', '--js', 'binding.js', '--dts', 'binding.d.ts']
if (release) args.push('--release')
execFileSync('npx', args, { cwd: path.join(__dirname, '..'), stdio: 'inherit' })
