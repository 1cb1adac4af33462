'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const q = require('..')

const mem = (o = {}) => q.createQueueProvider({ type: 'memory', ...o })

test('default provider config and unknown type', async () => {
  assert.deepEqual(q.getDefaultProviderConfig(), { type: 'memory', maxHistorySize: 1000 })
  await assert.rejects(q.createQueueProvider({ type: 'kafka' }), /Unknown queue provider type: kafka/)
})

test('enqueue, receive, acknowledge with status, attempts and dates', async () => {
  const p = await mem()
  assert.equal(p.name, 'memory')
  const j = await p.enqueue('email:send', { to: 'a@b.c' })
  assert.equal(j.status, 'pending')
  assert.ok(j.createdAt instanceof Date)
  assert.deepEqual(j.options, { maxRetries: 3, timeout: 30000, priority: 0 })
  const [r] = await p.receive(1, 1)
  assert.equal(r.id, j.id)
  assert.equal(r.attempts, 1)
  assert.ok(r.startedAt instanceof Date)
  await p.acknowledge(r.receiptHandle)
  const done = await p.getJob(j.id)
  assert.equal(done.status, 'completed')
  assert.ok(done.completedAt instanceof Date)
  await assert.rejects(p.acknowledge('nope:1'), /Unknown receipt handle/)
  await p.close()
})

test('priority order, FIFO within a priority', async () => {
  const p = await mem()
  const a = await p.enqueue('t', 1, { priority: 5 })
  const b = await p.enqueue('t', 2, { priority: 1 })
  const c = await p.enqueue('t', 3, { priority: 5 })
  const got = await p.receive(10, 0)
  assert.deepEqual(got.map((g) => g.id), [b.id, a.id, c.id])
})

test('delay and scheduledFor make a job scheduled until visible; blocked receive wakes', async () => {
  const p = await mem()
  const j = await p.enqueue('t', {}, { delay: 150 })
  assert.equal(j.status, 'scheduled')
  assert.ok(j.scheduledFor instanceof Date)
  assert.deepEqual(await p.receive(1, 0), [])
  const t0 = Date.now()
  const [r] = await p.receive(1, 5)
  assert.equal(r.id, j.id)
  assert.ok(Date.now() - t0 >= 100)
  const later = await p.enqueue('t', {}, { scheduledFor: new Date(Date.now() + 60000) })
  assert.equal(later.status, 'scheduled')
  assert.equal((await p.getStats()).scheduled, 1)
  // instant wake-up
  const waiting = p.receive(1, 5)
  const e = await p.enqueue('t', {})
  const [w] = await waiting
  assert.equal(w.id, e.id)
})

test('deduplicationKey returns the existing unfinished job', async () => {
  const p = await mem()
  const a = await p.enqueue('t', 1, { deduplicationKey: 'k' })
  const b = await p.enqueue('t', 2, { deduplicationKey: 'k' })
  assert.equal(a.id, b.id)
  assert.deepEqual(b.payload, 1)
})

test('fail retries with backoff then dead; maxRetries means retries', async () => {
  const p = await mem()
  const j = await p.enqueue('t', {}, { maxRetries: 0 })
  const [r] = await p.receive(1, 0)
  await p.fail(r.receiptHandle, new Error('boom'))
  const dead = await p.getJob(j.id)
  assert.equal(dead.status, 'dead')
  assert.equal(dead.lastError, 'boom')
  const k = await p.enqueue('t', {}, { maxRetries: 1 })
  const [r2] = await p.receive(1, 0)
  await p.fail(r2.receiptHandle, 'x')
  assert.equal((await p.getJob(k.id)).status, 'failed')
  assert.deepEqual(await p.receive(1, 0), [], 'backing off')
})

test('fail with an error JSON and String() cannot carry still records what it was', async () => {
  // Found by the fuzz test: a throwing getter defeats JSON, a null-prototype object String().
  const p = await mem()
  const bad = [{ get provider() { throw new Error('getter') } }, Object.create(null)]
  const cyclic = { name: 'c' }
  cyclic.self = cyclic
  for (const [error, lastError] of [
    [bad, 'Job failed: [ { provider: [Getter] }, [Object: null prototype] {} ]'],
    [cyclic, "Job failed: <ref *1> { name: 'c', self: [Circular *1] }"],
    [{ code: 7 }, 'Job failed: {"code":7}'],
  ]) {
    const j = await p.enqueue('t', {}, { maxRetries: 0 })
    const [r] = await p.receive(1, 0)
    await p.fail(r.receiptHandle, error)
    assert.equal((await p.getJob(j.id)).lastError, lastError)
  }
})

