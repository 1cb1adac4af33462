'use strict'
// Worker benchmarks (issue #3), our package side by side with BullMQ and a plain in-process
// JavaScript queue (bench/plain-queue.js):
//
// 1. throughput: no-op async handlers, jobs pre-enqueued, concurrency 50 and 5, end-to-end
//    jobs/s from worker start until every job is processed (acknowledged);
// 2. enqueue → handler-start latency with 1,000 jobs/s offered for ~5 s (p50 / p99 / max);
// 3. idle CPU of a started worker on an empty memory provider (% of one core).
//
// `node bench/worker.js` prints the rows; `run()` returns them for bench/index.js. BullMQ needs
// Redis on 127.0.0.1:6379 (REDIS_HOST / REDIS_PORT to change); without it its rows are skipped
// loudly. BENCH_WORKER_N (default 100000) and BENCH_BULLMQ_N (default: the same) set the job counts;
// BENCH_WORKER_EVENTS=1 adds a no-op listener on every worker event.

const { performance } = require('node:perf_hooks')
const net = require('node:net')
const q = require('../index.js')
const { PlainQueue, PlainWorker } = require('./plain-queue.js')
const { pace, percentile } = require('./timing.js')

const N = Number(process.env.BENCH_WORKER_N || 100000)
const BULLMQ_N = Number(process.env.BENCH_BULLMQ_N || N)
const CONCURRENCIES = [50, 5]
// BENCH_WORKER_EVENTS=1: a no-op listener on every worker event (the cost of events).
const LISTEN = process.env.BENCH_WORKER_EVENTS === '1'
const LATENCY_RATE = 1000 // jobs/s offered
const LATENCY_MS = 5000
const LATENCY_CONCURRENCY = 5
const REDIS = { host: process.env.REDIS_HOST || '127.0.0.1', port: Number(process.env.REDIS_PORT || 6379) }

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const fmt = (n) => Math.round(n).toLocaleString('en-US')
const gc = () => global.gc && global.gc()

/** Resolves once `done()` is true, checking every millisecond; rejects after `timeoutMs`. */
async function until(done, timeoutMs, what) {
  const give = performance.now() + timeoutMs
  while (!done()) {
    if (performance.now() > give) throw new Error(`timed out waiting for ${what}`)
    await sleep(1)
  }
}

// ---- the three systems -------------------------------------------------------------------
// Each has `throughput(concurrency, n)` -> jobs/s and `latency()` -> { lat: number[], sent, seconds }.

const ours = {
  label: '@chaaskit/queue (memory + Worker)',
  n: N,
  runs: 3,
  async throughput(concurrency, n) {
    const type = `bench:noop:${concurrency}:${n}`
    q.registerJobHandler(type, async () => {})
    const p = await q.createQueueProvider({ type: 'memory' })
    const w = new q.Worker({ provider: p, config: { concurrency } })
    if (LISTEN) for (const e of ['active', 'completed', 'failed', 'dead', 'progress']) w.on(e, () => {})
    for (let i = 0; i < n; i += 10000) {
      await p.enqueueBulk(Array.from({ length: Math.min(10000, n - i) }, () => ({ type, payload: null })))
    }
    gc()
    const t = performance.now()
    const running = w.start()
    await until(() => w.getStats().processed >= n, 120000, `${n} jobs through our worker`)
    const s = (performance.now() - t) / 1000
    const stats = w.getStats()
    await w.stop()
    await running
    await p.close()
    q.unregisterJobHandler(type)
    if (stats.failed !== 0) throw new Error(`our worker: ${stats.failed} no-op jobs failed`)
    return n / s
  },
  async latency() {
    const type = 'bench:latency'
    const lat = []
    q.registerJobHandler(type, async (job) => {
      lat.push(performance.now() - job.payload.t)
    })
    const p = await q.createQueueProvider({ type: 'memory' })
    const w = new q.Worker({ provider: p, config: { concurrency: LATENCY_CONCURRENCY } })
    const running = w.start()
    await sleep(200)
    const errors = []
    const r = await pace(LATENCY_RATE, LATENCY_MS, () => {
      p.enqueue(type, { t: performance.now() }).catch((e) => errors.push(e))
    })
    await until(() => w.getStats().processed >= r.sent, 10000, 'latency jobs').catch(() => {})
    await w.stop()
    await running
    await p.close()
    q.unregisterJobHandler(type)
    if (errors.length) throw errors[0]
    return { lat, ...r }
  },
}

