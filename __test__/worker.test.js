'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const q = require('..')

const { sleep } = require('./wait.js')
async function until(fn, ms = 10000) {
  const end = performance.now() + ms
  while (performance.now() < end) {
    if (await fn()) return
    await sleep(10)
  }
  throw new Error('condition not met in time')
}

async function setup(config = {}) {
  const p = await q.createQueueProvider({ type: 'memory' })
  const w = new q.Worker({ provider: p, config: { concurrency: 5, ...config } })
  w.start()
  return { p, w }
}

test.afterEach(() => q.clearJobHandlers())

test('handler registry', async () => {
  const h = async () => 1
  q.registerJobHandler('x', h, 'desc')
  assert.deepEqual(q.getJobHandler('x'), { handler: h, description: 'desc' })
  assert.ok(q.hasJobHandler('x'))
  assert.deepEqual(q.getRegisteredJobTypes(), ['x'])
  assert.equal(q.unregisterJobHandler('x'), true)
  assert.equal(q.unregisterJobHandler('x'), false)
  await assert.rejects(q.executeJob({ type: 'nope' }, {}), /No handler registered for job type: nope/)
  // A type that is no string is named too (a symbol once made the message itself throw).
  await assert.rejects(q.executeJob({ type: Symbol('s') }, {}), { message: 'No handler registered for job type: Symbol(s)' })
  await assert.rejects(q.executeJob({ type: 5 }, {}), { message: 'No handler registered for job type: 5' })
})

test('outcomes: result kept, sync throws of non-Errors, unknown type', async () => {
  const { p, w } = await setup()
  q.registerJobHandler('ok', async (job) => ({ double: job.payload * 2 }))
  q.registerJobHandler('plain', (job) => job.payload + 1)
  q.registerJobHandler('str', () => { throw 'a string' })
  q.registerJobHandler('undef', () => { throw undefined })
  q.registerJobHandler('rej', async () => { throw new Error('rejected') })
  const ok = await p.enqueue('ok', 21)
  const plain = await p.enqueue('plain', 1)
  const str = await p.enqueue('str', {}, { maxRetries: 0 })
  const undef = await p.enqueue('undef', {}, { maxRetries: 0 })
  const rej = await p.enqueue('rej', {}, { maxRetries: 0 })
  const unknown = await p.enqueue('missing', {}, { maxRetries: 0 })
  await until(async () => w.getStats().processed === 6)
  assert.deepEqual((await p.getJob(ok.id)).result, { double: 42 })
  assert.equal((await p.getJob(plain.id)).result, 2)
  assert.equal((await p.getJob(str.id)).lastError, 'a string')
  assert.equal((await p.getJob(undef.id)).status, 'dead')
  assert.equal((await p.getJob(rej.id)).lastError, 'rejected')
  assert.equal((await p.getJob(unknown.id)).lastError, 'No handler registered for job type: missing')
  assert.deepEqual(w.getStats(), { processed: 6, succeeded: 2, failed: 4, active: 0, running: true })
  await w.stop()
  assert.equal(w.isRunning(), false)
})

test('maxRetries 2 gives 3 attempts with context fields', async () => {
  const { p, w } = await setup()
  const seen = []
  q.registerJobHandler('flaky', async (job, ctx) => {
    seen.push({ attempt: ctx.attempt, attempts: job.attempts, jobId: ctx.jobId, aborted: ctx.signal.aborted })
    assert.ok(ctx.signal instanceof AbortSignal)
    ctx.log('attempt', ctx.attempt)
    throw new Error('fail ' + ctx.attempt)
  })
  const j = await p.enqueue('flaky', {}, { maxRetries: 2 })
  await until(async () => (await p.getJob(j.id)).status === 'dead', 15000)
  assert.deepEqual(seen.map((s) => s.attempt), [1, 2, 3])
  assert.ok(seen.every((s) => s.jobId === j.id && !s.aborted && s.attempts === s.attempt))
  assert.equal((await p.getJob(j.id)).lastError, 'fail 3')
  await w.stop()
})

test('progress is stored and validated', async () => {
  const { p, w } = await setup()
  let bad
  q.registerJobHandler('rep', async (job, ctx) => {
    ctx.progress(50)
    try { ctx.progress(101) } catch (e) { bad = e }
  })
  const j = await p.enqueue('rep', {})
  await until(async () => (await p.getJob(j.id)).status === 'completed')
  assert.equal((await p.getJob(j.id)).progress, 50)
  assert.ok(bad instanceof RangeError)
  await w.stop()
})

