// The SQS provider through the public API, against moto_server on loopback: each test makes
// its own standard, FIFO and dead-letter queues with @aws-sdk/client-sqs.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { randomUUID } = require('node:crypto')
const { startMoto, CountingProxy, sqsClient, createQueue, freePort, REGION } = require('./moto.js')
const {
  SendMessageCommand,
  ReceiveMessageCommand,
  GetQueueAttributesCommand,
} = require('@aws-sdk/client-sqs')
const queue = require('../index.js')

let moto = null
let sqs = null

test.before(async () => {
  moto = await startMoto()
  if (moto) sqs = sqsClient(moto.endpoint)
})

test.after(async () => {
  sqs?.destroy()
  await moto?.stop()
})

/** `test()` that skips (loudly, once, in startMoto) when moto is unavailable. */
function sqsTest(name, fn) {
  test(name, { timeout: 90_000 }, async (t) => {
    if (!moto) return t.skip('moto_server unavailable')
    await fn(t)
  })
}

const { sleep, until } = require('./wait.js')
// Every 100 ms: each poll is a request to moto.
const waitFor = (what, fn, ms) => until(what, fn, ms, 100)

function provider(queueUrl, extra = {}) {
  return queue.createQueueProvider({ type: 'sqs', region: REGION, queueUrl, endpoint: moto.endpoint, ...extra })
}

async function counts(url) {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  )
  return {
    visible: Number(out.Attributes.ApproximateNumberOfMessages),
    invisible: Number(out.Attributes.ApproximateNumberOfMessagesNotVisible),
  }
}

async function rawReceive(url, { wait = 1, max = 10, system = ['All'] } = {}) {
  const out = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: max,
      WaitTimeSeconds: wait,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: system,
    }),
  )
  return out.Messages ?? []
}

/**
 * Run a Worker on `p` until `until()` resolves truthy; returns after it stopped. (Its stop waits
 * for the long poll in flight, which lasts at most `shutdownTimeout`: 2 s here.)
 */
async function withWorker(p, until, config = {}) {
  const w = new queue.Worker({ provider: p, config: { concurrency: 2, pollInterval: 100, shutdownTimeout: 2000, ...config } })
  const running = w.start()
  try {
    return await until()
  } finally {
    await w.stop()
    await running
  }
}

sqsTest('enqueue, receive, acknowledge, getJob and getStats', async () => {
  const url = await createQueue(sqs, 'basic')
  const p = await provider(url)
  try {
    assert.equal(p.name, 'sqs')
    const job = await p.enqueue('email:send', { to: 'a@b.c' })
    assert.equal(job.status, 'pending')
    assert.ok(job.createdAt instanceof Date)
    assert.deepEqual(job.options, { maxRetries: 3, timeout: 30000, priority: 0 })
    const got = await p.receive(5, 2)
    assert.equal(got.length, 1)
    assert.equal(got[0].id, job.id)
    assert.equal(got[0].type, 'email:send')
    assert.deepEqual(got[0].payload, { to: 'a@b.c' })
    assert.equal(got[0].attempts, 1)
    assert.equal(got[0].status, 'processing')
    assert.equal(typeof got[0].receiptHandle, 'string')
    assert.equal((await p.getJob(job.id)).status, 'processing')
    await p.acknowledge(got[0].receiptHandle)
    assert.equal((await p.getJob(job.id)).status, 'completed')
    assert.equal(await p.getJob('never-seen'), null)
    const stats = await p.getStats()
    assert.equal(stats.completed, 1)
    assert.equal(stats.pending + stats.processing, 0)
    await assert.rejects(p.acknowledge(got[0].receiptHandle), /Unknown receipt handle/)
  } finally {
    await p.close()
  }
  await assert.rejects(p.enqueue('email:send', {}), /Queue provider is closed/)
})

