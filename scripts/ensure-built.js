'use strict'
// Builds the native addon (debug by default, `--release` for benchmarks). Cargo makes this a
// no-op when nothing changed. CARGO_TARGET_DIR, when set, lets builds be reused across clones.
// The debug build is the test build: it turns on the `test-exports` cargo feature, which adds
// the exports only the tests use (`__panicForTests`…). A `--release` build (benchmarks, and
// `npm run package` for publishing) leaves it off, so the shipped addon has none of them.
// Other arguments go to `napi build` (scripts/package.js passes --output-dir and --target).
const { execFileSync } = require('node:child_process')
const path = require('node:path')
const extra = process.argv.slice(2)
const args = ['napi', 'build', '--platform', '--js', 'binding.js', '--dts', 'binding.d.ts', ...extra]
if (!extra.includes('--release')) args.push('--features', 'test-exports')
execFileSync('npx', args, { cwd: path.join(__dirname, '..'), stdio: 'inherit' })
