'use strict'
// The cost of ctx.log lines kept on the job: a Worker draining no-op jobs that log 0, 1 and
// 10 lines each, on memory and PostgreSQL; prints jobs/s (median of BENCH_LOGS_RUNS runs).
// Run: node scripts/ensure-built.js --release && node bench/logs.js
// BENCH_LOGS_JOBS (memory jobs per run; PostgreSQL does a fifth), BENCH_LOGS_RUNS, QUEUE_TEST_PG_URL.
// ctx.log also writes each line to stderr at `info`: keep that out of the measurement (the
// level is read when the addon loads).
process.env.CHAASKIT_QUEUE_LOG = process.env.CHAASKIT_QUEUE_LOG || 'warn'
const q = require('..')
const { Client } = require('pg')

const JOBS = Number(process.env.BENCH_LOGS_JOBS) || 20000
const RUNS = Number(process.env.BENCH_LOGS_RUNS) || 3
const PG_URL = process.env.QUEUE_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test'
const LINES = [0, 1, 10]
const CONCURRENCY = 10

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1]

/** Jobs/s of one drain of `n` jobs whose handler logs `lines` lines. */
async function drain(p, n, lines) {
  const type = `logs${lines}`
  q.registerJobHandler(type, (job, ctx) => {
    for (let i = 0; i < lines; i++) ctx.log('line %d of job %s', i, job.id)
  })
  const items = Array.from({ length: n }, (_, i) => ({ type, payload: { i } }))
  for (let i = 0; i < n; i += 1000) await p.enqueueBulk(items.slice(i, i + 1000))
  const w = new q.Worker({ provider: p, config: { concurrency: CONCURRENCY, pollInterval: 10 } })
  let done = 0
  let finished
  const all = new Promise((r) => (finished = r))
  w.on('completed', () => {
    if (++done === n) finished()
  })
  const t = process.hrtime.bigint()
  const running = w.start()
  await all
  const s = Number(process.hrtime.bigint() - t) / 1e9
  await w.stop()
  await running
  q.unregisterJobHandler(type)
  return n / s
}

async function system(name, open, n, cleanup) {
  const row = { provider: name }
  for (const lines of LINES) {
    const rates = []
    for (let r = 0; r < RUNS; r++) {
      const p = await open()
      try {
        rates.push(await drain(p, n, lines))
      } finally {
        await p.close()
        await cleanup()
      }
    }
    row[`${lines} lines`] = Math.round(median(rates))
  }
  console.log(`${name}: ${LINES.map((l) => `${l} line${l === 1 ? '' : 's'}/job ${row[`${l} lines`]} jobs/s`).join(', ')} (${n} no-op jobs, concurrency ${CONCURRENCY}, median of ${RUNS})`)
}

;(async () => {
  await system('memory', () => q.createQueueProvider({ type: 'memory' }), JOBS, async () => {})
  const schema = `bench_logs_${process.pid}`
  const c = new Client({ connectionString: PG_URL })
  try {
    await c.connect()
  } catch (e) {
    console.log(`postgres: skipped (${e.message})`)
    return
  }
  try {
    await system('postgres', () => q.createQueueProvider({ type: 'postgres', databaseUrl: PG_URL, schema }), Math.round(JOBS / 5), () => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))
  } finally {
    await c.end()
  }
})().catch((e) => {
  console.error(e)
  process.exit(1)
})