sqsTest('our message is read by a plain JS consumer with the exact old fields', async () => {
  const url = await createQueue(sqs, 'interop-out')
  const p = await provider(url)
  try {
    const job = await p.enqueue('report:build', { n: [1, 2], s: 'é' }, { maxRetries: 2, priority: 1, deduplicationKey: 'r-1' })
    const [m] = await rawReceive(url, { wait: 5 })
    assert.ok(m, 'a message')
    const body = JSON.parse(m.Body)
    assert.deepEqual(Object.keys(body), ['jobId', 'type', 'payload', 'options', 'createdAt'])
    assert.equal(JSON.stringify(body), m.Body, 'byte-compatible with JSON.stringify')
    assert.equal(body.jobId, job.id)
    assert.equal(body.type, 'report:build')
    assert.deepEqual(body.payload, { n: [1, 2], s: 'é' })
    assert.deepEqual(body.options, { maxRetries: 2, timeout: 30000, priority: 1, deduplicationKey: 'r-1' })
    assert.equal(body.createdAt, job.createdAt.toISOString())
    assert.deepEqual(m.MessageAttributes.JobId, { DataType: 'String', StringValue: job.id })
    assert.deepEqual(m.MessageAttributes.JobType, { DataType: 'String', StringValue: 'report:build' })

    const at = new Date(Date.now() + 2000)
    const later = await p.enqueue('report:build', null, { scheduledFor: at })
    assert.equal(later.status, 'scheduled')
    const [d] = await rawReceive(url, { wait: 5 })
    const dbody = JSON.parse(d.Body)
    assert.deepEqual(Object.keys(dbody), ['jobId', 'type', 'payload', 'options', 'createdAt', 'scheduledFor'])
    assert.equal(dbody.scheduledFor, at.toISOString())
    assert.equal(dbody.payload, null)
  } finally {
    await p.close()
  }
})

sqsTest('an old-format message sent by plain JS is processed by our worker', async () => {
  const url = await createQueue(sqs, 'interop-in')
  // Exactly what the old JavaScript SQS provider sent.
  const jobId = randomUUID()
  const now = new Date()
  const jobOptions = { maxRetries: 3, timeout: 30000, priority: 0, deduplicationKey: undefined }
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: url,
      MessageBody: JSON.stringify({
        jobId,
        type: 'legacy:job',
        payload: { hello: 'world' },
        options: jobOptions,
        createdAt: now.toISOString(),
        scheduledFor: undefined,
      }),
      DelaySeconds: 0,
      MessageAttributes: {
        JobId: { DataType: 'String', StringValue: jobId },
        JobType: { DataType: 'String', StringValue: 'legacy:job' },
      },
    }),
  )
  const p = await provider(url)
  const seen = []
  queue.registerJobHandler('legacy:job', async (job, ctx) => {
    seen.push({ id: job.id, payload: job.payload, attempt: ctx.attempt, createdAt: job.createdAt })
    return 'ok'
  })
  try {
    await withWorker(p, () => waitFor('the legacy job to run', () => seen.length === 1))
    assert.equal(seen[0].id, jobId)
    assert.deepEqual(seen[0].payload, { hello: 'world' })
    assert.equal(seen[0].attempt, 1)
    assert.equal(seen[0].createdAt.getTime(), now.getTime())
    await waitFor('the message to be deleted', async () => {
      const c = await counts(url)
      return c.visible + c.invisible === 0
    })
  } finally {
    queue.unregisterJobHandler('legacy:job')
    await p.close()
  }
})

sqsTest('retries back off, then the dead-letter queue gets the job and its last error (maxRetries 0 and 2)', async () => {
  const url = await createQueue(sqs, 'retry')
  const dlq = await createQueue(sqs, 'retry-dlq')
  const p = await provider(url, { deadLetterQueueUrl: dlq })
  const runs = { zero: [], two: [] }
  queue.registerJobHandler('flaky:job', async (job, ctx) => {
    runs[job.payload.name].push({ attempt: ctx.attempt, attempts: job.attempts, at: Date.now() })
    throw new Error(`boom ${job.payload.name} ${ctx.attempt}`)
  })
  try {
    const zero = await p.enqueue('flaky:job', { name: 'zero' }, { maxRetries: 0 })
    const two = await p.enqueue('flaky:job', { name: 'two' }, { maxRetries: 2 })
    await withWorker(p, () =>
      waitFor(
        'both jobs in the dead-letter queue',
        async () => (await counts(dlq)).visible === 2,
        30_000,
      ),
    )
    assert.deepEqual(runs.zero.map((r) => r.attempt), [1])
    assert.deepEqual(runs.two.map((r) => r.attempt), [1, 2, 3])
    assert.deepEqual(runs.two.map((r) => r.attempts), [1, 2, 3])
    // Backoff: min(1000 × 2^attempts, 60000) ms after attempt n → 2 s, then 4 s.
    const gap1 = runs.two[1].at - runs.two[0].at
    const gap2 = runs.two[2].at - runs.two[1].at
    assert.ok(gap1 >= 1800 && gap1 < 6000, `first backoff ${gap1} ms`)
    assert.ok(gap2 >= 3800 && gap2 < 9000, `second backoff ${gap2} ms`)

    const stats = await p.getStats()
    assert.equal(stats.dead, 2)
    assert.equal(stats.failed, 4)
    assert.equal((await p.getJob(zero.id)).status, 'dead')
    const deadTwo = await p.getJob(two.id)
    assert.equal(deadTwo.status, 'dead')
    assert.match(deadTwo.lastError, /boom two 3/)
    const c = await counts(url)
    assert.equal(c.visible + c.invisible, 0, 'deleted from the main queue')

    const dead = await rawReceive(dlq)
    const byId = Object.fromEntries(dead.map((m) => [JSON.parse(m.Body).jobId, m]))
    assert.match(byId[zero.id].MessageAttributes.LastError.StringValue, /boom zero 1/)
    assert.match(byId[two.id].MessageAttributes.LastError.StringValue, /boom two 3/)
    assert.equal(byId[two.id].MessageAttributes.JobType.StringValue, 'flaky:job')
    assert.deepEqual(JSON.parse(byId[two.id].Body).payload, { name: 'two' })
  } finally {
    queue.unregisterJobHandler('flaky:job')
    await p.close()
  }
})