const plain = {
  label: 'plain JS queue (bench/plain-queue.js)',
  n: N,
  runs: 3,
  async throughput(concurrency, n) {
    const type = 'noop'
    const queue = new PlainQueue()
    const w = new PlainWorker(queue, new Map([[type, async () => {}]]), { concurrency })
    for (let i = 0; i < n; i += 10000) {
      queue.enqueueBulk(Array.from({ length: Math.min(10000, n - i) }, () => ({ type, payload: null })))
    }
    gc()
    const t = performance.now()
    w.start()
    await until(() => queue.completed + queue.failed >= n, 120000, `${n} jobs through the plain JS queue`)
    const s = (performance.now() - t) / 1000
    await w.stop()
    if (queue.failed !== 0) throw new Error(`plain queue: ${queue.failed} no-op jobs failed`)
    return n / s
  },
  async latency() {
    const type = 'latency'
    const lat = []
    const queue = new PlainQueue()
    const w = new PlainWorker(
      queue,
      new Map([
        [
          type,
          async (job) => {
            lat.push(performance.now() - job.payload.t)
          },
        ],
      ]),
      { concurrency: LATENCY_CONCURRENCY },
    )
    w.start()
    await sleep(200)
    const r = await pace(LATENCY_RATE, LATENCY_MS, () => queue.enqueue(type, { t: performance.now() }))
    await until(() => queue.completed >= r.sent, 10000, 'latency jobs').catch(() => {})
    await w.stop()
    return { lat, ...r }
  },
}

function redisReachable() {
  return new Promise((resolve) => {
    const s = net.connect(REDIS.port, REDIS.host)
    const done = (ok, why) => {
      s.destroy()
      resolve(ok ? null : why)
    }
    s.setTimeout(1000, () => done(false, 'connect timeout'))
    s.on('connect', () => done(true))
    s.on('error', (e) => done(false, e.message))
  })
}

const bullmq = {
  label: 'BullMQ (Redis, same host)',
  n: BULLMQ_N,
  runs: 1, // ~10 s a run
  connection: { host: REDIS.host, port: REDIS.port, maxRetriesPerRequest: null },
  // Completed jobs are trimmed to the newest 1,000, like the memory provider's default
  // maxHistorySize (BullMQ's own default keeps every completed job in Redis).
  jobOpts: { removeOnComplete: { count: 1000 } },
  queueName: (what) => `chaaskit-bench-${what}-${process.pid}-${Date.now()}`,
  async throughput(concurrency, n) {
    const { Queue, Worker } = require('bullmq')
    const name = this.queueName(`c${concurrency}`)
    const queue = new Queue(name, { connection: this.connection })
    let done = 0
    let failed = 0
    let worker
    try {
      await queue.waitUntilReady()
      for (let i = 0; i < n; i += 1000) {
        await queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, () => ({ name: 'noop', data: {}, opts: this.jobOpts })))
      }
      worker = new Worker(name, async () => {}, { connection: this.connection, concurrency, autorun: false })
      worker.on('completed', () => done++)
      worker.on('failed', () => {
        done++
        failed++
      })
      worker.on('error', (e) => console.error(`*** BullMQ worker error: ${e.message}`))
      await worker.waitUntilReady()
      gc()
      const t = performance.now()
      worker.run().catch((e) => console.error(`*** BullMQ worker.run: ${e.message}`))
      await until(() => done >= n, 120000, `${n} jobs through BullMQ`)
      const s = (performance.now() - t) / 1000
      if (failed !== 0) throw new Error(`BullMQ: ${failed} no-op jobs failed`)
      return n / s
    } finally {
      if (worker) await worker.close()
      await queue.obliterate({ force: true }).catch((e) => console.error(`*** BullMQ obliterate ${name}: ${e.message}`))
      await queue.close()
    }
  },
  async latency() {
    const { Queue, Worker } = require('bullmq')
    const name = this.queueName('latency')
    const queue = new Queue(name, { connection: this.connection })
    const lat = []
    let worker
    try {
      await queue.waitUntilReady()
      worker = new Worker(
        name,
        async (job) => {
          lat.push(performance.now() - job.data.t)
        },
        { connection: this.connection, concurrency: LATENCY_CONCURRENCY },
      )
      worker.on('error', (e) => console.error(`*** BullMQ worker error: ${e.message}`))
      await worker.waitUntilReady()
      await sleep(200)
      const errors = []
      const r = await pace(LATENCY_RATE, LATENCY_MS, () => {
        queue.add('lat', { t: performance.now() }, this.jobOpts).catch((e) => errors.push(e))
      })
      await until(() => lat.length >= r.sent, 10000, 'latency jobs').catch(() => {})
      if (errors.length) throw errors[0]
      return { lat, ...r }
    } finally {
      if (worker) await worker.close()
      await queue.obliterate({ force: true }).catch((e) => console.error(`*** BullMQ obliterate ${name}: ${e.message}`))
      await queue.close()
    }
  },
}

// ---- idle CPU ------------------------------------------------------------------------------

