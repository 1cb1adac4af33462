'use strict'
// One worker process of a database-backed benchmark (bench/postgres.js forks it): graphile-worker,
// pg-boss or our Worker on a postgres/sqlite provider, so that a worker never shares an event
// loop with the producer. Protocol (IPC): parent sends { setup }, child answers 'ready'; parent
// sends 'go', child starts the worker and then reports either { drained, seconds } once `n` no-op
// jobs are handled and the database shows none left (mode 'drain'), or, in mode 'latency',
// 'started', { handled } for each 'count', and { starts: [payload.k, handler-start wall ms] }
// when sent 'finish'; in mode 'idle', { cpu } (% of one core over 5 s, after 1 s settling).

const { performance } = require('node:perf_hooks')

/** Wall-clock ms with sub-ms resolution, comparable across processes on one host. */
const { hostNow } = require('./timing.js')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
/** process.send, resolved once the message is handed to the channel (a large one takes a while). */
const send = (m) => new Promise((resolve, reject) => process.send(m, (e) => (e ? reject(e) : resolve())))

// ---- the systems, worker side -------------------------------------------------------------
// Each: async prepare(cfg, onJob) -> { start(), left() -> jobs not finished in the DB, stop() }.
// `onJob(payload)` is called at handler start with the job's payload.

const systems = {
  async graphile(cfg, onJob) {
    const { Pool } = require('pg')
    const { run, Logger } = require('graphile-worker')
    const pgPool = new Pool({ connectionString: cfg.databaseUrl, max: cfg.concurrency + 2 })
    pgPool.on('error', (e) => console.error(`*** graphile-worker pool: ${e.message}`))
    pgPool.on('connect', (client) => client.on('error', (e) => console.error(`*** graphile-worker connection: ${e.message}`)))
    await pgPool.query('select 1')
    const silent = new Logger(() => () => {})
    let runner
    return {
      async start() {
        runner = await run({
          pgPool,
          schema: cfg.schema,
          concurrency: cfg.concurrency,
          noHandleSignals: true,
          logger: silent,
          taskList: { noop: async (payload) => onJob(payload) },
        })
      },
      async left() {
        const r = await pgPool.query(`select count(*)::int as n from "${cfg.schema}"._private_jobs`)
        return r.rows[0].n
      },
      async stop() {
        await runner.stop()
        await pgPool.end()
      },
    }
  },

  async pgboss(cfg, onJob) {
    const m = await import('pg-boss')
    const PgBoss = m.PgBoss || m.default // a named export from 11 on, the default before
    const boss = new PgBoss({ connectionString: cfg.databaseUrl, schema: cfg.schema })
    boss.on('error', (e) => console.error(`*** pg-boss worker: ${e.message}`))
    await boss.start()
    const { Pool } = require('pg')
    const pool = new Pool({ connectionString: cfg.databaseUrl, max: 1 })
    return {
      async start() {
        await boss.work('noop', { batchSize: 24, pollingIntervalSeconds: 0.5, ...cfg.workOptions }, async (jobs) => {
          for (const j of jobs) onJob(j.data)
        })
      },
      async left() {
        const r = await pool.query(`select count(*)::int as n from "${cfg.schema}".job where name = 'noop' and state <> 'completed'`)
        return r.rows[0].n
      },
      async stop() {
        await boss.stop({ graceful: true, wait: true })
        await pool.end()
      },
    }
  },

  async ours(cfg, onJob) {
    const q = require('../index.js')
    q.registerJobHandler('noop', async (job) => onJob(job.payload))
    const provider = await q.createQueueProvider(cfg.provider)
    const worker = new q.Worker({ provider, config: cfg.concurrency ? { concurrency: cfg.concurrency } : {} })
    let running
    return {
      async start() {
        running = worker.start()
      },
      async left() {
        const s = await provider.getStats()
        return s.pending + s.processing + s.scheduled + s.failed
      },
      async stop() {
        await worker.stop()
        await running
        const stats = worker.getStats()
        await provider.close()
        if (stats.failed !== 0) throw new Error(`our worker: ${stats.failed} no-op jobs failed`)
      },
    }
  },
}

// ---- protocol ------------------------------------------------------------------------------

const next = (() => {
  const queue = []
  const waiters = []
  process.on('message', (m) => (waiters.length ? waiters.shift()(m) : queue.push(m)))
  return () => new Promise((r) => (queue.length ? r(queue.shift()) : waiters.push(r)))
})()

async function main() {
  const { setup: cfg } = await next()
  let handled = 0
  const starts = [] // [payload.k, handler-start wall ms]
  const onJob =
    cfg.mode === 'latency'
      ? (payload) => {
          starts.push([payload.k, hostNow()])
          handled++
        }
      : () => {
          handled++
        }
  const sys = await systems[cfg.system](cfg, onJob)
  process.send('ready')
  if ((await next()) !== 'go') throw new Error('expected go')

  if (cfg.mode === 'idle') {
    await sys.start()
    await sleep(1000) // settle
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    await sleep(5000)
    const c = process.cpuUsage(c0)
    const cpu = ((c.user + c.system) / 1000 / (performance.now() - t0)) * 100
    await send({ cpu, handled })
  } else if (cfg.mode === 'latency') {
    await sys.start()
    await sleep(300) // settle: connections up, LISTEN in place
    process.send('started')
    for (let m; (m = await next()) !== 'finish'; ) {
      if (m !== 'count') throw new Error(`unexpected message ${JSON.stringify(m)}`)
      process.send({ handled })
    }
    await send({ starts, handled })
  } else {
    global.gc?.()
    const t0 = performance.now()
    await sys.start()
    const give = t0 + cfg.timeoutMs
    while (handled < cfg.n) {
      if (performance.now() > give) throw new Error(`${cfg.system}: ${handled}/${cfg.n} jobs handled after ${cfg.timeoutMs} ms`)
      await sleep(1)
    }
    // Every handler has started; now wait until the database agrees that every job is finished.
    for (;;) {
      const left = await sys.left()
      if (left === 0) break
      if (performance.now() > give) throw new Error(`${cfg.system}: ${left} jobs still unfinished in the database after ${cfg.timeoutMs} ms`)
      await sleep(2)
    }
    const seconds = (performance.now() - t0) / 1000
    await send({ drained: true, seconds, handled })
  }
  await sys.stop()
  process.disconnect()
}

main().catch((e) => {
  process.send?.({ error: e && e.stack ? e.stack : String(e) })
  console.error(e)
  process.exit(1)
})