sqsTest('the heartbeat keeps a long job invisible (visibilityTimeout 2 s, job 5 s)', async () => {
  const url = await createQueue(sqs, 'heartbeat')
  const p = await provider(url, { visibilityTimeout: 2 })
  let runs = 0
  let finished = false
  queue.registerJobHandler('long:job', async () => {
    runs++
    await sleep(5000)
    finished = true
  })
  try {
    await p.enqueue('long:job', {}, { timeout: 20_000 })
    await withWorker(p, async () => {
      await waitFor('the job to start', () => runs === 1)
      // A second consumer polls throughout the job and must get nothing.
      while (!finished) {
        const stolen = await rawReceive(url, { wait: 1 })
        assert.equal(stolen.length, 0, 'a second receiver got the message while the job ran')
      }
      await waitFor('the message to be deleted', async () => {
        const c = await counts(url)
        return c.visible + c.invisible === 0
      })
    })
    assert.equal(runs, 1)
  } finally {
    queue.unregisterJobHandler('long:job')
    await p.close()
  }
})

sqsTest('FIFO queues get a MessageGroupId and a MessageDeduplicationId', async () => {
  const url = await createQueue(sqs, 'fifo', { fifo: true })
  const p = await provider(url)
  try {
    const a1 = await p.enqueue('group:a', 1, { deduplicationKey: 'order-1' })
    await p.enqueue('group:a', 2, { deduplicationKey: 'order-1' }) // deduplicated by SQS
    const b = await p.enqueue('group:b', 3)
    const msgs = await rawReceive(url)
    const seen = msgs
      .map((m) => ({
        group: m.Attributes.MessageGroupId,
        dedup: m.Attributes.MessageDeduplicationId,
        payload: JSON.parse(m.Body).payload,
      }))
      .sort((x, y) => x.payload - y.payload)
    assert.deepEqual(seen, [
      { group: 'group:a', dedup: 'order-1', payload: 1 },
      { group: 'group:b', dedup: b.id, payload: 3 },
    ])
    assert.ok(a1.id)
    await assert.rejects(p.enqueue('group:a', 4, { delay: 5000 }), /FIFO.*scheduler/s)
  } finally {
    await p.close()
  }
})

