// The drop-in path for an ES-module server: `export * from '@chaaskit/queue'` (and named
// imports) must see every export, as `require()` does. Node finds a CommonJS module's names
// for ESM importers by reading its source (cjs-module-lexer), not by running it.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { pathToFileURL } = require('node:url')

test('an ES module re-exporting the package with `export *` gets every name', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-esm-'))
  try {
    const entry = pathToFileURL(path.join(__dirname, '..', 'index.js')).href
    fs.writeFileSync(path.join(dir, 'server.mjs'), `export * from ${JSON.stringify(entry)}\n`)
    fs.writeFileSync(
      path.join(dir, 'probe.mjs'),
      "import * as server from './server.mjs'\n" +
        "import { registerJobHandler, getQueueProvider, getScheduler, initializeQueue } from './server.mjs'\n" +
        'console.log(JSON.stringify({ names: Object.keys(server).sort(), fns: [registerJobHandler, getQueueProvider, getScheduler, initializeQueue].map((f) => typeof f) }))\n',
    )
    let out
    try {
      out = JSON.parse(execFileSync(process.execPath, [path.join(dir, 'probe.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))
    } catch (e) {
      assert.fail(`importing named exports from an ESM re-export failed:\n${e.stderr || e.message}`)
    }
    const cjsNames = Object.keys(require('../index.js')).sort()
    // Node 23+ adds its own 'module.exports' name to the ES-module view of a CommonJS module.
    assert.deepEqual(out.names.filter((n) => n !== 'module.exports'), cjsNames)
    assert.deepEqual(out.fns, ['function', 'function', 'function', 'function'])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
