'use strict'
// The durable providers (issue #12), postgres and sqlite, same shape for each:
//
// 1. bulk enqueue: 20,000 no-op jobs with enqueueBulk in batches of 1,000 (jobs/s);
// 2. end to end: those jobs through one Worker at concurrency 24, from start until every job is
//    completed in the table (jobs/s);
// 3. enqueue → handler-start latency with 500 jobs/s offered for 5 s (p50 / p99);
// 4. idle CPU of a started worker on an empty queue (% of one core, whole process).
//
// On PostgreSQL the peers run the same shape in the same run, logging off, each in a schema of
// its own: graphile-worker (`addJobs` in batches of 1,000, `run({ concurrency: 24 })`) and
// pg-boss (`insert` in batches of 1,000, `work` with `batchSize: 24`, polling every 0.5 s).
//
// `node bench/durable.js [postgres|sqlite]`; `run()` returns the rows for bench/index.js.
// PostgreSQL at BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test), a schema of its
// own per run, dropped at the end; SQLite in a temp file.

const { performance } = require('node:perf_hooks')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { randomUUID } = require('node:crypto')
const q = require('../index.js')

const PG_URL = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/test'
const N = Number(process.env.BENCH_DURABLE_N || 20000)
const BATCH = 1000
const CONCURRENCY = 24
const LATENCY_RATE = 500
const LATENCY_MS = 5000

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const fmt = (n) => Math.round(n).toLocaleString('en-US')

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

async function until(done, timeoutMs, what) {
  const give = performance.now() + timeoutMs
  while (!(await done())) {
    if (performance.now() > give) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** A fresh queue: `{ config, cleanup() }`. */
async function freshQueue(kind) {
  if (kind === 'postgres') {
    const { Client } = require('pg')
    const schema = `bench_${randomUUID().slice(0, 8)}`
    return {
      config: { type: 'postgres', databaseUrl: PG_URL, schema },
      async cleanup() {
        const c = new Client({ connectionString: PG_URL })
        await c.connect()
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        await c.end()
      },
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-bench-'))
  return {
    config: { type: 'sqlite', databaseUrl: `sqlite:${path.join(dir, 'queue.db')}` },
    cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
  }
}

async function throughput(kind) {
  const { config, cleanup } = await freshQueue(kind)
  const p = await q.createQueueProvider(config)
  try {
    const items = Array.from({ length: N }, (_, i) => ({ type: 'bench:noop', payload: { i } }))
    const t0 = performance.now()
    for (let i = 0; i < N; i += BATCH) await p.enqueueBulk(items.slice(i, i + BATCH))
    const enqueueS = (performance.now() - t0) / 1000
    q.registerJobHandler('bench:noop', async () => {})
    const w = new q.Worker({ provider: p, config: { concurrency: CONCURRENCY } })
    const t1 = performance.now()
    w.start()
    await until(async () => w.getStats().processed >= N, 600_000, 'every job processed')
    // Processed is counted as outcomes land; the table says when they are settled.
    await until(async () => (await p.getStats()).completed >= N, 60_000, 'every job completed in the table')
    const runS = (performance.now() - t1) / 1000
    await w.stop()
    return { enqueue: N / enqueueS, e2e: N / runS }
  } finally {
    await p.close()
    q.unregisterJobHandler('bench:noop')
    await cleanup()
  }
}

async function latency(kind) {
  const { config, cleanup } = await freshQueue(kind)
  const p = await q.createQueueProvider(config)
  const lat = []
  q.registerJobHandler('bench:lat', async (job) => {
    lat.push(performance.timeOrigin + performance.now() - job.payload.t)
  })
  const w = new q.Worker({ provider: p, config: { concurrency: 5 } })
  w.start()
  try {
    await sleep(500)
    const total = Math.round((LATENCY_RATE * LATENCY_MS) / 1000)
    const start = performance.now()
    let sent = 0
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - start) * LATENCY_RATE) / 1000) + 1)
        while (sent < due) {
          p.enqueue('bench:lat', { t: performance.timeOrigin + performance.now() })
          sent++
        }
        if (sent >= total) {
          clearInterval(timer)
          resolve()
        }
      }, 1)
    })
    await until(async () => lat.length >= total, 30_000, 'every latency job')
    lat.sort((a, b) => a - b)
    return { p50: percentile(lat, 50), p99: percentile(lat, 99) }
  } finally {
    await w.stop()
    await p.close()
    q.unregisterJobHandler('bench:lat')
    await cleanup()
  }
}

async function idleCpu(kind) {
  const { config, cleanup } = await freshQueue(kind)
  const p = await q.createQueueProvider(config)
  q.registerJobHandler('bench:idle', async () => {})
  const w = new q.Worker({ provider: p, config: { concurrency: CONCURRENCY } })
  w.start()
  try {
    await sleep(1000)
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    await sleep(5000)
    const c = process.cpuUsage(c0)
    return ((c.user + c.system) / 1000 / (performance.now() - t0)) * 100
  } finally {
    await w.stop()
    await p.close()
    q.unregisterJobHandler('bench:idle')
    await cleanup()
  }
}