sqsTest('a payload over maxMessageBytes is refused at enqueue with both sizes', async () => {
  const url = await createQueue(sqs, 'size')
  const p = await provider(url, { maxMessageBytes: 1024 })
  try {
    await assert.rejects(p.enqueue('big:job', { blob: 'x'.repeat(2000) }), (e) => {
      assert.match(e.message, /is \d{4} bytes as an SQS message, over the limit of 1024 bytes/)
      return true
    })
    await assert.rejects(
      p.enqueueBulk([
        { type: 'big:job', payload: 1 },
        { type: 'big:job', payload: 'x'.repeat(2000) },
      ]),
      /items\[1\]/,
    )
    await assert.rejects(p.enqueue('big:job', 1, { delay: 16 * 60 * 1000 }), /exceeds SQS's 15-minute limit; start the scheduler/)
    const c = await counts(url)
    assert.equal(c.visible + c.invisible, 0, 'nothing queued by a rejected call')
  } finally {
    await p.close()
  }
})

sqsTest('a message that is not a job goes to the dead-letter queue', async () => {
  const url = await createQueue(sqs, 'foreign')
  const dlq = await createQueue(sqs, 'foreign-dlq')
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'hello, not JSON' }))
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{"jobId":"x"}' }))
  const p = await provider(url, { deadLetterQueueUrl: dlq })
  try {
    assert.deepEqual(await p.receive(10, 2), [])
    const dead = await waitFor('the dead-letter queue', async () => {
      const m = await rawReceive(dlq)
      return m.length === 2 && m
    })
    const bodies = dead.map((m) => m.Body).sort()
    assert.deepEqual(bodies, ['hello, not JSON', '{"jobId":"x"}'])
    for (const m of dead) assert.match(m.MessageAttributes.LastError.StringValue, /^not a job message/)
    const c = await counts(url)
    assert.equal(c.visible + c.invisible, 0, 'deleted from the main queue')
  } finally {
    await p.close()
  }
})

sqsTest('an unreachable endpoint at start is a clear error without credentials', async () => {
  const port = await freePort()
  const saved = [process.env.AWS_ACCESS_KEY_ID, process.env.AWS_SECRET_ACCESS_KEY]
  process.env.AWS_ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE'
  process.env.AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
  try {
    await assert.rejects(
      queue.createQueueProvider({
        type: 'sqs',
        region: REGION,
        queueUrl: `http://127.0.0.1:${port}/123456789012/nowhere`,
        endpoint: `http://127.0.0.1:${port}`,
      }),
      (e) => {
        assert.match(e.message, /cannot reach SQS queue .*nowhere/)
        assert.match(e.message, /Connection refused|connect/i)
        assert.doesNotMatch(e.message, /AKIAIOSFODNN7EXAMPLE|wJalrXUtnFEMI/)
        return true
      },
    )
  } finally {
    ;[process.env.AWS_ACCESS_KEY_ID, process.env.AWS_SECRET_ACCESS_KEY] = saved
  }
  await assert.rejects(
    provider(`${moto.endpoint}/123456789012/no-such-queue-${Date.now()}`),
    /cannot reach SQS queue .*no-such-queue/,
  )
})

sqsTest('the endpoint going away and coming back: receive resumes, acknowledgements are retried', async () => {
  const url = await createQueue(sqs, 'outage')
  const proxy = await new CountingProxy(moto.endpoint).start()
  const p = await queue.createQueueProvider({ type: 'sqs', region: REGION, queueUrl: url, endpoint: proxy.endpoint })
  try {
    // A receive while the endpoint is away keeps retrying (backoff) and gets the job once it is
    // back. (The proxy stops first: moto would hand a message to a long poll cut off mid-way.)
    await p.receive(1, 1) // a connection is pooled
    await proxy.stop()
    const receiving = p.receive(1, 20)
    await sleep(1500)
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: await jobBody('outage:job') }))
    await proxy.start()
    const t0 = Date.now()
    const got = await receiving
    assert.equal(got.length, 1, 'received after the endpoint came back')
    assert.ok(Date.now() - t0 < 15_000)

    // An acknowledgement sent while the endpoint is away is retried until it succeeds.
    await proxy.stop()
    const acking = p.acknowledge(got[0].receiptHandle)
    await sleep(1500)
    await proxy.start()
    await acking
    const c = await counts(url)
    assert.equal(c.visible + c.invisible, 0, 'the message was deleted')
  } finally {
    await p.close()
    await proxy.close()
  }
})

sqsTest('enqueueBulk and batched acknowledgements keep requests per job low', async () => {
  const url = await createQueue(sqs, 'bulk')
  const proxy = await new CountingProxy(moto.endpoint).start()
  const p = await queue.createQueueProvider({ type: 'sqs', region: REGION, queueUrl: url, endpoint: proxy.endpoint })
  try {
    const n = 100
    proxy.reset()
    const jobs = await p.enqueueBulk(Array.from({ length: n }, (_, i) => ({ type: 'bulk:job', payload: { i } })))
    assert.equal(jobs.length, n)
    assert.deepEqual(jobs[42].payload, { i: 42 })
    assert.equal(proxy.counts.SendMessageBatch, 10)
    const seen = new Set()
    while (seen.size < n) {
      const got = await p.receive(10, 2)
      assert.ok(got.length > 0, `drained ${seen.size} of ${n}`)
      await Promise.all(got.map((j) => p.acknowledge(j.receiptHandle)))
      for (const j of got) seen.add(j.id)
    }
    const perJob = proxy.total / n
    assert.ok(perJob <= 0.35, `${perJob} requests per job: ${JSON.stringify(proxy.counts)}`)
  } finally {
    await p.close()
    await proxy.close()
  }
})

