// Errors from the addon carry a `code` set from the Rust error's kind (README "Error codes"),
// their messages unchanged; the dashboard answers 501 by the code.
'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const q = require('../index.js')
const { startMoto, sqsClient, createQueue, REGION } = require('./moto.js')

/** `fn()` rejects (or throws) with `code` and the message `message`; returns the error. */
async function rejectsWith(fn, code, message) {
  let err
  try {
    await fn()
  } catch (e) {
    err = e
  }
  assert.ok(err instanceof Error, `expected an error with code ${code}`)
  assert.equal(err.code, code, `${err.message}: code`)
  if (message !== undefined) assert.equal(err.message, message)
  assert.equal(err.cause, undefined, 'the carrier of the code is gone')
  return err
}

test('each kind of core error has its code', async () => {
  const p = await q.createQueueProvider({ type: 'memory' })
  await rejectsWith(() => p.acknowledge('no-such-handle'), 'ERR_QUEUE_UNKNOWN_RECEIPT', 'Unknown receipt handle: no-such-handle')
  await rejectsWith(() => p.redriveDeadLetters(), 'ERR_QUEUE_NOT_SUPPORTED', 'redriveDeadLetters is not supported by the memory provider')
  await rejectsWith(() => q.createQueueEvents(p), 'ERR_QUEUE_NOT_SUPPORTED')
  const bad = await rejectsWith(() => p.listJobs({ cursor: 'not a cursor' }), 'ERR_QUEUE_INVALID')
  assert.ok(bad instanceof RangeError)
  await p.close()
  await rejectsWith(() => p.enqueue('t', 1), 'ERR_QUEUE_CLOSED', 'Queue provider is closed')
})

test('invalid input checked natively is ERR_QUEUE_INVALID, of its class', async () => {
  const p = await q.createQueueProvider({ type: 'memory' })
  const prio = await rejectsWith(() => p.enqueue('t', 1, { priority: -1 }), 'ERR_QUEUE_INVALID')
  assert.match(prio.message, /priority/)
  const cfg = await rejectsWith(() => q.validateQueueConfig({ enabled: 'yes' }), 'ERR_QUEUE_INVALID')
  assert.ok(cfg instanceof TypeError)
  await rejectsWith(() => q.createQueueProvider({ type: 'nope' }), 'ERR_QUEUE_INVALID')
  const runs = await rejectsWith(() => q.nextRuns('every 0 minutes'), 'ERR_QUEUE_INVALID')
  assert.ok(runs instanceof RangeError)
  await p.close()
})

test('SQS: admin calls are ERR_QUEUE_NOT_SUPPORTED, and the dashboard answers 501 by that code', { timeout: 90_000 }, async (t) => {
  const moto = await startMoto()
  if (!moto) return t.skip('moto_server unavailable')
  const sqs = sqsClient(moto.endpoint)
  let p = null
  let server = null
  t.after(async () => {
    server?.close()
    await p?.close()
    sqs.destroy()
    await moto.stop()
  })
  const queueUrl = await createQueue(sqs, 'errors')
  p = await q.createQueueProvider({ type: 'sqs', region: REGION, queueUrl, endpoint: moto.endpoint })
  server = http.createServer(q.createDashboard({ provider: p, authorize: () => true }))
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  await rejectsWith(() => p.listJobs(), 'ERR_QUEUE_NOT_SUPPORTED', 'listJobs is not supported by the sqs provider')
  const res = await fetch(`http://127.0.0.1:${server.address().port}/api/jobs`)
  assert.equal(res.status, 501)
  assert.deepEqual(await res.json(), { error: 'listJobs is not supported by the sqs provider' })
})
