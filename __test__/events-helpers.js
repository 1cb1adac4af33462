'use strict'
// Shared by cancel.test.js and queue-events.test.js: `child(config, t)` starts
// __test__/events-child.js (a worker process) on a providerConfig, what it prints (one JSON
// object a line) collecting in `lines`, killed when the test ends; `until`; and providerConfigs
// of fresh postgres schemas and sqlite files, removed after the file's tests.
const test = require('node:test')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { randomUUID } = require('node:crypto')
const { Client } = require('pg')

const PG_URL = process.env.QUEUE_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test'
const RUN = randomUUID().slice(0, 8)
const { sleep, until } = require('./wait.js')

const schemas = []
const dirs = []
test.after(async () => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
  if (schemas.length) {
    const c = new Client({ connectionString: PG_URL })
    await c.connect()
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
    await c.end()
  }
})

/** A postgres providerConfig on a schema of its own. */
function pg(prefix, extra = {}) {
  const schema = `${prefix}_${RUN}_${schemas.length}`
  schemas.push(schema)
  return { type: 'postgres', databaseUrl: PG_URL, schema, ...extra }
}

/** An sqlite providerConfig on a file of its own. */
function sqlite(extra = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-events-'))
  dirs.push(dir)
  return { type: 'sqlite', databaseUrl: `sqlite:${path.join(dir, 'queue.db')}`, ...extra }
}

function child(config, t) {
  const proc = spawn(process.execPath, [path.join(__dirname, 'events-child.js'), JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = []
  let buf = ''
  proc.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) !== -1) {
      lines.push(JSON.parse(buf.slice(0, i)))
      buf = buf.slice(i + 1)
    }
  })
  t.after(() => proc.kill('SIGKILL'))
  return { proc, lines }
}

module.exports = { PG_URL, child, pg, sqlite, sleep, until }