async function jobBody(type) {
  return JSON.stringify({
    jobId: randomUUID(),
    type,
    payload: {},
    options: { maxRetries: 3, timeout: 30000, priority: 0 },
    createdAt: new Date().toISOString(),
  })
}

sqsTest('the endpoint can come from AWS_ENDPOINT_URL_SQS', async () => {
  const url = await createQueue(sqs, 'env-endpoint')
  process.env.AWS_ENDPOINT_URL_SQS = moto.endpoint
  let p
  try {
    p = await queue.createQueueProvider({ type: 'sqs', region: REGION, queueUrl: url })
  } finally {
    delete process.env.AWS_ENDPOINT_URL_SQS
  }
  try {
    const job = await p.enqueue('env:job', { ok: true })
    const [m] = await rawReceive(url, { wait: 5 })
    assert.equal(JSON.parse(m.Body).jobId, job.id)
  } finally {
    await p.close()
  }
})

sqsTest('stopWorker(): no receive is left in flight; a job enqueued after it goes to another consumer at once', async () => {
  const url = await createQueue(sqs, 'stop')
  const p = await provider(url)
  const producer = await provider(url)
  let ran = 0
  queue.registerJobHandler('stop:job', async () => {
    ran++
  })
  queue.resetWorker()
  try {
    // shutdownTimeout 3 s: the worker long-polls at most 3 s, so stopWorker() waits at most that.
    queue.startWorker({ provider: p, config: { concurrency: 2, pollInterval: 100, shutdownTimeout: 3000 } })
    await sleep(1000) // a long poll is at the server
    const t0 = Date.now()
    await queue.stopWorker()
    const stopMs = Date.now() - t0
    assert.equal(queue.getWorker(), null, 'stopWorker forgets the worker, as the old queue did')
    const job = await producer.enqueue('stop:job', { n: 1 })
    const [m] = await rawReceive(url, { wait: 10 }) // a second consumer
    const visibleMs = Date.now() - t0
    assert.ok(m, 'the job is visible to another consumer')
    assert.equal(JSON.parse(m.Body).jobId, job.id)
    assert.equal(m.Attributes.ApproximateReceiveCount, '1', 'no receive of the stopped worker took it')
    assert.ok(stopMs < 3500, `stopWorker() took ${stopMs} ms`)
    assert.ok(visibleMs - stopMs < 1000, `visible ${visibleMs - stopMs} ms after stopWorker() resolved`)
    assert.equal(ran, 0)
    console.log(
      `stop() -> visibility of a job enqueued after stopWorker() resolved: ${visibleMs} ms ` +
        `(stopWorker() took ${stopMs} ms, waiting out a 3 s long poll)`,
    )
  } finally {
    queue.unregisterJobHandler('stop:job')
    queue.resetWorker()
    await p.close()
    await producer.close()
  }
})

sqsTest('a job the long poll of a stopping worker takes is given back at once, its attempt no failure', async () => {
  const url = await createQueue(sqs, 'stop-late')
  // Long polls of up to 3 s (shutdownTimeout): the poll is still at the server when the job comes.
  const p = await provider(url, { waitTimeSeconds: 20 })
  const producer = await provider(url)
  let ran = 0
  queue.registerJobHandler('stop:late', async () => {
    ran++
  })
  const w = new queue.Worker({ provider: p, config: { concurrency: 2, pollInterval: 100, shutdownTimeout: 3000 } })
  try {
    const running = w.start()
    await sleep(1000) // a long poll is at the server
    const t0 = Date.now()
    const stopping = w.stop()
    const job = await producer.enqueue('stop:late', { n: 2 }) // right after stop() was called
    await stopping
    const stopMs = Date.now() - t0
    await running
    const [m] = await rawReceive(url, { wait: 10 })
    const visibleMs = Date.now() - t0
    assert.ok(m, 'the job is visible to another consumer')
    assert.equal(JSON.parse(m.Body).jobId, job.id)
    assert.equal(m.Attributes.ApproximateReceiveCount, '2', "the stopping worker's poll took it first")
    assert.ok(visibleMs < 2000, `visible ${visibleMs} ms after stop()`)
    assert.equal(ran, 0, 'no handler ran after stop()')
    assert.equal(w.getStats().failed, 0)
    assert.equal((await p.getStats()).failed, 0)
    console.log(`stop() + enqueue at once: visible to another consumer ${visibleMs} ms after stop() (stop() took ${stopMs} ms)`)
  } finally {
    queue.unregisterJobHandler('stop:late')
    await p.close()
    await producer.close()
  }
})

