'use strict'
// Soak (issue #12, Reliability): 3 `queue-worker` processes (bin/queue-worker.js) on one durable
// queue while one of them is SIGKILLed and restarted every 2 s, and, on PostgreSQL, the database
// is restarted once mid-run. Every handler attempt appends (job id, attempt, start, end, pid) to
// a per-process log; at the end the logs and getJob decide: every job completed, none lost, no
// two attempts of one job overlapping in time while its lease held; duplicates are counted.
//
// `node bench/soak.js [postgres|sqlite|both] [jobs]` (default both, 3000 jobs) prints a summary
// per run and exits 1 unless every run passed. Environment: SOAK_JOBS (the jobs), SOAK_PG:
// `private` (default: a throwaway PostgreSQL cluster of this machine's installation on a free
// port, so the restart disturbs no one else) or `main` (the machine's cluster at SOAK_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/test, restarted with pg_ctlcluster), SOAK_KILL_MS (2000),
// SOAK_VISIBILITY (5: lease seconds), SOAK_CONCURRENCY (8 per process), SOAK_TIMEOUT_S (300).

const { spawn, execFile, execFileSync } = require('node:child_process')
const { promisify } = require('node:util')
const { performance } = require('node:perf_hooks')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const BIN = path.join(ROOT, 'bin', 'queue-worker.js')
const JOBS = Number(process.argv[3] || process.env.SOAK_JOBS || 3000)
const PROCESSES = 3
const KILL_MS = Number(process.env.SOAK_KILL_MS || 2000)
const VISIBILITY_S = Number(process.env.SOAK_VISIBILITY || 5)
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY || 8)
const TIMEOUT_S = Number(process.env.SOAK_TIMEOUT_S || 300)
const PRODUCE_S = 10 // jobs are enqueued over the first 10 s, so the DB restart also hits the producer
const RESTART_AT_S = 6 // the PostgreSQL restart, while producing and working
const JOB_MS = [20, 200] // handler duration range: long enough for kills to land mid-job
const MAX_RETRIES = 25 // a job may be killed many times; that is not a loss
const SLOP_MS = 1 // clock tolerance between processes when comparing attempt times

const { hostNow } = require('./timing.js')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const fmt = (n) => Math.round(n).toLocaleString('en-US')

// ---- a throwaway app for queue-worker -------------------------------------------------------------

/** An app dir: config/app.config.js (provider from SOAK_PROVIDER) and the recording handler. */
function makeApp(dir) {
  fs.mkdirSync(path.join(dir, 'config'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'extensions', 'jobs'), { recursive: true })
  fs.writeFileSync(
    path.join(dir, 'config', 'app.config.js'),
    `module.exports = { config: { queue: {
  enabled: true,
  providerConfig: JSON.parse(process.env.SOAK_PROVIDER),
  worker: { mode: 'standalone', concurrency: Number(process.env.SOAK_CONCURRENCY), shutdownTimeout: 10000 },
} } }\n`,
  )
  // appendFileSync/writeSync reach the kernel before the handler goes on: a SIGKILL loses nothing written.
  fs.writeFileSync(
    path.join(dir, 'extensions', 'jobs', 'soak.js'),
    `const fs = require('node:fs')
const { hostNow } = require(${JSON.stringify(path.join(__dirname, 'timing.js'))})
const { registerJobHandler } = require(${JSON.stringify(path.join(ROOT, 'index.js'))})
const fd = fs.openSync(require('node:path').join(process.env.SOAK_LOG_DIR, process.pid + '.log'), 'a')
const now = () => hostNow().toFixed(3)
registerJobHandler('soak', async (job, ctx) => {
  fs.writeSync(fd, 'S ' + job.id + ' ' + ctx.attempt + ' ' + now() + ' ' + process.pid + ' ' + job.payload.i + '\\n')
  await new Promise((r) => setTimeout(r, job.payload.ms))
  fs.writeSync(fd, 'E ' + job.id + ' ' + ctx.attempt + ' ' + now() + ' ' + process.pid + ' ' + job.payload.i + '\\n')
})
`,
  )
}

// ---- PostgreSQL targets -------------------------------------------------------------------------------