/** `{ enqueue, e2e }` jobs/s of graphile-worker on the same shape. */
async function graphileWorker() {
  const { makeWorkerUtils, run, Logger } = require('graphile-worker')
  const schema = `bench_gw_${randomUUID().slice(0, 8)}`
  const logger = new Logger(() => () => {})
  const utils = await makeWorkerUtils({ connectionString: PG_URL, schema, logger })
  try {
    await utils.migrate()
    const specs = Array.from({ length: N }, (_, i) => ({ identifier: 'noop', payload: { i } }))
    const t0 = performance.now()
    for (let i = 0; i < N; i += BATCH) await utils.addJobs(specs.slice(i, i + BATCH))
    const enqueueS = (performance.now() - t0) / 1000
    let done = 0
    const t1 = performance.now()
    const runner = await run({
      connectionString: PG_URL,
      schema,
      concurrency: CONCURRENCY,
      logger,
      noHandleSignals: true,
      taskList: { noop: async () => void done++ },
    })
    await until(async () => done >= N, 600_000, 'graphile-worker: every job')
    const runS = (performance.now() - t1) / 1000
    await runner.stop()
    return { enqueue: N / enqueueS, e2e: N / runS }
  } finally {
    await utils.withPgClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))
    await utils.release()
  }
}

/** `{ enqueue, e2e }` jobs/s of pg-boss on the same shape. */
async function pgBoss() {
  const PgBoss = require('pg-boss')
  const schema = `bench_pgboss_${randomUUID().slice(0, 8)}`
  const boss = new PgBoss({ connectionString: PG_URL, schema })
  boss.on('error', () => {})
  await boss.start()
  try {
    await boss.createQueue('noop')
    const jobs = Array.from({ length: N }, (_, i) => ({ name: 'noop', data: { i } }))
    const t0 = performance.now()
    for (let i = 0; i < N; i += BATCH) await boss.insert(jobs.slice(i, i + BATCH))
    const enqueueS = (performance.now() - t0) / 1000
    let done = 0
    const t1 = performance.now()
    await boss.work('noop', { batchSize: CONCURRENCY, pollingIntervalSeconds: 0.5 }, async (batch) => {
      done += batch.length
    })
    await until(async () => done >= N, 900_000, 'pg-boss: every job')
    const runS = (performance.now() - t1) / 1000
    return { enqueue: N / enqueueS, e2e: N / runS }
  } finally {
    await boss.stop({ graceful: false, wait: true })
    const { Client } = require('pg')
    const c = new Client({ connectionString: PG_URL })
    await c.connect()
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await c.end()
  }
}

/** The bare `COPY` rate into the same table: what this machine's PostgreSQL caps inserts at. */
async function copyCap() {
  const { Client } = require('pg')
  const { config, cleanup } = await freshQueue('postgres')
  const p = await q.createQueueProvider(config)
  await p.close()
  const c = new Client({ connectionString: PG_URL })
  await c.connect()
  try {
    const t = `"${config.schema}"."QueueJob"`
    const t0 = performance.now()
    await c.query(`INSERT INTO ${t} ("id", "type", "payload", "options", "status", "priority", "maxRetries")
      SELECT gen_random_uuid(), 'bench:noop', json_build_object('i', g), '{}', 'pending', 0, 3 FROM generate_series(1, ${N}) g`)
    return N / ((performance.now() - t0) / 1000)
  } finally {
    await c.end()
    await cleanup()
  }
}

async function run(kinds = ['postgres', 'sqlite']) {
  const rows = []
  if (kinds.includes('postgres') && !process.env.BENCH_NO_PEERS) {
    const g = await graphileWorker()
    rows.push({ name: `graphile-worker: addJobs, ${fmt(N)} no-op jobs in batches of ${BATCH}`, value: fmt(g.enqueue), unit: 'jobs/s' })
    rows.push({ name: `graphile-worker: end to end, ${fmt(N)} no-op jobs, run({ concurrency: ${CONCURRENCY} })`, value: fmt(g.e2e), unit: 'jobs/s' })
    const b = await pgBoss()
    rows.push({ name: `pg-boss: insert, ${fmt(N)} no-op jobs in batches of ${BATCH}`, value: fmt(b.enqueue), unit: 'jobs/s' })
    rows.push({ name: `pg-boss: end to end, ${fmt(N)} no-op jobs, work({ batchSize: ${CONCURRENCY} }) polling 0.5 s`, value: fmt(b.e2e), unit: 'jobs/s' })
    rows.push({ name: `postgres: one INSERT … SELECT of ${fmt(N)} rows into QueueJob (the insert cap)`, value: fmt(await copyCap()), unit: 'rows/s' })
  }
  for (const kind of kinds) {
    const t = await throughput(kind)
    rows.push({ name: `${kind}: enqueueBulk, ${fmt(N)} no-op jobs in batches of ${BATCH}`, value: fmt(t.enqueue), unit: 'jobs/s' })
    rows.push({ name: `${kind}: end to end, ${fmt(N)} no-op jobs, one Worker at concurrency ${CONCURRENCY}`, value: fmt(t.e2e), unit: 'jobs/s', target: kind === 'sqlite' ? '≥ 20,000' : '≥ 3× graphile-worker' })
    const l = await latency(kind)
    rows.push({ name: `${kind}: enqueue → handler start at ${LATENCY_RATE} jobs/s offered, p50 / p99`, value: `${l.p50.toFixed(2)} / ${l.p99.toFixed(2)}`, unit: 'ms', target: kind === 'postgres' ? '≤ 2 / ≤ 10' : '' })
    const cpu = await idleCpu(kind)
    rows.push({ name: `${kind}: idle worker CPU, 5 s after 1 s settling (whole process)`, value: cpu.toFixed(2), unit: '% of a core', target: '< 1' })
  }
  return rows
}

module.exports = { run }

if (require.main === module) {
  const only = process.argv[2]
  run(only ? [only] : undefined)
    .then((rows) => {
      console.log('\n| benchmark | figure | unit | target |\n| --- | --- | --- | --- |')
      for (const r of rows) console.log(`| ${r.name} | ${r.value} | ${r.unit || ''} | ${r.target || ''} |`)
    })
    .catch((e) => {
      console.error(e)
      process.exit(1)
    })
}
