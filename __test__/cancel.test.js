'use strict'
// cancelJob of a running job: its ctx.signal aborts (reason names the cancel), the job ends
// `cancelled` (no failed/completed/dead event, not retried), and the worker's slot frees when
// the handler returns. In-process on memory, sqlite and postgres; across processes on
// PostgreSQL (NOTIFY, and the heartbeat when the notification never comes).
const test = require('node:test')
const assert = require('node:assert/strict')
const { Client } = require('pg')
const q = require('..')
const { PG_URL, child, pg, sqlite, sleep, until } = require('./events-helpers.js')

const kinds = {
  memory: async () => ({ type: 'memory' }),
  sqlite: async () => sqlite(),
  postgres: async (extra = {}) => pg('cancel', extra),
}

test.afterEach(() => q.clearJobHandlers())

for (const kind of ['memory', 'sqlite', 'postgres']) {
  test(`${kind}: cancelJob of a running job aborts its signal; the job ends cancelled, not failed or retried`, async (t) => {
    const p = await q.createQueueProvider(await kinds[kind]())
    const w = new q.Worker({ provider: p, config: { concurrency: 1, pollInterval: 20 } })
    const events = []
    for (const e of ['completed', 'failed', 'dead']) w.on(e, (job) => events.push([e, job.type]))
    t.after(async () => (await w.stop(), await p.close()))
    const aborted = []
    let runs = 0
    q.registerJobHandler('wait', (job, ctx) => {
      runs++
      return new Promise((resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          aborted.push(ctx.signal.reason)
          // A handler that rejects on abort (the usual pattern): the rejection is discarded.
          reject(ctx.signal.reason)
        })
      })
    })
    q.registerJobHandler('next', async () => 'ran')
    w.start()
    const job = await p.enqueue('wait', {}, { maxRetries: 3 })
    await until('the job to run', async () => (await p.getJob(job.id)).status === 'processing' && runs === 1)
    const at = Date.now()
    assert.equal(await p.cancelJob(job.id), true)
    await until('the abort', () => aborted.length === 1)
    assert.ok(Date.now() - at < 1000, `aborted after ${Date.now() - at} ms`)
    assert.equal(aborted[0].name, 'CancelledError')
    assert.equal(aborted[0].message, `Job ${job.id} was cancelled (cancelJob)`)
    // The slot is free again (concurrency 1): the next job runs.
    const next = await p.enqueue('next', {})
    await until('the next job', async () => (await p.getJob(next.id)).status === 'completed')
    await sleep(100)
    const got = await p.getJob(job.id)
    assert.equal(got.status, 'cancelled')
    assert.equal(got.attempts, 1)
    assert.equal(got.lastError, undefined)
    assert.equal(runs, 1, 'never retried')
    assert.deepEqual(events, [['completed', 'next']])
    assert.deepEqual({ ...w.getStats(), running: undefined }, { processed: 1, succeeded: 1, failed: 0, active: 0, running: undefined })
    assert.equal(await p.cancelJob(job.id), false, 'already cancelled')
  })
}

test('postgres: cancelJob in another process aborts the running handler within a second (NOTIFY)', { timeout: 60_000 }, async (t) => {
  const config = await kinds.postgres()
  const p = await q.createQueueProvider(config)
  t.after(() => p.close())
  const { lines } = child(config, t)
  await until('the child worker', () => lines.some((l) => l.ready))
  const jobs = await Promise.all([p.enqueue('wait', {}), p.enqueue('wait', {})])
  await until('both jobs running', () => lines.filter((l) => l.started).length === 2)
  const at = Date.now()
  assert.equal(await p.cancelJob(jobs[0].id), true)
  const a = await until('the abort in the child', () => lines.find((l) => l.aborted === jobs[0].id))
  const ms = a.at - at
  assert.ok(ms < 1000, `aborted ${ms} ms after cancelJob`)
  assert.equal(a.name, 'CancelledError')
  assert.match(a.message, /was cancelled \(cancelJob\)/)
  await sleep(300)
  assert.equal(lines.filter((l) => l.aborted).length, 1, 'only the cancelled job aborted')
  assert.equal((await p.getJob(jobs[0].id)).status, 'cancelled')
  assert.equal((await p.getJob(jobs[1].id)).status, 'processing')
  assert.deepEqual(lines.filter((l) => l.event), [], 'no completed/failed/dead for the cancelled job')
})

test('postgres: a cancel whose notification never comes is caught by the heartbeat', { timeout: 60_000 }, async (t) => {
  // visibilityTimeout 3 s: the heartbeat renews every second, and finds the job cancelled.
  const config = await kinds.postgres({ visibilityTimeout: 3 })
  const p = await q.createQueueProvider(config)
  t.after(() => p.close())
  const { lines } = child(config, t)
  await until('the child worker', () => lines.some((l) => l.ready))
  const job = await p.enqueue('wait', {})
  await until('the job running', () => lines.some((l) => l.started === job.id))
  // Cancel behind the provider's back: the row changes, no NOTIFY is sent.
  const c = new Client({ connectionString: PG_URL })
  await c.connect()
  const at = Date.now()
  const r = await c.query(`UPDATE "${config.schema}"."QueueJob" SET "status" = 'cancelled', "completedAt" = now() WHERE "id" = $1 AND "status" = 'processing'`, [job.id])
  await c.end()
  assert.equal(r.rowCount, 1)
  const a = await until('the abort in the child', () => lines.find((l) => l.aborted === job.id), 10_000)
  assert.ok(a.at - at < 2500, `aborted ${a.at - at} ms after the row changed`)
  assert.equal(a.name, 'CancelledError')
})
