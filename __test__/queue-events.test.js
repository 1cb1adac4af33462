'use strict'
// Events across processes (createQueueEvents on postgres, LISTEN/NOTIFY): a worker in a child
// process, the listener here. And `stalled`: a lease that ran out, on postgres (in-process and
// across processes) and sqlite (in-process).
const test = require('node:test')
const assert = require('node:assert/strict')
const q = require('..')
const { child, pg: pgIn, sqlite, sleep, until } = require('./events-helpers.js')

const pg = (extra) => pgIn('qevents', extra)
test.afterEach(() => q.clearJobHandlers())

const NAMES = ['active', 'completed', 'failed', 'dead', 'progress', 'stalled']
function record(emitter) {
  const log = []
  for (const e of NAMES) emitter.on(e, (...args) => log.push([e, ...args]))
  return log
}

test('postgres: another process sees active, progress, completed, failed and dead with the worker\'s arguments', { timeout: 60_000 }, async (t) => {
  const config = pg()
  const events = await q.createQueueEvents(config)
  t.after(() => events.close())
  const log = record(events)
  const { lines } = child(config, t)
  await until('the child worker', () => lines.some((l) => l.ready))
  const p = events.provider
  const ok = await p.enqueue('ok', { n: 21 })
  // progress and the outcome are separate writes of the worker: either may be published first.
  const seenFor = (name) => log.some((e) => e[0] === name && e[1].id === ok.id)
  await until('completed and progress', () => seenFor('completed') && seenFor('progress'))
  const mine = log.filter((e) => e[1].id === ok.id)
  assert.equal(mine[0][0], 'active')
  assert.deepEqual(mine.map((e) => e[0]).sort(), ['active', 'completed', 'progress'])
  const [, job, result, ms] = mine.find((e) => e[0] === 'completed')
  assert.equal(job.type, 'ok')
  assert.equal(job.status, 'completed')
  assert.ok(job.createdAt instanceof Date)
  assert.deepEqual(job.payload, { n: 21 })
  assert.equal(result.n, 42)
  assert.ok(typeof ms === 'number' && ms >= 0 && ms < 5000, `durationMs ${ms}`)
  assert.equal(mine.find((e) => e[0] === 'progress')[2], 50)

  const bad = await p.enqueue('bad', {}, { maxRetries: 1 })
  // The retry backs off 2 s.
  await until('dead', () => log.some((e) => e[0] === 'dead' && e[1].id === bad.id), 20_000)
  const b = log.filter((e) => e[1].id === bad.id)
  assert.deepEqual(b.map((e) => e[0]), ['active', 'failed', 'active', 'failed', 'dead'])
  assert.equal(b[1][2].message, 'boom')
  assert.deepEqual(b[1][3], { attempt: 1, willRetry: true })
  assert.deepEqual(b[3][3], { attempt: 2, willRetry: false })
  assert.equal(b[4][2].message, 'boom')
  assert.equal(b[4][1].status, 'dead')

  // off: no more calls to a removed listener.
  const seen = []
  const fn = (j) => seen.push(j.id)
  events.on('completed', fn)
  const a1 = await p.enqueue('ok', { n: 1 })
  await until('a1', () => seen.includes(a1.id))
  events.off('completed', fn)
  const a2 = await p.enqueue('ok', { n: 2 })
  await until('a2', () => log.some((e) => e[0] === 'completed' && e[1].id === a2.id))
  assert.deepEqual(seen, [a1.id])
})

test('postgres: publishEvents false sends nothing; events of another schema do not arrive', { timeout: 60_000 }, async (t) => {
  const quiet = pg({ publishEvents: false })
  const loud = pg()
  const events = await q.createQueueEvents(quiet)
  t.after(() => events.close())
  const log = record(events)
  const other = await q.createQueueEvents(loud)
  t.after(() => other.close())
  const otherLog = record(other)
  const w = new q.Worker({ provider: events.provider, config: { pollInterval: 20 } })
  const w2 = new q.Worker({ provider: other.provider, config: { pollInterval: 20 } })
  q.registerJobHandler('t', async () => 1)
  w.start()
  w2.start()
  t.after(async () => (await w.stop(), await w2.stop()))
  const j = await events.provider.enqueue('t', {})
  const k = await other.provider.enqueue('t', {})
  await until('both done', async () => (await events.provider.getJob(j.id)).status === 'completed' && otherLog.some((e) => e[0] === 'completed'))
  await sleep(300)
  assert.deepEqual(log, [])
  assert.deepEqual(otherLog.map((e) => [e[0], e[1].id]), [['active', k.id], ['completed', k.id]])
})

test('postgres: a lease that ran out is stalled, in the reclaiming process and across processes', { timeout: 60_000 }, async (t) => {
  const config = pg({ visibilityTimeout: 1 })
  const p = await q.createQueueProvider(config)
  t.after(() => p.close())
  const events = await q.createQueueEvents(p)
  t.after(() => events.close())
  const across = record(events)
  const w = new q.Worker({ provider: p, config: { pollInterval: 20 } })
  const here = []
  w.on('stalled', (job) => here.push(job))
  // maxRetries 0: the reclaimed job is dead, so this worker (no handler for it) never runs it.
  const { lines, proc } = child(config, t)
  await until('the child worker', () => lines.some((l) => l.ready))
  const job = await p.enqueue('hang', {}, { maxRetries: 0 })
  await until('the job running in the child', () => lines.some((l) => l.started === job.id))
  proc.kill('SIGKILL')
  w.start()
  t.after(() => w.stop())
  await until('stalled here', () => here.length === 1, 10_000)
  assert.equal(here[0].id, job.id)
  assert.equal(here[0].status, 'dead', 'out of retries')
  await until('stalled across', () => across.some((e) => e[0] === 'stalled'))
  const s = across.find((e) => e[0] === 'stalled')
  assert.equal(s[1].id, job.id)
  assert.equal((await p.getJob(job.id)).status, 'dead')
})

test('sqlite: a lease that ran out is stalled in the process that reclaims it', { timeout: 60_000 }, async (t) => {
  const config = sqlite({ visibilityTimeout: 1 })
  const p = await q.createQueueProvider(config)
  t.after(() => p.close())
  const { lines, proc } = child(config, t)
  await until('the child worker', () => lines.some((l) => l.ready))
  const job = await p.enqueue('hang', {}, { maxRetries: 2 })
  await until('the job running in the child', () => lines.some((l) => l.started === job.id))
  proc.kill('SIGKILL')
  const w = new q.Worker({ provider: p, config: { pollInterval: 20 } })
  const here = []
  w.on('stalled', (j) => here.push(j))
  q.registerJobHandler('hang', async () => 'ran again')
  w.start()
  t.after(() => w.stop())
  await until('stalled', () => here.length === 1, 10_000)
  assert.equal(here[0].id, job.id)
  assert.equal(here[0].status, 'pending', 'retries left: pending again')
  await until('ran again', async () => (await p.getJob(job.id)).status === 'completed')
  await assert.rejects(q.createQueueEvents(p), /createQueueEvents .* not supported by the sqlite provider/)
})

test('createQueueEvents on memory rejects naming the provider', async () => {
  await assert.rejects(q.createQueueEvents({ type: 'memory' }), /createQueueEvents .* not supported by the memory provider/)
})
