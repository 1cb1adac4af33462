'use strict'
// A job's own log lines (`ctx.log`): kept on the job with their time and attempt, under the
// per-job cap (oldest dropped, counted), read with provider.getJobLogs, on memory, SQLite and
// PostgreSQL. Retention removing them with the job is covered in crates/core/tests/job_logs.rs.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const queue = require('..')
const { until } = require('./wait.js')
const { PG_URL, pgReachable, dropSchemas } = require('./pg.js')

const RUN = `${process.pid}_${Date.now().toString(36)}`
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-logs-'))
const schemas = []
test.after(() => dropSchemas(schemas))

const MARKUP = '<script>alert(1)</script><img src=x onerror=alert(2)>'

/** Run `handler` on one job of a fresh type until the job settles as `status`; its logs once all `expected` lines are stored. */
async function runJob(p, handler, { maxRetries = 0, status = 'completed', expected }) {
  const type = `logs_${RUN}_${Math.random().toString(36).slice(2, 8)}`
  queue.registerJobHandler(type, handler)
  const w = new queue.Worker({ provider: p, config: { concurrency: 1, pollInterval: 20 } })
  const running = w.start()
  try {
    const job = await p.enqueue(type, { n: 1 }, { maxRetries })
    await until(`job ${status}`, async () => (await p.getJob(job.id)).status === status)
    // Lines are stored as they are logged; on a database they (and the cap's pruning) may
    // land just after the settle: wait until every line is kept or counted, under the cap.
    const logs = await until(`${expected} log lines`, async () => {
      const l = await p.getJobLogs(job.id)
      const bytes = l.lines.reduce((n, x) => n + Buffer.byteLength(x.line), 0)
      return l.lines.length + l.dropped === expected && l.lines.length <= 100 && bytes <= 32 * 1024 && l
    })
    return { job, logs }
  } finally {
    await w.stop()
    await running
    queue.unregisterJobHandler(type)
  }
}

async function scenario(p) {
  const before = Date.now()
  // two attempts: each line has its attempt and time, markup is kept as given
  const { job, logs } = await runJob(p, async (j, ctx) => {
    ctx.log('start %s of %d', 'attempt', ctx.attempt)
    ctx.log(MARKUP)
    if (ctx.attempt === 1) throw new Error('first attempt fails')
    ctx.log({ done: true })
  }, { maxRetries: 1, expected: 5 })
  assert.equal(logs.dropped, 0)
  assert.deepEqual(logs.lines.map((l) => [l.attempt, l.line]), [
    [1, 'start attempt of 1'],
    [1, MARKUP],
    [2, 'start attempt of 2'],
    [2, MARKUP],
    [2, '{ done: true }'],
  ])
  for (const l of logs.lines) {
    assert.ok(l.at instanceof Date)
    assert.ok(l.at.getTime() >= before - 1000 && l.at.getTime() <= Date.now() + 1000, `${l.at.toISOString()} is when the job ran`)
  }
  // getJob stays as it was: the lines are read with their own call
  assert.equal((await p.getJob(job.id)).logs, undefined)

  // the line cap: the newest 100 are kept, the older counted as dropped
  const many = await runJob(p, (j, ctx) => {
    for (let i = 1; i <= 130; i++) ctx.log(`line ${i}`)
  }, { expected: 130 })
  assert.equal(many.logs.lines.length, 100)
  assert.equal(many.logs.dropped, 30)
  assert.equal(many.logs.lines[0].line, 'line 31')
  assert.equal(many.logs.lines[99].line, 'line 130')

  // the byte cap (32 KiB): 10 KiB lines, 3 fit
  const big = await runJob(p, (j, ctx) => {
    for (let i = 1; i <= 5; i++) ctx.log(`${i}`.padEnd(10 * 1024, '.'))
  }, { expected: 5 })
  assert.deepEqual(big.logs.lines.map((l) => l.line[0]), ['3', '4', '5'])
  assert.equal(big.logs.dropped, 2)

  // a handler that logs nothing, and no such job
  const quiet = await runJob(p, () => 'ok', { expected: 0 })
  assert.deepEqual(quiet.logs, { lines: [], dropped: 0 })
  assert.equal(await p.getJobLogs('0190a0a0-0000-7000-8000-000000000000'), null)
  await assert.rejects(p.getJobLogs(''), { name: 'TypeError', message: 'jobId must be a non-empty string, got ""' })
}

test('memory: ctx.log lines are kept on the job, under the cap', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  try {
    await scenario(p)
  } finally {
    await p.close()
  }
})

test('sqlite: ctx.log lines are kept on the job, under the cap', async () => {
  const p = await queue.createQueueProvider({ type: 'sqlite', databaseUrl: `sqlite:${path.join(tmp, 'logs.db')}?mode=rwc` })
  try {
    await scenario(p)
  } finally {
    await p.close()
  }
})

test('postgres: ctx.log lines are kept on the job, under the cap', async (t) => {
  if (!(await pgReachable('postgres job logs'))) return t.skip('PostgreSQL not reachable')
  const schema = `logs_${RUN}`
  schemas.push(schema)
  const p = await queue.createQueueProvider({ type: 'postgres', databaseUrl: PG_URL, schema })
  try {
    await scenario(p)
  } finally {
    await p.close()
  }
})
