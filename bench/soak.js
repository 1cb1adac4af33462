'use strict'
// Soak of the durable providers (issue #12 reliability): 3 worker processes on one queue, one of
// them SIGKILLed (and replaced) every 2 s, until every job has completed. Each attempt logs its
// start and end in a table of its own; at the end the script checks that every job completed,
// none is lost, and counts duplicate deliveries and attempts of one job that overlapped in time.
//
// `node bench/soak.js [postgres|sqlite] [jobs]` (default postgres, 3000 jobs). PostgreSQL at
// BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test), a schema of its own, dropped at
// the end. The worker side is `bench/soak-worker.js`.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { randomUUID } = require('node:crypto')
const q = require('../index.js')

const PG_URL = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/test'
const kind = process.argv[2] || 'postgres'
const N = Number(process.argv[3] || 3000)
const WORKERS = 3
const KILL_EVERY_MS = 2000
const VISIBILITY_S = 2

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function main() {
  const id = randomUUID().slice(0, 8)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-soak-'))
  const log = path.join(dir, 'attempts.log')
  const config =
    kind === 'postgres'
      ? { type: 'postgres', databaseUrl: PG_URL, schema: `soak_${id}`, visibilityTimeout: VISIBILITY_S }
      : { type: 'sqlite', databaseUrl: `sqlite:${path.join(dir, 'queue.db')}`, visibilityTimeout: VISIBILITY_S }
  const provider = await q.createQueueProvider(config)
  // An attempt lost with its worker counts (as any crashed attempt does), and a job near the
  // head of the queue can be claimed by several workers in a row that are then killed: room
  // for that, so the soak checks delivery rather than the retry limit.
  const items = Array.from({ length: N }, (_, i) => ({ type: 'soak', payload: { i, ms: 5 + (i % 40) }, options: { maxRetries: 50 } }))
  for (let i = 0; i < N; i += 1000) await provider.enqueueBulk(items.slice(i, i + 1000))

  const children = new Set()
  const startWorker = () => {
    const c = spawn(process.execPath, [path.join(__dirname, 'soak-worker.js'), JSON.stringify(config), log], { stdio: ['ignore', 'ignore', 'inherit'] })
    children.add(c)
    c.once('exit', () => children.delete(c))
    return c
  }
  for (let i = 0; i < WORKERS; i++) startWorker()
  let kills = 0
  const t0 = Date.now()
  const killer = setInterval(() => {
    const victim = [...children][Math.floor(Math.random() * children.size)]
    if (victim) {
      victim.kill('SIGKILL')
      kills++
      startWorker()
    }
  }, KILL_EVERY_MS)
  try {
    for (;;) {
      const s = await provider.getStats()
      if (s.completed + s.dead >= N) break
      if (Date.now() - t0 > 15 * 60_000) throw new Error(`not done after 15 minutes: ${JSON.stringify(s)}`)
      await sleep(250)
    }
  } finally {
    clearInterval(killer)
    for (const c of children) c.kill('SIGKILL')
  }
  const seconds = (Date.now() - t0) / 1000
  const stats = await provider.getStats()

  // Attempts: "start <job> <attempt> <ms>" and "end <job> <attempt> <ms>" lines.
  const attempts = new Map()
  for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
    const [what, job, attempt, at] = line.split(' ')
    if (!job) continue
    const key = `${job}:${attempt}`
    const a = attempts.get(key) ?? { job, attempt: Number(attempt) }
    a[what] = Number(at)
    attempts.set(key, a)
  }
  const byJob = new Map()
  for (const a of attempts.values()) (byJob.get(a.job) ?? byJob.set(a.job, []).get(a.job)).push(a)
  let duplicates = 0
  let overlaps = 0
  let lost = 0
  for (const [, as] of byJob) {
    const finished = as.filter((a) => a.end !== undefined)
    if (finished.length === 0) lost++
    duplicates += Math.max(0, finished.length - 1)
    as.sort((x, y) => x.start - y.start)
    for (let i = 1; i < as.length; i++) {
      // A killed attempt has no end: its lease held until at most VISIBILITY_S after its start
      // plus its heartbeats, so only finished attempts can be checked for overlap.
      if (as[i - 1].end !== undefined && as[i].start < as[i - 1].end) overlaps++
    }
  }
  const jobsSeen = byJob.size
  const unfinished = []
  for (const [job, as] of byJob) {
    if (as.every((a) => a.end === undefined)) {
      const j = await provider.getJob(job)
      unfinished.push({ job, status: j?.status, attempts: j?.attempts, lastError: j?.lastError, logged: as.map((a) => a.attempt) })
    }
  }
  if (unfinished.length) console.error('jobs without a finished attempt:', JSON.stringify(unfinished, null, 2))
  console.log(
    JSON.stringify(
      { provider: kind, jobs: N, workers: WORKERS, kills, seconds, stats, jobsSeen, lost, duplicateCompletions: duplicates, overlappingAttempts: overlaps },
      null,
      2,
    ),
  )
  await provider.close()
  if (kind === 'postgres') {
    const { Client } = require('pg')
    const c = new Client({ connectionString: PG_URL })
    await c.connect()
    await c.query(`DROP SCHEMA IF EXISTS "${config.schema}" CASCADE`)
    await c.end()
  }
  fs.rmSync(dir, { recursive: true, force: true })
  const ok = stats.completed === N && jobsSeen === N && lost === 0 && overlaps === 0
  if (!ok) {
    console.error('SOAK FAILED')
    process.exit(1)
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
