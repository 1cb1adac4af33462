'use strict'
// Builds the native addon (debug by default, `--release` for benchmarks). Cargo makes this a
// no-op when nothing changed. CARGO_TARGET_DIR, when set, lets builds be reused across clones.
// Other arguments go to `napi build` (scripts/package.js passes --output-dir and --target).
const { execFileSync } = require('node:child_process')
const path = require('node:path')
const args = ['napi', 'build', '--platform', '--js', 'binding.js', '--dts', 'binding.d.ts', ...process.argv.slice(2)]
execFileSync('npx', args, { cwd: path.join(__dirname, '..'), stdio: 'inherit' })
