'use strict'
// Worker events through the public API (worker.on/off), on the memory and sqlite providers:
// order and arguments for success, failure with a retry, dead, progress and timeout.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const q = require('..')

const { sleep } = require('./wait.js')
async function until(fn, ms = 15000) {
  const end = performance.now() + ms
  while (performance.now() < end) {
    if (await fn()) return
    await sleep(10)
  }
  throw new Error('condition not met in time')
}

const dirs = []
const kinds = {
  memory: async () => ({ type: 'memory' }),
  sqlite: async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-events-'))
    dirs.push(dir)
    return { type: 'sqlite', databaseUrl: `sqlite:${path.join(dir, 'queue.db')}` }
  },
}

test.after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})
test.afterEach(() => q.clearJobHandlers())

/** A started worker whose events are all recorded in `log` as [name, ...args]. */
async function setup(kind, t) {
  const p = await q.createQueueProvider(await kinds[kind]())
  const w = new q.Worker({ provider: p, config: { concurrency: 2, pollInterval: 20 } })
  const log = []
  for (const e of ['active', 'completed', 'failed', 'dead', 'progress']) w.on(e, (...args) => log.push([e, ...args]))
  w.start()
  t.after(async () => (await w.stop(), await p.close()))
  return { p, w, log }
}

for (const kind of Object.keys(kinds)) {
  test(`${kind}: success emits active, progress, completed with result and duration`, async (t) => {
    const { p, log } = await setup(kind, t)
    q.registerJobHandler('ok', async (job, ctx) => {
      ctx.progress(40)
      await sleep(30)
      return { n: job.payload.n * 2 }
    })
    const job = await p.enqueue('ok', { n: 21 })
    await until(() => log.some((e) => e[0] === 'completed'))
    assert.deepEqual(log.map((e) => e[0]), ['active', 'progress', 'completed'])
    const [, active] = log[0]
    assert.equal(active.id, job.id)
    assert.equal(active.attempts, 1)
    assert.deepEqual(log[1].slice(2), [40])
    assert.equal(log[1][1].id, job.id)
    const [, cjob, result, ms] = log[2]
    assert.equal(cjob.id, job.id)
    assert.deepEqual(result, { n: 42 })
    assert.ok(ms >= 25 && ms < 5000, `durationMs ${ms}`)
    // memory settles before the event; durable providers write the outcome just after it.
    await until(async () => (await p.getJob(job.id)).status === 'completed')
  })

  test(`${kind}: a failure with a retry left, then dead`, async (t) => {
    const { p, log } = await setup(kind, t)
    q.registerJobHandler('bad', async () => {
      throw new Error('boom')
    })
    const job = await p.enqueue('bad', {}, { maxRetries: 1 })
    await until(() => log.some((e) => e[0] === 'dead'))
    assert.deepEqual(log.map((e) => e[0]), ['active', 'failed', 'active', 'failed', 'dead'])
    const [, f1job, f1err, f1] = log[1]
    assert.equal(f1job.id, job.id)
    assert.equal(f1err.message, 'boom')
    assert.deepEqual(f1, { attempt: 1, willRetry: true })
    assert.deepEqual(log[3][3], { attempt: 2, willRetry: false })
    assert.equal(log[4][1].id, job.id)
    assert.equal(log[4][2].message, 'boom')
    await until(async () => (await p.getJob(job.id)).status === 'dead')
  })

  test(`${kind}: a timeout fails the attempt at its deadline, once`, async (t) => {
    const { p, log } = await setup(kind, t)
    q.registerJobHandler('slow', async (_job, ctx) => {
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
      await sleep(50)
      throw new Error('late')
    })
    const job = await p.enqueue('slow', {}, { maxRetries: 0, timeout: 100 })
    await until(() => log.some((e) => e[0] === 'dead'))
    await sleep(150) // the handler's late rejection must not add events
    assert.deepEqual(log.map((e) => e[0]), ['active', 'failed', 'dead'])
    assert.match(log[1][2].message, /timed out after 100 ms/)
    assert.deepEqual(log[1][3], { attempt: 1, willRetry: false })
    assert.equal(log[2][1].id, job.id)
  })
}

test('off removes a listener; a throwing listener does not break the worker; bad arguments', async () => {
  const p = await q.createQueueProvider({ type: 'memory' })
  const w = new q.Worker({ provider: p })
  assert.throws(() => w.on('nope', () => {}), { name: 'TypeError', message: /event must be one of .*got "nope"/ })
  assert.throws(() => w.on('completed', 1), { name: 'TypeError', message: /listener for 'completed' must be a function, got 1/ })
  const seen = []
  const a = (job) => seen.push(`a:${job.payload}`)
  const b = (job) => seen.push(`b:${job.payload}`)
  w.on('completed', () => {
    throw new Error('listener bug')
  })
  w.on('completed', a).on('completed', b)
  q.registerJobHandler('t', async () => 1)
  w.start()
  await p.enqueue('t', 1)
  await until(() => seen.length === 2)
  w.off('completed', a)
  await p.enqueue('t', 2)
  await until(() => seen.length === 3)
  assert.deepEqual(seen, ['a:1', 'b:1', 'b:2'])
  assert.equal(w.getStats().succeeded, 2)
  await w.stop()
  await p.close()
})
