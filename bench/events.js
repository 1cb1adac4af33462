'use strict'
// Events (issue #13), three figures:
//
// 1. listener cost: no-op worker throughput on the memory provider (concurrency 50,
//    BENCH_EVENTS_N jobs pre-enqueued, default 100000) with 0 listeners and with a no-op
//    listener on every event, runs interleaved, median of BENCH_EVENTS_RUNS (3); with
//    BENCH_EVENTS_BASELINE=<checkout of another build> the same 0-listener run on that build
//    (e.g. main before this change) in the same process.
// 2. cross-process `completed` latency on PostgreSQL: a worker in a child process
//    (bench/events-worker.js), `createQueueEvents` here; 200 jobs/s offered for 5 s; latency
//    from the handler's return (the time it returns in its result) to the listener's call.
// 3. the publishing cost on PostgreSQL: no-op worker throughput (in this process, concurrency
//    24, BENCH_EVENTS_PG_N jobs, default 20000) with publishEvents true vs false.
//
// `node --expose-gc bench/events.js` on a release build (`node scripts/ensure-built.js --release`).
// BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); BENCH_EVENTS_ONLY
// (comma list: cost, latency, publish).

const { fork } = require('node:child_process')
const { performance } = require('node:perf_hooks')
const path = require('node:path')
const { pace, percentile } = require('./timing.js')
const q = require('../index.js')

const N = Number(process.env.BENCH_EVENTS_N || 100000)
const RUNS = Number(process.env.BENCH_EVENTS_RUNS || 3)
const PG_N = Number(process.env.BENCH_EVENTS_PG_N || 20000)
const DATABASE_URL = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
const ONLY = process.env.BENCH_EVENTS_ONLY ? process.env.BENCH_EVENTS_ONLY.split(',') : null
const section = (s) => !ONLY || ONLY.includes(s)
const RATE = 200
const LATENCY_MS = 5000
const EVENTS = ['active', 'completed', 'failed', 'dead', 'progress', 'stalled']

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const fmt = (n) => Math.round(n).toLocaleString('en-US')
const median = (xs) => xs.slice().sort((a, b) => a - b)[(xs.length - 1) >> 1]
const gc = () => global.gc && global.gc()
let schemaN = 0
const freshSchema = () => `chaaskit_bench_events_${process.pid}_${schemaN++}`

async function until(done, ms, what) {
  const end = performance.now() + ms
  while (!(await done())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(1)
  }
}

/** No-op jobs/s through a Worker of package `pkg` on `providerConfig`. */
async function throughput(pkg, providerConfig, n, concurrency, listeners) {
  const type = `bench:events:${schemaN++}`
  pkg.registerJobHandler(type, async () => {})
  const p = await pkg.createQueueProvider(providerConfig)
  const w = new pkg.Worker({ provider: p, config: { concurrency, pollInterval: 50 } })
  let calls = 0
  if (listeners) for (const e of EVENTS) w.on(e, () => calls++)
  for (let i = 0; i < n; i += 10000) {
    await p.enqueueBulk(Array.from({ length: Math.min(10000, n - i) }, () => ({ type, payload: null })))
  }
  gc()
  const t = performance.now()
  const running = w.start()
  await until(() => w.getStats().processed >= n, 600000, `${n} jobs`)
  const s = (performance.now() - t) / 1000
  await w.stop()
  await running
  await p.close()
  pkg.unregisterJobHandler(type)
  if (listeners && calls < 2 * n) throw new Error(`listeners were called ${calls} times for ${n} jobs`)
  return n / s
}

async function cost() {
  const baseline = process.env.BENCH_EVENTS_BASELINE ? require(path.resolve(process.env.BENCH_EVENTS_BASELINE, 'index.js')) : null
  const rows = { none: [], all: [], baseline: [] }
  for (let r = 0; r < RUNS; r++) {
    rows.none.push(await throughput(q, { type: 'memory' }, N, 50, false))
    rows.all.push(await throughput(q, { type: 'memory' }, N, 50, true))
    if (baseline) rows.baseline.push(await throughput(baseline, { type: 'memory' }, N, 50, false))
  }
  console.log(`\nlistener cost: memory provider, no-op handlers, concurrency 50, ${fmt(N)} jobs, median of ${RUNS} interleaved runs`)
  console.log(`  0 listeners:                  ${fmt(median(rows.none))} jobs/s   (runs: ${rows.none.map(fmt).join(', ')})`)
  console.log(`  a listener on all 6 events:   ${fmt(median(rows.all))} jobs/s   (runs: ${rows.all.map(fmt).join(', ')})`)
  if (baseline) console.log(`  baseline build, 0 listeners:  ${fmt(median(rows.baseline))} jobs/s   (runs: ${rows.baseline.map(fmt).join(', ')}; ${process.env.BENCH_EVENTS_BASELINE})`)
}

async function latency() {
  const config = { type: 'postgres', databaseUrl: DATABASE_URL, schema: freshSchema() }
  const events = await q.createQueueEvents(config)
  const lat = []
  events.on('completed', (_job, result) => lat.push(Date.now() - result.at))
  const child = fork(path.join(__dirname, 'events-worker.js'), [JSON.stringify(config)], { stdio: 'inherit' })
  await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (c) => reject(new Error(`worker exited with ${c}`)))
  })
  const p = events.provider
  // Warm up (connections, the first statements).
  await Promise.all(Array.from({ length: 20 }, () => p.enqueue('stamp', {})))
  await until(() => lat.length >= 20, 30000, 'the warm-up')
  lat.length = 0
  const { sent, seconds } = await pace(RATE, LATENCY_MS, () => {
    p.enqueue('stamp', {}).catch((e) => console.error(e))
  })
  await until(() => lat.length >= sent, 30000, `${sent} completed events`)
  child.kill()
  await dropSchema(config.schema, events)
  const s = lat.slice().sort((a, b) => a - b)
  console.log(`\ncross-process 'completed' on PostgreSQL: ${sent} jobs at ${RATE}/s offered over ${seconds.toFixed(1)} s; worker in a child process, listener here`)
  console.log(`  handler return -> listener: p50 ${percentile(s, 50)} ms, p99 ${percentile(s, 99)} ms, max ${s[s.length - 1]} ms`)
}

async function dropSchema(schema, events) {
  await events.close()
  const { Client } = require('pg')
  const c = new Client({ connectionString: DATABASE_URL })
  await c.connect()
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await c.end()
}

async function publish() {
  const rows = { on: [], off: [] }
  const schemas = []
  for (let r = 0; r < RUNS; r++) {
    for (const on of [true, false]) {
      const schema = freshSchema()
      schemas.push(schema)
      const config = { type: 'postgres', databaseUrl: DATABASE_URL, schema, publishEvents: on }
      rows[on ? 'on' : 'off'].push(await throughput(q, config, PG_N, 24, false))
    }
  }
  const { Client } = require('pg')
  const c = new Client({ connectionString: DATABASE_URL })
  await c.connect()
  for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
  await c.end()
  console.log(`\npublishing cost on PostgreSQL: no-op worker in this process, concurrency 24, ${fmt(PG_N)} jobs, median of ${RUNS}`)
  console.log(`  publishEvents true:   ${fmt(median(rows.on))} jobs/s   (runs: ${rows.on.map(fmt).join(', ')})`)
  console.log(`  publishEvents false:  ${fmt(median(rows.off))} jobs/s   (runs: ${rows.off.map(fmt).join(', ')})`)
}

async function main() {
  if (section('cost')) await cost()
  if (section('latency')) await latency()
  if (section('publish')) await publish()
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