sqsTest('w.start(); await w.stop() ends start() at once', async () => {
  const url = await createQueue(sqs, 'start-stop')
  const p = await provider(url)
  try {
    for (let i = 0; i < 3; i++) {
      const w = new queue.Worker({ provider: p, config: { shutdownTimeout: 20_000 } })
      const running = w.start()
      const t0 = Date.now()
      await w.stop()
      let timer
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('start() did not end after stop()')), 3000)
      })
      await Promise.race([running, late]).finally(() => clearTimeout(timer))
      assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`)
      assert.equal(w.isRunning(), false)
    }
  } finally {
    await p.close()
  }
})

sqsTest('receive(2 ** 32 - 1) is clamped: a bounded number of requests, every job once', async () => {
  const url = await createQueue(sqs, 'huge-receive')
  const proxy = await new CountingProxy(moto.endpoint).start()
  const p = await queue.createQueueProvider({ type: 'sqs', region: REGION, queueUrl: url, endpoint: proxy.endpoint })
  try {
    await p.enqueueBulk(Array.from({ length: 35 }, (_, i) => ({ type: 'huge:job', payload: { i } })))
    proxy.reset()
    const t0 = Date.now()
    const got = await p.receive(2 ** 32 - 1, 1)
    // Every job comes back; moto may hand one message to two concurrent receives (SQS does
    // not), so its duplicates are counted, not failed on.
    const distinct = new Set(got.map((j) => j.id)).size
    assert.equal(distinct, 35)
    const duplicates = got.length - distinct
    if (duplicates > 0) console.log(`receive(2 ** 32 - 1): ${duplicates} duplicate deliveries by moto`)
    assert.ok(duplicates <= 3, `${duplicates} duplicates`)
    assert.ok(proxy.counts.ReceiveMessage <= 10, JSON.stringify(proxy.counts))
    assert.ok(Date.now() - t0 < 10_000)
  } finally {
    await p.close()
    await proxy.close()
  }
})

sqsTest('redriveDeadLetters moves the dead-letter queue back to the queue, and the jobs run again', async () => {
  const url = await createQueue(sqs, 'redrive')
  const dlq = await createQueue(sqs, 'redrive-dlq')
  const p = await provider(url, { deadLetterQueueUrl: dlq })
  try {
    const jobs = []
    for (let i = 0; i < 12; i++) jobs.push(await p.enqueue('t', { i }, { maxRetries: 0 }))
    for (;;) {
      const got = await p.receive(10, 1)
      if (got.length === 0) break
      for (const r of got) await p.fail(r.receiptHandle, new Error('boom'))
    }
    await waitFor('12 dead letters', async () => (await counts(dlq)).visible === 12, 15_000)
    assert.equal(await p.redriveDeadLetters(), 12)
    const c = await counts(dlq)
    assert.equal(c.visible + c.invisible, 0, 'the dead-letter queue is empty')
    const back = []
    for (;;) {
      const got = await p.receive(10, 1)
      if (got.length === 0) break
      for (const r of got) {
        back.push(r)
        await p.acknowledge(r.receiptHandle)
      }
    }
    assert.deepEqual(back.map((j) => j.id).sort(), jobs.map((j) => j.id).sort())
    assert.deepEqual(back.map((j) => j.payload.i).sort((a, b) => a - b), jobs.map((_, i) => i))
    assert.equal(await p.redriveDeadLetters(), 0)
    const plain = await provider(await createQueue(sqs, 'no-dlq'))
    try {
      await assert.rejects(plain.redriveDeadLetters(), /redriveDeadLetters needs the sqs provider's deadLetterQueueUrl/)
    } finally {
      await plain.close()
    }
  } finally {
    await p.close()
  }
})