function pgBinDir() {
  const base = '/usr/lib/postgresql'
  const v = fs.existsSync(base) ? fs.readdirSync(base).sort((a, b) => Number(b) - Number(a))[0] : null
  if (!v) throw new Error(`no PostgreSQL installation under ${base}`)
  return { version: v, bin: path.join(base, v, 'bin') }
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })

const asRoot = () => process.getuid && process.getuid() === 0
/** Run a PostgreSQL tool as the postgres user when we are root (the server refuses root). */
function asPostgres(cmd, args) {
  const [file, argv] = asRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
  return execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] }).toString()
}
/** The same, without blocking this process (the producer and the killer go on meanwhile). */
async function asPostgresAsync(cmd, args) {
  const [file, argv] = asRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
  await promisify(execFile)(file, argv)
}

/** A fresh cluster in a temp dir on a free loopback port: { url, restart(), stop() }. */
async function privateCluster() {
  const { bin } = pgBinDir()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-soak-pg-'))
  fs.chmodSync(dir, 0o777)
  if (process.getuid && process.getuid() === 0) execFileSync('chown', ['postgres', dir])
  const data = path.join(dir, 'data')
  const port = await freePort()
  asPostgres(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'])
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`
  const ctlArgs = (...a) => ['-D', data, '-l', path.join(dir, 'server.log'), '-o', opts, '-w', ...a]
  const ctl = (...a) => asPostgres(path.join(bin, 'pg_ctl'), ctlArgs(...a))
  ctl('start')
  return {
    what: `a private PostgreSQL cluster on 127.0.0.1:${port} (${data})`,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    schema: 'public',
    restart: () => asPostgresAsync(path.join(bin, 'pg_ctl'), ctlArgs('-m', 'fast', 'restart')),
    stop() {
      try {
        ctl('-m', 'fast', 'stop')
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}

/** The machine's cluster; a fresh schema; restarted with pg_ctlcluster. */
function mainCluster() {
  const { version } = pgBinDir()
  const url = process.env.SOAK_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
  const schema = `chaaskit_soak_${process.pid}`
  return {
    what: `the machine's cluster ${version}/main at ${url.replace(/:[^:@/]*@/, ':***@')}, schema ${schema}`,
    url,
    schema,
    restart: () => promisify(execFile)('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart']),
    stop: () => execFileSync('psql', [url, '-qc', `drop schema if exists "${schema}" cascade`], { stdio: ['ignore', 'pipe', 'pipe'] }),
  }
}

// ---- worker processes --------------------------------------------------------------------------------

class Fleet {
  constructor(appDir, logDir, env) {
    this.appDir = appDir
    this.logDir = logDir
    this.env = env
    this.slots = Array(PROCESSES).fill(null)
    this.ended = new Map() // pid -> { at, how: 'killed' | 'exit <code>' | 'signal <sig>' }
    this.unexpected = []
    this.started = 0
  }

  spawn(slot) {
    const out = fs.openSync(path.join(this.logDir, `worker-${slot}-${this.started++}.out`), 'a')
    const child = spawn(process.execPath, [BIN, 'start'], { cwd: this.appDir, env: this.env, stdio: ['ignore', out, out] })
    fs.closeSync(out)
    const rec = { child, killedAt: null }
    child.on('exit', (code, signal) => {
      const at = rec.killedAt ?? hostNow()
      this.ended.set(child.pid, { at, how: rec.killedAt ? 'killed' : signal ? `signal ${signal}` : `exit ${code}` })
      if (!rec.killedAt && !this.stopping) {
        this.unexpected.push(`worker pid ${child.pid} ${signal ? `got ${signal}` : `exited with ${code}`} by itself`)
        if (this.slots[slot] === rec) this.spawn(slot) // keep 3 running
      }
    })
    this.slots[slot] = rec
  }

  start() {
    for (let i = 0; i < PROCESSES; i++) this.spawn(i)
  }

  killAndRestart(slot) {
    const rec = this.slots[slot]
    rec.killedAt = hostNow()
    rec.child.kill('SIGKILL')
    this.spawn(slot)
  }