test('history keeps the newest maxHistorySize finished jobs', async () => {
  const p = await mem({ maxHistorySize: 2 })
  const ids = []
  for (let i = 0; i < 4; i++) ids.push((await p.enqueue('t', i)).id)
  for (const r of await p.receive(4, 0)) await p.acknowledge(r.receiptHandle)
  assert.equal(await p.getJob(ids[0]), null)
  assert.equal((await p.getJob(ids[3])).status, 'completed')
})

test('enqueueBulk queues many jobs in order', async () => {
  const p = await mem()
  const jobs = await p.enqueueBulk([{ type: 'a', payload: 1 }, { type: 'b', payload: 2, options: { priority: 0 } }])
  assert.equal(jobs.length, 2)
  const got = await p.receive(2, 0)
  assert.deepEqual(got.map((g) => g.type), ['a', 'b'])
  await assert.rejects(p.enqueueBulk([{ type: 'a' }, { type: '' }]), /items\[1\]\.type/)
  assert.equal((await p.getStats()).pending, 0, 'a rejected bulk queues nothing')
})

test('enqueueBulk: per-item options, jobs as getJob shows them, bad payloads named by index', async () => {
  const p = await mem()
  const at = new Date(Date.now() + 60000)
  const jobs = await p.enqueueBulk([
    { type: 'low', payload: { n: 1 }, options: { priority: 5, maxRetries: 0, timeout: 1000 } },
    { type: 'high', payload: { n: 2 }, options: { priority: 1 } },
    { type: 'later', payload: null, options: { scheduledFor: at } },
    { type: 'soon', payload: 'x', options: { delay: 50 } },
    { type: 'dup', payload: 1, options: { deduplicationKey: 'k' } },
    { type: 'dup', payload: 2, options: { deduplicationKey: 'k' } },
    { type: 'plain' },
  ])
  assert.equal(jobs.length, 7)
  for (const j of jobs) {
    const stored = await p.getJob(j.id)
    for (const k of ['id', 'type', 'payload', 'status', 'attempts', 'options', 'createdAt', 'scheduledFor']) assert.deepEqual(j[k], stored[k], `${j.type}.${k}`)
  }
  assert.deepEqual(jobs[0].options, { maxRetries: 0, timeout: 1000, priority: 5 })
  assert.equal(jobs[2].status, 'scheduled')
  assert.equal(jobs[2].scheduledFor.getTime(), at.getTime())
  assert.equal(jobs[3].status, 'scheduled')
  assert.equal(jobs[5].id, jobs[4].id, 'a duplicate key in one bulk returns the first job')
  assert.equal(jobs[6].payload, null)
  // Priority first, then first in, first out; the delayed and scheduled ones are not visible yet.
  assert.deepEqual((await p.receive(10, 0)).map((r) => r.type), ['dup', 'plain', 'high', 'low'])
  // Bad payloads anywhere in the batch: the error names the item, and nothing is queued.
  const before = await p.getStats()
  const cyc = {}
  cyc.self = cyc
  for (const [bad, re] of [
    [{ n: 1n }, /items\[1\]\.payload .*BigInt/],
    [cyc, /items\[1\]\.payload .*circular/i],
    [{ f: () => 1 }, /items\[1\]\.payload .*function/],
    [Symbol('s'), /items\[1\]\.payload .*symbol/],
  ]) {
    await assert.rejects(p.enqueueBulk([{ type: 'ok', payload: 1 }, { type: 'bad', payload: bad }]), (e) => e instanceof TypeError && re.test(e.message))
  }
  await assert.rejects(p.enqueueBulk([{ type: 'ok' }, { type: 'bad', options: { delay: -1 } }]), (e) => e instanceof RangeError && /items\[1\]\.options\.delay/.test(e.message))
  await assert.rejects(p.enqueueBulk('nope'), { name: 'TypeError', message: 'items must be an array, got "nope"' })
  await assert.rejects(p.enqueueBulk([{ type: 'ok' }, 5]), { name: 'TypeError', message: 'items[1] must be an object, got 5' })
  await assert.rejects(p.enqueueBulk([{ type: 'ok' }, { payload: 1 }]), { name: 'TypeError', message: 'items[1].type must be a non-empty string, got undefined' })
  await assert.rejects(p.enqueueBulk([{ type: Symbol('s') }]), { name: 'TypeError', message: 'items[0].type must be a non-empty string, got a symbol' })
  await assert.rejects(p.enqueueBulk([{ type: 'ok', options: 7 }]), { name: 'TypeError', message: 'items[0].options must be an object, got 7' })
  await assert.rejects(p.enqueueBulk([{ type: 'ok', options: { timeout: 0 } }]), { name: 'RangeError', message: 'items[0].options.timeout must be at least 1 ms, got 0' })
  assert.deepEqual(await p.getStats(), before, 'rejected bulks queue nothing')
})