test('timeout aborts the signal, fails the attempt, discards a late result, and holds the retry', async () => {
  const { p, w } = await setup()
  const starts = []
  let abortedAt = null
  q.registerJobHandler('slow', async (job, ctx) => {
    starts.push(Date.now())
    ctx.signal.addEventListener('abort', () => { abortedAt = Date.now() })
    await sleep(3500) // ignores the signal
    return 'late'
  })
  const j = await p.enqueue('slow', {}, { timeout: 200, maxRetries: 1 })
  await until(async () => (await p.getJob(j.id)).status === 'failed')
  const failed = await p.getJob(j.id)
  assert.equal(failed.lastError, 'Job timed out after 200 ms')
  await until(() => abortedAt !== null, 2000)
  await until(async () => starts.length === 2, 15000)
  assert.ok(starts[1] - starts[0] >= 3400, 'the retry waited for the timed-out handler to end')
  await until(async () => (await p.getJob(j.id)).status === 'dead', 10000)
  assert.equal((await p.getJob(j.id)).result, undefined)
  await w.stop()
})

test('stop waits for running jobs; unfinished ones go back to the queue', async () => {
  const { p, w } = await setup({ shutdownTimeout: 300 })
  q.registerJobHandler('short', async () => { await sleep(100); return 1 })
  q.registerJobHandler('long', async (job, ctx) => { await new Promise((r) => ctx.signal.addEventListener('abort', r)); })
  const s = await p.enqueue('short', {})
  const l = await p.enqueue('long', {})
  await until(() => w.getStats().active === 2)
  await w.stop()
  assert.equal((await p.getJob(s.id)).status, 'completed')
  assert.equal((await p.getJob(l.id)).status, 'pending')
  assert.equal(w.isRunning(), false)
})

test('concurrency bounds handlers in flight', async () => {
  const { p, w } = await setup({ concurrency: 3 })
  let now = 0, max = 0
  q.registerJobHandler('c', async () => { now++; max = Math.max(max, now); await sleep(20); now-- })
  await p.enqueueBulk(Array.from({ length: 30 }, () => ({ type: 'c', payload: null })))
  await until(() => w.getStats().processed === 30)
  assert.equal(max, 3)
  await w.stop()
})

test('initializeQueue / shutdownQueue, then the process exits by itself', () => {
  const script = `
    const q = require(${JSON.stringify(path.join(__dirname, '..'))})
    q.registerJobHandler('a', async () => 1)
    ;(async () => {
      const { provider, worker } = await q.initializeQueue({ enabled: true, providerConfig: { type: 'memory' }, worker: { mode: 'in-process' } })
      const j = await provider.enqueue('a', {})
      while ((await provider.getJob(j.id)).status !== 'completed') await new Promise(r => setTimeout(r, 5))
      await q.shutdownQueue()
      globalThis.shutAt = Date.now()
      process.on('exit', () => console.log('exit-after-ms', Date.now() - globalThis.shutAt))
    })()`
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 10000, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  const ms = Number(/exit-after-ms (\d+)/.exec(r.stdout)[1])
  assert.ok(ms < 1000, `exited ${ms} ms after shutdown`)
})

test('handlers get a ReceivedJob, its receiptHandle included', async () => {
  const { p, w } = await setup()
  const seen = []
  q.registerJobHandler('received', async (job, ctx) => {
    seen.push({ receiptHandle: job.receiptHandle, id: job.id, jobId: ctx.jobId })
  })
  try {
    w.start()
    const job = await p.enqueue('received', { n: 1 })
    await new Promise((resolve) => w.on('completed', resolve))
    assert.equal(seen.length, 1)
    assert.equal(seen[0].id, job.id)
    assert.equal(typeof seen[0].receiptHandle, 'string')
    assert.ok(seen[0].receiptHandle.length > 0)
    // The receipt is the attempt's, as receive() would give it: acknowledging it again is refused.
    await assert.rejects(p.acknowledge(seen[0].receiptHandle))
  } finally {
    q.unregisterJobHandler('received')
    await w.stop()
    await p.close()
  }
})

test('singletons as the old queue had them: getWorker() and getScheduler() are null until made, and again after stop*', async () => {
  q.resetWorker()
  q.resetScheduler()
  assert.equal(q.getWorker(), null)
  assert.equal(q.getScheduler(), null)
  const p = await q.createQueueProvider({ type: 'memory' })
  try {
    const w = q.startWorker({ provider: p })
    assert.equal(q.getWorker(), w)
    assert.equal(q.startWorker({ provider: p }), w, 'a second start returns the running worker')
    await q.stopWorker()
    assert.equal(w.isRunning(), false)
    assert.equal(q.getWorker(), null)
    const made = q.getWorker({ provider: p })
    assert.equal(q.getWorker(), made)
    q.resetWorker()
    assert.equal(q.getWorker(), null)
    assert.throws(() => q.getWorker(5), /options must be an object, got 5/)
  } finally {
    await p.close()
  }
})
