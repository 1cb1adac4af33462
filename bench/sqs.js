'use strict'
// SQS requests per job when draining a backlog of 1,000 jobs, against moto_server, counted by a
// loopback HTTP proxy between the provider and moto (send, receive and delete together).
// Drained by a Worker (concurrency 10, no-op handler); SQS_BENCH_DRAIN=loop drains with
// receive(10) + acknowledge instead. `node bench/sqs.js` prints the rows; `run()` returns them
// for bench/index.js.

const { startMoto, CountingProxy, sqsClient, createQueue, REGION } = require('../__test__/moto.js')
const queue = require('../index.js')

const JOBS = 1000
const TARGETS = { single: 1.3, bulk: 0.35 }

/** Enqueue `JOBS` jobs, one `enqueue` each (16 in flight) or with `enqueueBulk`. */
async function fill(p, bulk) {
  if (bulk) {
    await p.enqueueBulk(Array.from({ length: JOBS }, (_, i) => ({ type: 'bench:sqs', payload: { i } })))
    return
  }
  let next = 0
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < JOBS) {
        const i = next++
        await p.enqueue('bench:sqs', { i })
      }
    }),
  )
}

/** Drain with `receive(10)` and concurrent `acknowledge`s. */
async function drainLoop(p) {
  let done = 0
  let empty = 0
  while (done < JOBS && empty < 5) {
    const got = await p.receive(10, 1)
    if (got.length === 0) empty++
    await Promise.all(got.map((j) => p.acknowledge(j.receiptHandle)))
    done += got.length
  }
  return done
}

/** Drain with a Worker (concurrency 10) running a no-op handler. */
async function drainWorker(p) {
  let done = 0
  queue.registerJobHandler('bench:sqs', async () => {
    done++
  })
  const w = new queue.Worker({ provider: p, config: { concurrency: 10, pollInterval: 100, shutdownTimeout: 10_000 } })
  const running = w.start()
  const deadline = Date.now() + 120_000
  while (w.getStats().succeeded < JOBS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  await w.stop()
  await running
  queue.unregisterJobHandler('bench:sqs')
  return done
}

async function measure(moto, admin, { bulk, drain }) {
  const url = await createQueue(admin, 'bench')
  const proxy = await new CountingProxy(moto.endpoint).start()
  const p = await queue.createQueueProvider({ type: 'sqs', region: REGION, queueUrl: url, endpoint: proxy.endpoint })
  try {
    proxy.reset()
    const t0 = Date.now()
    await fill(p, bulk)
    const t1 = Date.now()
    const drained = drain === 'worker' ? await drainWorker(p) : await drainLoop(p)
    const t2 = Date.now()
    if (drained < JOBS) throw new Error(`drained only ${drained} of ${JOBS} jobs`)
    const perJob = proxy.total / JOBS
    const target = bulk ? TARGETS.bulk : TARGETS.single
    const how = bulk ? 'enqueueBulk' : 'one by one'
    return {
      name: `sqs: requests per job, ${JOBS} jobs enqueued ${how}, drained by ${drain === 'worker' ? 'a Worker' : 'receive+acknowledge'}`,
      value: Number(perJob.toFixed(3)),
      unit: 'requests/job',
      target: `<= ${target}`,
      ok: perJob <= target,
      detail: { ...proxy.counts, enqueueMs: t1 - t0, drainMs: t2 - t1 },
    }
  } finally {
    await p.close()
    await proxy.close()
  }
}

async function run() {
  const moto = await startMoto()
  if (!moto) return []
  const admin = sqsClient(moto.endpoint)
  const rows = []
  try {
    // moto slows as a queue grows (each run takes 1–2 minutes), so one drain path by default.
    const drain = process.env.SQS_BENCH_DRAIN === 'loop' ? 'loop' : 'worker'
    for (const bulk of [false, true]) rows.push(await measure(moto, admin, { bulk, drain }))
  } finally {
    admin.destroy()
    await moto.stop()
  }
  return rows
}

module.exports = { run }

if (require.main === module) {
  run().then(
    (rows) => {
      for (const r of rows) {
        console.log(`${r.ok ? 'ok  ' : 'MISS'} ${r.name}: ${r.value} ${r.unit} (target ${r.target}) ${JSON.stringify(r.detail)}`)
      }
      if (rows.some((r) => !r.ok)) process.exitCode = 1
    },
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
}