  async stop() {
    this.stopping = true
    const exits = this.slots.map((r) => new Promise((res) => (r.child.exitCode !== null || r.child.signalCode !== null ? res() : r.child.once('exit', res))))
    for (const r of this.slots) r.child.kill('SIGTERM')
    const t = setTimeout(() => this.slots.forEach((r) => r.child.kill('SIGKILL')), 20_000)
    await Promise.all(exits)
    clearTimeout(t)
  }
}

// ---- the run -------------------------------------------------------------------------------------------

/** Retry `fn` (a call that may fail while the database restarts) for up to 60 s. */
async function retrying(fn, counter) {
  const give = Date.now() + 60_000
  for (;;) {
    try {
      return await fn()
    } catch (e) {
      if (Date.now() > give) throw e
      counter.n++
      await sleep(200)
    }
  }
}

async function soak(kind) {
  const q = require('../index.js')
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `chaaskit-soak-${kind}-`))
  const appDir = path.join(tmp, 'app')
  const logDir = path.join(tmp, 'logs')
  fs.mkdirSync(logDir, { recursive: true })
  makeApp(appDir)
  let db = null
  let providerConfig
  if (kind === 'postgres') {
    db = process.env.SOAK_PG === 'main' ? mainCluster() : await privateCluster()
    providerConfig = { type: 'postgres', databaseUrl: db.url, schema: db.schema, visibilityTimeout: VISIBILITY_S }
  } else {
    providerConfig = { type: 'sqlite', databaseUrl: `sqlite:${path.join(tmp, 'queue.db')}`, visibilityTimeout: VISIBILITY_S }
  }
  const env = { ...process.env, SOAK_PROVIDER: JSON.stringify(providerConfig), SOAK_CONCURRENCY: String(CONCURRENCY), SOAK_LOG_DIR: logDir, CHAASKIT_QUEUE_LOG: process.env.CHAASKIT_QUEUE_LOG || 'warn' }
  for (const k of ['DATABASE_URL', 'QUEUE_CONCURRENCY', 'QUEUE_POLL_INTERVAL', 'QUEUE_SHUTDOWN_TIMEOUT', 'SCHEDULER_ENABLED']) delete env[k]

  const provider = await q.createQueueProvider(providerConfig) // migrates before the workers start
  const fleet = new Fleet(appDir, logDir, env)
  const retries = { enqueue: { n: 0 }, stats: { n: 0 } }
  const ids = new Map() // i -> job id
  let restart = null
  let kills = 0
  let slowestEnqueueMs = 0
  let keep = true // the logs of a run that threw or failed stay for a look
  const t0 = Date.now()
  try {
    fleet.start()
    // Producer: JOBS jobs over PRODUCE_S, in bulks of 25, each with a deduplicationKey so that a
    // retried enqueue (the database restarting) cannot create a second job.
    const producing = (async () => {
      const bulk = 25
      const every = (PRODUCE_S * 1000) / Math.ceil(JOBS / bulk)
      for (let i = 0; i < JOBS; i += bulk) {
        const items = []
        for (let j = i; j < Math.min(JOBS, i + bulk); j++) {
          const ms = JOB_MS[0] + Math.floor(Math.random() * (JOB_MS[1] - JOB_MS[0]))
          items.push({ type: 'soak', payload: { i: j, ms }, options: { maxRetries: MAX_RETRIES, deduplicationKey: `soak-${j}` } })
        }
        const t = Date.now()
        const jobs = await retrying(() => provider.enqueueBulk(items), retries.enqueue)
        slowestEnqueueMs = Math.max(slowestEnqueueMs, Date.now() - t)
        jobs.forEach((job, k) => ids.set(i + k, job.id))
        await sleep(every)
      }
    })()
    const killer = setInterval(() => {
      fleet.killAndRestart(kills % PROCESSES)
      kills++
    }, KILL_MS)
    const restarting =
      db &&
      (async () => {
        await sleep(RESTART_AT_S * 1000)
        const at = Date.now()
        await db.restart()
        restart = { atS: (at - t0) / 1000, tookMs: Date.now() - at }
      })()
    await producing
    await restarting
    // Wait until every job is finished.
    let stats
    for (;;) {
      stats = await retrying(() => provider.getStats(), retries.stats)
      if (stats.completed + stats.dead >= JOBS && stats.pending + stats.processing + stats.scheduled + stats.failed === 0) break
      if (Date.now() - t0 > TIMEOUT_S * 1000) break
      await sleep(250)
    }
    clearInterval(killer)
    await fleet.stop()
    const wallS = (Date.now() - t0) / 1000

    // ---- judge -----------------------------------------------------------------------------------
    const statuses = new Map()
    for (const [i, id] of ids) statuses.set(i, (await provider.getJob(id))?.status ?? 'missing')
    const attempts = new Map() // jobId -> [{ attempt, start, end, pid, how }]
    let records = 0
    for (const f of fs.readdirSync(logDir).filter((f) => f.endsWith('.log'))) {
      for (const line of fs.readFileSync(path.join(logDir, f), 'utf8').split('\n')) {
        if (!line) continue
        const [tag, id, attempt, at, pid, i] = line.split(' ')
        records++
        const list = attempts.get(id) ?? attempts.set(id, []).get(id)
        let a = list.find((x) => x.attempt === Number(attempt) && x.pid === Number(pid) && x.end === undefined)
        if (tag === 'S') list.push({ attempt: Number(attempt), start: Number(at), pid: Number(pid), i: Number(i) })
        else if (a) a.end = Number(at)
        else throw new Error(`log ${f}: an end without a start: ${line}`)
      }
    }
    let completedAttempts = 0
    let interrupted = 0
    let duplicateJobs = 0
    let extraCompletions = 0
    let sameAttemptTwice = 0
    let killedBeforeAck = 0
    let otherDuplicates = 0
    const overlaps = []
    for (const [id, list] of attempts) {
      for (const a of list) {
        if (a.end !== undefined) completedAttempts++
        else {
          interrupted++
          const ended = fleet.ended.get(a.pid)
          a.end = ended ? ended.at : Infinity // still running: cannot be, the fleet is stopped
          a.how = ended ? ended.how : 'never ended'
        }
      }
      const done = list.filter((a) => a.how === undefined).sort((x, y) => x.end - y.end)
      if (done.length > 1) {
        duplicateJobs++
        extraCompletions += done.length - 1
        // An earlier finished attempt whose process was then SIGKILLed: its completion was not
        // written yet (completions are written in batches). Anything else is counted apart.
        for (const a of done.slice(0, -1)) {
          const ended = fleet.ended.get(a.pid)
          if (ended && ended.how === 'killed' && ended.at >= a.end) killedBeforeAck++
          else otherDuplicates++
        }
      }
      if (new Set(list.map((a) => a.attempt)).size !== list.length) sameAttemptTwice++
      list.sort((x, y) => x.start - y.start)
      for (let k = 1; k < list.length; k++) {
        for (let m = 0; m < k; m++) {
          const [a, b] = [list[m], list[k]]
          if (b.start + SLOP_MS < a.end) {
            // b started while a was still running. Excused only once a's lease could have lapsed:
            // after a's process died, or VISIBILITY_S after a's start with no heartbeat (the DB down).
            const leaseLapsed = b.start >= a.start + VISIBILITY_S * 1000 && restart
            overlaps.push({ id, a, b, excused: Boolean(leaseLapsed) })
          }
        }
      }
    }
    const idsPerI = new Map()
    for (const [id, list] of attempts) for (const a of list) (idsPerI.get(a.i) ?? idsPerI.set(a.i, new Set()).get(a.i)).add(id)
    const enqueuedTwice = [...idsPerI.values()].filter((s) => s.size > 1).length
    const byStatus = {}
    for (const s of statuses.values()) byStatus[s] = (byStatus[s] || 0) + 1
    const notCompleted = [...statuses].filter(([, s]) => s !== 'completed')
    const withoutCompletedAttempt = [...ids].filter(([, id]) => !(attempts.get(id) || []).some((a) => a.how === undefined))
    const badOverlaps = overlaps.filter((o) => !o.excused)
    const checks = [
      ['every job enqueued (an id for each)', ids.size === JOBS, `${fmt(ids.size)}/${fmt(JOBS)}`],
      ['every job completed (getJob status)', notCompleted.length === 0, notCompleted.length ? `not completed: ${JSON.stringify(byStatus)}` : `${fmt(JOBS)} completed`],
      ['none lost (a finished handler attempt logged for every job)', withoutCompletedAttempt.length === 0, `${fmt(withoutCompletedAttempt.length)} without one`],
      ['no two attempts of one job overlapping while the lease held', badOverlaps.length === 0, `${badOverlaps.length} overlaps${overlaps.length > badOverlaps.length ? ` (+${overlaps.length - badOverlaps.length} after a possible lease lapse during the DB restart)` : ''}`],
      ['no attempt number handed out twice for one job', sameAttemptTwice === 0, `${sameAttemptTwice} jobs`],
      ['no worker process died by itself', fleet.unexpected.length === 0, fleet.unexpected.length ? fleet.unexpected.slice(0, 3).join('; ') : 'none'],
    ]
    const pass = checks.every((c) => c[1])
    const lines = [
      `soak ${kind}: ${pass ? 'PASS' : 'FAIL'} (${new Date().toISOString()}, node ${process.version})`,
      `  setup: ${PROCESSES} queue-worker processes × concurrency ${CONCURRENCY} on ${db ? db.what : `one SQLite file (${providerConfig.databaseUrl})`}; lease ${VISIBILITY_S} s; ${fmt(JOBS)} jobs of ${JOB_MS[0]}–${JOB_MS[1]} ms enqueued over ${PRODUCE_S} s`,
      `  faults: ${kills} SIGKILLs (one process every ${KILL_MS / 1000} s, restarted at once)` + (restart ? `; PostgreSQL restarted at ${restart.atS.toFixed(1)} s (the restart took ${fmt(restart.tookMs)} ms)` : '; no database restart (SQLite)'),
      `  wall time ${wallS.toFixed(1)} s; handler attempts ${fmt(completedAttempts + interrupted)} (${fmt(completedAttempts)} finished, ${fmt(interrupted)} cut by a kill); log records ${fmt(records)}`,
      `  duplicates: ${fmt(duplicateJobs)} jobs whose handler finished more than once, ${fmt(extraCompletions)} extra completions: ${fmt(killedBeforeAck)} after the process was SIGKILLed between handler end and the completion write, ${fmt(otherDuplicates)} otherwise (e.g. a completion lost to the DB restart)`,
      `  jobs enqueued twice (a retried enqueueBulk whose first try had committed, and whose job had already finished): ${fmt(enqueuedTwice)}`,
      `  producer: slowest enqueueBulk of 25 took ${fmt(slowestEnqueueMs)} ms; calls that failed and were retried: ${retries.enqueue.n} enqueueBulk, ${retries.stats.n} getStats`,
      ...checks.map(([what, ok, detail]) => `  ${ok ? 'ok  ' : 'FAIL'} ${what}: ${detail}`),
    ]
    for (const o of badOverlaps.slice(0, 5)) lines.push(`    overlap job ${o.id}: attempt ${o.a.attempt} pid ${o.a.pid} ${o.a.start.toFixed(1)}–${o.a.end.toFixed(1)} (${o.a.how || 'finished'}) vs attempt ${o.b.attempt} pid ${o.b.pid} from ${o.b.start.toFixed(1)}`)
    if (!pass) lines.push(`  logs and worker output kept in ${logDir}`)
    keep = !pass
    return { pass, text: lines.join('\n') }
  } finally {
    await fleet.stop().catch(() => {})
    await provider.close().catch(() => {})
    if (db) db.stop()
    if (!keep && process.env.SOAK_KEEP !== '1') fs.rmSync(tmp, { recursive: true, force: true })
  }
}

async function main() {
  const which = process.argv[2] || 'both'
  if (!['postgres', 'sqlite', 'both'].includes(which) || !(JOBS >= 1)) {
    throw new Error(`usage: node bench/soak.js [postgres|sqlite|both] [jobs], got ${JSON.stringify(process.argv.slice(2))}`)
  }
  const kinds = which === 'both' ? ['postgres', 'sqlite'] : [which]
  let ok = true
  for (const kind of kinds) {
    const r = await soak(kind)
    console.log(r.text)
    ok &&= r.pass
  }
  process.exitCode = ok ? 0 : 1
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}

module.exports = { soak }