/** CPU time of this process over `ms` of wall time, as % of one core. */
async function cpuPercentOver(ms) {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await sleep(ms)
  const c = process.cpuUsage(c0)
  const wall = performance.now() - t0
  return ((c.user + c.system) / 1000 / wall) * 100
}

async function idleCpu() {
  gc()
  await sleep(1000)
  // The same process with no worker, for reference (timers, GC, the addon's idle threads).
  const baseline = await cpuPercentOver(5000)
  const p = await q.createQueueProvider({ type: 'memory' })
  q.registerJobHandler('bench:idle', async () => {})
  const w = new q.Worker({ provider: p, config: {} }) // defaults: concurrency 5, pollInterval 1000
  const running = w.start()
  await sleep(1000) // settle
  const before = w.getStats()
  const withWorker = await cpuPercentOver(5000)
  const after = w.getStats()
  await w.stop()
  await running
  await p.close()
  q.unregisterJobHandler('bench:idle')
  if (after.processed !== before.processed || after.active !== 0 || !before.running) {
    throw new Error(`idle CPU: the worker was not idle (${JSON.stringify(before)} → ${JSON.stringify(after)})`)
  }
  return [
    {
      name: 'idle worker CPU, empty memory provider, 5 s after 1 s settling (whole process)',
      value: withWorker.toFixed(3),
      unit: '% of one core',
      target: '< 1',
    },
    { name: 'same process, no worker started (reference)', value: baseline.toFixed(3), unit: '% of one core', target: '' },
  ]
}

// ---- run ------------------------------------------------------------------------------------

async function run() {
  const rows = []
  const systems = [ours, plain]
  const why = await redisReachable()
  if (why === null) systems.push(bullmq)
  else {
    if (process.env.CI === 'true') throw new Error(`Redis on ${REDIS.host}:${REDIS.port} is required in CI: ${why}`)
    console.error(`*** worker bench: Redis on ${REDIS.host}:${REDIS.port} unavailable (${why}); skipping the BullMQ rows`)
  }

  rows.push(...(await idleCpu()))

  // Warm each system up (JIT, connections) on a small run that is not reported.
  for (const sys of systems) await sys.throughput(50, Math.min(10000, sys.n))

  const table = new Map(systems.map((s) => [s, {}]))
  for (const c of CONCURRENCIES) {
    for (const sys of systems) {
      const runs = []
      for (let i = 0; i < sys.runs; i++) runs.push(await sys.throughput(c, sys.n))
      runs.sort((a, b) => a - b)
      const v = runs[(runs.length - 1) >> 1] // median (lower median for an even count)
      table.get(sys)[`c${c}`] = v
      const how = sys.runs > 1 ? `median of ${sys.runs} runs (${runs.map(fmt).join(', ')})` : '1 run'
      const target = sys === ours ? (c >= 50 ? '≥ 100,000' : '≥ 50,000') : ''
      rows.push({ name: `worker, no-op handlers, ${fmt(sys.n)} jobs pre-enqueued, concurrency ${c}, ${how}: ${sys.label}`, value: fmt(v), unit: 'jobs/s', target })
    }
  }

  for (const sys of systems) {
    const { lat, sent, seconds } = await sys.latency()
    const sorted = lat.slice().sort((a, b) => a - b)
    const [p50, p99, max] = [percentile(sorted, 50), percentile(sorted, 99), sorted[sorted.length - 1]]
    table.get(sys).lat = sorted.length ? `${p50.toFixed(3)} / ${p99.toFixed(3)} / ${max.toFixed(3)}` : 'no job handled'
    const offered = `${fmt(sent / seconds)} jobs/s offered for ${seconds.toFixed(1)} s, ${fmt(lat.length)}/${fmt(sent)} handled`
    rows.push({
      name: `enqueue → handler start, ${offered}, concurrency ${LATENCY_CONCURRENCY}, p50 / p99 / max: ${sys.label}`,
      value: table.get(sys).lat,
      unit: 'ms',
      target: sys === ours ? '≤ 1 / ≤ 5 / —' : '',
    })
  }

  console.log(`\nWorker, side by side (no-op async handlers; end-to-end jobs/s from worker start until all processed):\n`)
  console.log(`| system | jobs | runs | concurrency 50 | concurrency 5 | latency at ${fmt(LATENCY_RATE)} jobs/s, p50 / p99 / max |`)
  console.log('| --- | --- | --- | --- | --- | --- |')
  for (const sys of systems) {
    const r = table.get(sys)
    console.log(`| ${sys.label} | ${fmt(sys.n)} | ${sys.runs === 1 ? '1' : `median of ${sys.runs}`} | ${fmt(r.c50)} jobs/s | ${fmt(r.c5)} jobs/s | ${r.lat} ms |`)
  }
  return rows
}

module.exports = { run, systems: { ours, plain, bullmq } }

if (require.main === module) require('./rows.js').runStandalone(run)
