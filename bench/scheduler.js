// Scheduler benchmark: draining 10,000 due jobs into the memory provider (PostgreSQL and
// SQLite), the cost of a poll with nothing due, and 4 instances on one PostgreSQL database.
// `node bench/scheduler.js` prints the rows; `run()` returns them for bench/index.js.
'use strict'

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const queue = require('../index.js')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function psql(db, sql) {
  return execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-v', 'ON_ERROR_STOP=1', '-Atq', '-c', sql], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim()
}

function pgAvailable() {
  try {
    psql('test', 'SELECT 1')
    return true
  } catch (e) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL on 127.0.0.1:5432 is required in CI: ${e.message}`)
    console.error(`*** scheduler bench: PostgreSQL unavailable, skipping its rows: ${String(e.message).split('\n')[0]}`)
    return false
  }
}

let dbCount = 0
function freshPgDb() {
  const name = `chaaskit_sched_bench_${process.pid}_${dbCount++}`
  psql('test', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  psql('test', `CREATE DATABASE "${name}"`)
  return { url: `postgres://postgres@127.0.0.1:5432/${name}`, drop: () => psql('test', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) }
}

async function scheduler(url, provider, pollInterval = 60_000) {
  const p = provider || (await queue.createQueueProvider({ type: 'memory', maxHistorySize: 10 }))
  const s = new queue.Scheduler({ provider: p, config: { databaseUrl: url, pollInterval } })
  await s.migrate()
  return { provider: p, scheduler: s }
}

/** Store `n` due jobs through the public API, 200 at a time. */
async function scheduleDue(s, n, type = 'bench') {
  const at = Date.now() - 1000
  for (let i = 0; i < n; i += 200) {
    const batch = []
    for (let j = i; j < Math.min(n, i + 200); j++) batch.push(s.schedule(type, { i: j }, at))
    await Promise.all(batch)
  }
}

/** 10,000 due jobs drained by one poll; then the cost of polls with nothing due. */
async function drainAndIdle(backend, url) {
  const rows = []
  const { provider, scheduler: s } = await scheduler(url)
  await scheduleDue(s, 10_000)
  const t0 = process.hrtime.bigint()
  const out = await s.pollOnce()
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  const pending = (await provider.getStats()).pending
  if (out.scheduled !== 10_000 || pending !== 10_000) throw new Error(`${backend}: poll enqueued ${out.scheduled}, queue holds ${pending}`)
  rows.push({ name: `scheduler: 10,000 due jobs → memory provider (${backend})`, value: +ms.toFixed(0), unit: 'ms', target: '≤ 2000', ok: ms <= 2000 })

  for (let i = 0; i < 20; i++) await s.pollOnce() // warm up
  const times = []
  for (let i = 0; i < 200; i++) {
    const t = process.hrtime.bigint()
    await s.pollOnce()
    times.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  times.sort((a, b) => a - b)
  const median = times[times.length >> 1]
  rows.push({ name: `scheduler: poll with nothing due, median of 200 (${backend})`, value: +median.toFixed(3), unit: 'ms', target: '≤ 2', ok: median <= 2 })
  await provider.close()
  return rows
}

/** 4 instances, each with its own pool, over 1,000 due jobs and 50 due recurring jobs. */
async function fourInstances(db) {
  const provider = await queue.createQueueProvider({ type: 'memory', maxHistorySize: 10 })
  const setup = (await scheduler(db.url, provider)).scheduler
  await scheduleDue(setup, 1000, 'once')
  for (let i = 0; i < 50; i++) {
    await setup.registerRecurring({ name: `r${i}`, type: 'rec', payload: { r: i }, schedule: 'every 1 day' })
  }
  const name = new URL(db.url).pathname.slice(1)
  psql(name, `UPDATE "RecurringJob" SET "nextRunAt" = (NOW() AT TIME ZONE 'UTC') - interval '1 minute'`)
  const instances = Array.from({ length: 4 }, () => new queue.Scheduler({ provider, config: { databaseUrl: db.url, pollInterval: 10 } }))
  const t0 = Date.now()
  await Promise.all(instances.map((s) => s.start()))
  while ((await provider.getStats()).pending < 1050 && Date.now() - t0 < 30_000) await sleep(10)
  await sleep(300) // keep polling: nothing more may appear
  await Promise.all(instances.map((s) => s.stop()))
  const counts = new Map()
  for (;;) {
    const jobs = await provider.receive(1000, 0)
    if (jobs.length === 0) break
    for (const j of jobs) {
      const k = JSON.stringify(j.payload)
      counts.set(k, (counts.get(k) || 0) + 1)
    }
  }
  let dups = 0
  for (const n of counts.values()) dups += n - 1
  let missed = 0
  for (let i = 0; i < 1000; i++) if (!counts.has(`{"i":${i}}`)) missed++
  for (let i = 0; i < 50; i++) if (!counts.has(`{"r":${i}}`)) missed++
  await provider.close()
  return [
    { name: 'scheduler: 4 instances, 1,000 scheduled + 50 recurring (PostgreSQL) — duplicates', value: dups, unit: 'jobs', target: '0', ok: dups === 0 },
    { name: 'scheduler: 4 instances, 1,000 scheduled + 50 recurring (PostgreSQL) — missed', value: missed, unit: 'jobs', target: '0', ok: missed === 0 },
  ]
}

async function run() {
  const rows = []
  if (pgAvailable()) {
    const db = freshPgDb()
    try {
      rows.push(...(await drainAndIdle('PostgreSQL', db.url)))
    } finally {
      db.drop()
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-sched-bench-'))
  try {
    rows.push(...(await drainAndIdle('SQLite', `sqlite:${path.join(dir, 'queue.db')}?mode=rwc`)))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  if (pgAvailable()) {
    const db = freshPgDb()
    try {
      rows.push(...(await fourInstances(db)))
    } finally {
      db.drop()
    }
  }
  return rows
}

module.exports = { run }

if (require.main === module) {
  run().then(
    (rows) => {
      for (const r of rows) {
        console.log(`${r.ok ? 'ok  ' : 'MISS'} ${r.name}: ${r.value} ${r.unit} (target ${r.target})`)
      }
      if (rows.some((r) => !r.ok)) process.exitCode = 1
    },
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
}
