// A panic at the napi boundary (issue 10): it becomes a thrown Error or a rejected promise
// with the panic's own message, is logged through `tracing`, and the process goes on.
'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const binding = require('../binding.js')

// The panic exports exist in test builds only (the `test-exports` cargo feature, which
// `node scripts/ensure-built.js` turns on and `--release` leaves off). Without them this test
// skips, loudly; under CI=true, where `npm test` made the test build, their absence fails it.
const TEST_EXPORTS = typeof binding.__panicForTests === 'function'
const NO_TEST_EXPORTS =
  'the addon has no test exports (__panicForTests): it is a --release build; `node scripts/ensure-built.js` makes the test build'
if (!TEST_EXPORTS && process.env.CI === 'true') throw new Error(`${NO_TEST_EXPORTS} (required with CI=true)`)
if (!TEST_EXPORTS) console.warn(`SKIP panic.test.js: ${NO_TEST_EXPORTS}`)

const probe = `
const binding = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'native.js'))})
let sync
try { binding.__panicForTests('sync boom é') } catch (e) { sync = e }
binding.__panicInPromiseForTests('async boom 每天').then(
  () => { console.log(JSON.stringify({ error: 'resolved' })) },
  (e) => { console.log(JSON.stringify({ sync: [sync.constructor.name, sync.message], async: [e.constructor.name, e.message, e.code] })) },
)
`

test('a panic becomes an Error with its message, logged, and the process lives on', { skip: TEST_EXPORTS ? false : NO_TEST_EXPORTS }, () => {
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', env: { ...process.env, CHAASKIT_QUEUE_LOG: 'error' } })
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  assert.deepEqual(out.sync, ['Error', 'sync boom é'])
  assert.equal(out.async[0], 'Error')
  assert.equal(out.async[1], '__panicInPromiseForTests failed with an internal error: async boom 每天 (a bug in @chaaskit/queue; please report it)')
  assert.doesNotMatch(out.async[1], /Panic in async function/)
  assert.equal(out.async[2], 'ERR_QUEUE_INTERNAL')
  // Both are logged through the addon's tracing subscriber (stderr), with where they happened.
  assert.match(r.stderr, /ERROR.*panic at src\/bridge\.rs:\d+: sync boom é/)
  assert.match(r.stderr, /ERROR.*panic at src\/bridge\.rs:\d+: async boom 每天/)
  assert.match(r.stderr, /internal error \(panic\): async boom 每天/)
})