test('bad input is rejected with the field and value, and loses nothing', async () => {
  const p = await mem()
  await p.enqueue('keep', {})
  await assert.rejects(p.enqueue('', {}), (e) => e instanceof TypeError && /type/.test(e.message))
  await assert.rejects(p.enqueue(42, {}), TypeError)
  await assert.rejects(p.enqueue('t', { n: 1n }), (e) => e instanceof TypeError && /BigInt/.test(e.message))
  const cyc = {}
  cyc.self = cyc
  await assert.rejects(p.enqueue('t', cyc), TypeError)
  await assert.rejects(p.enqueue('t', { f() {} }), TypeError)
  await assert.rejects(p.enqueue('t', {}, { delay: -1 }), (e) => e instanceof RangeError && /options\.delay.*-1/.test(e.message))
  await assert.rejects(p.enqueue('t', {}, { timeout: Infinity }), RangeError)
  await assert.rejects(p.enqueue('t', {}, { maxRetries: NaN }), RangeError)
  await assert.rejects(p.enqueue('t', {}, { priority: -2 }), RangeError)
  await assert.rejects(p.enqueue('t', {}, { scheduledFor: new Date('nope') }), { name: 'RangeError', message: 'options.scheduledFor must be a valid Date, got Date(Invalid Date)' })
  await assert.rejects(p.enqueue('t', {}, { scheduledFor: 'next tuesday-ish' }), { name: 'RangeError', message: 'options.scheduledFor must be a valid Date, got "next tuesday-ish"' })
  await assert.rejects(p.enqueue('t', {}, { timeout: 0.4 }), { name: 'RangeError', message: 'options.timeout must be at least 1 ms, got 0.4' })
  await assert.rejects(p.enqueue('t', {}, { maxRetries: 1.5 }), { name: 'RangeError', message: 'options.maxRetries must be a non-negative integer up to 4294967295, got 1.5' })
  await assert.rejects(p.enqueue('t', {}, { deduplicationKey: '' }), { name: 'TypeError', message: 'options.deduplicationKey must be a non-empty string, got ""' })
  await assert.rejects(p.enqueue('t', {}, 'fast'), { name: 'TypeError', message: 'options must be an object, got "fast"' })
  await assert.rejects(p.receive(1.5), { name: 'RangeError', message: 'maxMessages must be a non-negative integer up to 4294967295, got 1.5' })
  await assert.rejects(p.receive(1, -1), { name: 'RangeError', message: 'waitTimeSeconds must be a non-negative finite number of seconds, got -1' })
  assert.equal((await p.getStats()).pending, 1)
  const dated = await p.enqueue('t', {}, { scheduledFor: '2100-01-01T00:00:00Z' })
  assert.equal(dated.scheduledFor.toISOString(), '2100-01-01T00:00:00.000Z', 'a date string is read as Date.parse reads it')
  assert.equal(dated.status, 'scheduled')
  await p.close()
  await assert.rejects(p.enqueue('t', {}), /Queue provider is closed/)
  assert.deepEqual(await p.receive(1, 1), [])
})

test('singletons: initialize, get, close, reset', async () => {
  q.resetQueueProvider()
  const p = await q.initializeQueueProvider({ enabled: false })
  assert.equal(p.name, 'memory')
  assert.equal(await q.initializeQueueProvider({ enabled: true, providerConfig: { type: 'memory' } }), p)
  assert.equal(q.getQueueProvider(), p)
  await q.closeQueueProvider()
  const lazy = q.getQueueProvider()
  assert.notEqual(lazy, p)
  q.resetQueueProvider()
})
