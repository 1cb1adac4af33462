// The provider contract, one suite run against every provider through the public API:
// memory, postgres (a schema of its own per case on the test database), sqlite (a temp file
// per case) and SQS (a queue of its own per case on moto_server), so they cannot drift apart.
// A case a provider cannot honour is not registered for it; `notFor` says why.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { randomUUID } = require('node:crypto')
const { spawn } = require('node:child_process')
const { startMoto, sqsClient, createQueue, REGION } = require('./moto.js')
const { PG_URL, pgReachable, dropSchemas } = require('./pg.js')
const queue = require('../index.js')

const RUN = randomUUID().slice(0, 8)
const { sleep, until } = require('./wait.js')

let moto = null
let sqs = null
let pgUp = false
const schemas = []
const dirs = []

test.before(async () => {
  pgUp = await pgReachable()
  moto = await startMoto()
  if (moto) sqs = sqsClient(moto.endpoint)
})

test.after(async () => {
  sqs?.destroy()
  await moto?.stop()
  if (pgUp) await dropSchemas(schemas)
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})

/** Each provider: `queueConfig(extra)` makes a queue of its own and returns its providerConfig. */
const PROVIDERS = {
  memory: {
    available: () => null,
    queueConfig: async () => ({ type: 'memory' }),
  },
  postgres: {
    available: () => (pgUp ? null : 'PostgreSQL unavailable'),
    queueConfig: async (extra) => {
      const schema = `contract_${RUN}_${schemas.length}`
      schemas.push(schema)
      return { type: 'postgres', databaseUrl: PG_URL, schema, ...extra }
    },
  },
  sqlite: {
    available: () => null,
    queueConfig: async (extra) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-contract-'))
      dirs.push(dir)
      return { type: 'sqlite', databaseUrl: `sqlite:${path.join(dir, 'queue.db')}`, ...extra }
    },
  },
  sqs: {
    available: () => (moto ? null : 'moto_server unavailable'),
    queueConfig: async (extra) => {
      const queueUrl = await createQueue(sqs, 'contract')
      return { type: 'sqs', region: REGION, queueUrl, endpoint: moto.endpoint, ...extra }
    },
  },
}

/**
 * One contract case for every provider. `fn(provider, { kind, open })`: `open()` makes
 * another provider on the same queue (a second process, as far as the queue can tell).
 * `opts.notFor` maps a provider to the reason the contract does not apply to it (the case is
 * not registered for that provider);
 * `opts.config` is extra providerConfig for the durable providers and SQS.
 */
function contract(name, fn, opts = {}) {
  for (const [kind, p] of Object.entries(PROVIDERS)) {
    if (opts.notFor?.[kind]) continue
    test(`${kind}: ${name}`, { timeout: 60_000 }, async (t) => {
      const why = p.available()
      if (why) return t.skip(why)
      const config = await p.queueConfig(kind === 'memory' ? {} : (opts.config ?? {}))
      const provider = await queue.createQueueProvider(config)
      const others = []
      const open = async () => {
        const o = await queue.createQueueProvider(config)
        others.push(o)
        return o
      }
      try {
        await fn(provider, { kind, open, config })
      } finally {
        await provider.close()
        for (const o of others) await o.close()
        queue.clearJobHandlers()
      }
    })
  }
}

const NO_PRIORITY = 'SQS has no priorities'
const NO_ORDER = 'SQS standard queues do not keep order'

contract('enqueue returns a pending job with its options filled in, as getJob shows it', async (p) => {
  const job = await p.enqueue('email', { to: 'a@b.c', n: [1, 2] }, { maxRetries: 5, timeout: 1234 })
  assert.equal(typeof job.id, 'string')
  assert.equal(job.type, 'email')
  assert.deepEqual(job.payload, { to: 'a@b.c', n: [1, 2] })
  assert.equal(job.status, 'pending')
  assert.equal(job.attempts, 0)
  assert.deepEqual(job.options, { maxRetries: 5, timeout: 1234, priority: 0 })
  assert.ok(job.createdAt instanceof Date)
  assert.ok(Math.abs(job.createdAt.getTime() - Date.now()) < 5000)
  const got = await p.getJob(job.id)
  assert.equal(got.id, job.id)
  assert.equal(got.status, 'pending')
  assert.deepEqual(got.payload, job.payload)
  assert.deepEqual(got.options, job.options)
  assert.equal(await p.getJob(randomUUID()), null)
})

contract(
  'lower priority first, then first in, first out',
  async (p) => {
    const a = await p.enqueue('t', 'a', { priority: 5 })
    const b = await p.enqueue('t', 'b', { priority: 1 })
    const c = await p.enqueue('t', 'c', { priority: 5 })
    const d = await p.enqueue('t', 'd', { priority: 1 })
    const got = await p.receive(10, 0)
    assert.deepEqual(got.map((j) => j.id), [b.id, d.id, a.id, c.id])
  },
  { notFor: { sqs: NO_PRIORITY } },
)

contract(
  'enqueueBulk returns the jobs in order, as getJob shows them, and they run in that order',
  async (p) => {
    const items = Array.from({ length: 50 }, (_, i) => ({ type: 'bulk', payload: { i } }))
    items[3].options = { priority: 0, maxRetries: 1 }
    const jobs = await p.enqueueBulk(items)
    assert.equal(jobs.length, 50)
    assert.deepEqual(jobs.map((j) => j.payload.i), items.map((_, i) => i))
    assert.equal(jobs[3].options.maxRetries, 1)
    assert.deepEqual((await p.getJob(jobs[10].id)).payload, { i: 10 })
    const seen = []
    for (;;) {
      const got = await p.receive(10, 0)
      if (got.length === 0) break
      seen.push(...got.map((j) => j.payload.i))
    }
    assert.deepEqual(seen, items.map((_, i) => i))
  },
  { notFor: { sqs: NO_ORDER } },
)

contract('receive counts an attempt; acknowledge completes the job and keeps the result', async (p) => {
  const job = await p.enqueue('t', { x: 1 })
  const [r] = await p.receive(1, 5)
  assert.equal(r.id, job.id)
  assert.equal(r.attempts, 1)
  assert.equal(typeof r.receiptHandle, 'string')
  assert.deepEqual(r.payload, { x: 1 })
  await p.acknowledge(r.receiptHandle, { sent: true })
  await until('completed', async () => (await p.getJob(job.id))?.status === 'completed')
  const done = await p.getJob(job.id)
  assert.deepEqual(done.result, { sent: true })
  assert.ok(done.completedAt instanceof Date)
})

contract(
  'an unknown or finished receipt is refused',
  async (p) => {
    await assert.rejects(p.acknowledge('not-a-receipt'), /receipt/i)
    const job = await p.enqueue('t', 1)
    const [r] = await p.receive(1, 5)
    await p.acknowledge(r.receiptHandle)
    await assert.rejects(p.acknowledge(r.receiptHandle), /receipt/i)
    assert.equal((await p.getJob(job.id)).status, 'completed')
  },
  { notFor: { sqs: 'SQS accepts a deleted receipt handle again (DeleteMessage is idempotent)' } },
)

contract(
  'delay and scheduledFor make a job scheduled until it is due',
  async (p) => {
    const later = await p.enqueue('t', 'later', { delay: 1200 })
    assert.equal(later.status, 'scheduled')
    assert.ok(later.scheduledFor instanceof Date)
    const far = await p.enqueue('t', 'far', { scheduledFor: new Date(Date.now() + 3_600_000) })
    assert.equal(far.status, 'scheduled')
    const now = await p.enqueue('t', 'now', { scheduledFor: new Date(Date.now() - 60_000) })
    assert.equal(now.status, 'pending')
    assert.equal((await p.getStats()).scheduled, 2)
    const first = await p.receive(10, 0)
    assert.deepEqual(first.map((j) => j.id), [now.id])
    const t0 = Date.now()
    const [r] = await p.receive(10, 5)
    assert.equal(r.id, later.id)
    assert.ok(Date.now() - t0 >= 900, `came after ${Date.now() - t0} ms`)
  },
  { notFor: { sqs: 'SQS holds delays over 15 minutes only through a scheduler, and its stats do not count scheduled jobs' } },
)

contract(
  'a deduplicationKey returns the unfinished job holding it',
  async (p, { kind, open }) => {
    const a = await p.enqueue('t', 1, { deduplicationKey: 'k' })
    const b = await p.enqueue('t', 2, { deduplicationKey: 'k' })
    assert.equal(b.id, a.id)
    const [x, y] = await p.enqueueBulk([
      { type: 't', payload: 3, options: { deduplicationKey: 'k' } },
      { type: 't', payload: 4, options: { deduplicationKey: 'm' } },
    ])
    assert.equal(x.id, a.id)
    assert.notEqual(y.id, a.id)
    const [r] = await p.receive(1, 5)
    assert.equal(r.id, a.id)
    await p.acknowledge(r.receiptHandle)
    const c = await p.enqueue('t', 5, { deduplicationKey: 'k' })
    assert.notEqual(c.id, a.id)
    if (kind !== 'memory') {
      // Another provider on the same queue sees the same key.
      const other = await open()
      assert.equal((await other.enqueue('t', 6, { deduplicationKey: 'k' })).id, c.id)
    }
  },
  { notFor: { sqs: 'SQS deduplicates only on FIFO queues, and only for 5 minutes' } },
)

contract(
  'a failed attempt backs off and retries; out of retries the job is dead',
  async (p) => {
    const job = await p.enqueue('t', 1, { maxRetries: 1 })
    const [r1] = await p.receive(1, 5)
    await p.fail(r1.receiptHandle, new Error('boom'))
    const failed = await until('failed', async () => {
      const j = await p.getJob(job.id)
      return j.status === 'failed' && j
    })
    assert.equal(failed.lastError, 'boom')
    assert.deepEqual(await p.receive(1, 0), [], 'the backoff hides the job')
    const t0 = Date.now()
    const [r2] = await p.receive(1, 10)
    assert.equal(r2.id, job.id)
    assert.equal(r2.attempts, 2)
    assert.ok(Date.now() - t0 >= 1000, `retried after ${Date.now() - t0} ms (backoff is 2 s)`)
    await p.fail(r2.receiptHandle, new Error('again'))
    await until('dead', async () => (await p.getJob(job.id)).status === 'dead')
    assert.equal((await p.getStats()).dead, 1)
  },
  { notFor: { sqs: 'SQS moves a dead job to its dead-letter queue (tested in sqs.test.js)' } },
)

contract('the Worker runs handlers: result and progress stored, retries, real timeouts', async (p) => {
  queue.registerJobHandler('ok', async (job, ctx) => {
    ctx.progress(50)
    return { double: job.payload * 2 }
  })
  queue.registerJobHandler('slow', (job, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', resolve)))
  const w = new queue.Worker({ provider: p, config: { concurrency: 4, pollInterval: 50 } })
  w.start()
  try {
    const ok = await p.enqueue('ok', 21)
    const slow = await p.enqueue('slow', null, { timeout: 300, maxRetries: 0 })
    await until('both ended', async () => {
      const [a, b] = await Promise.all([p.getJob(ok.id), p.getJob(slow.id)])
      return a.status === 'completed' && (b.status === 'dead' || b.status === 'failed')
    })
    const done = await p.getJob(ok.id)
    assert.deepEqual(done.result, { double: 42 })
    if (p.name !== 'sqs') assert.equal(done.progress, 50)
    const timedOut = await p.getJob(slow.id)
    assert.match(timedOut.lastError ?? '', /timed out after 300 ms/)
  } finally {
    await w.stop()
  }
})

contract(
  'getStats counts jobs by state',
  async (p) => {
    await p.enqueueBulk([{ type: 't', payload: 1 }, { type: 't', payload: 2 }, { type: 't', payload: 3 }])
    await p.enqueue('t', 4, { delay: 60_000 })
    const [r] = await p.receive(1, 5)
    await p.acknowledge(r.receiptHandle)
    await p.receive(1, 5)
    const s = await p.getStats()
    assert.deepEqual(s, { pending: 1, processing: 1, completed: 1, failed: 0, dead: 0, scheduled: 1, cancelled: 0 })
  },
  { notFor: { sqs: 'SQS counts are approximate and it keeps no completed jobs' } },
)

contract('close: waiting receivers get [], later enqueues are refused', async (p) => {
  const waiting = p.receive(1, 20)
  await sleep(100)
  await p.close()
  assert.deepEqual(await waiting, [])
  await assert.rejects(p.enqueue('t', 1), /Queue provider is closed/)
})

contract(
  'a job whose holder went away runs again once its lease ends; a live holder keeps its lease',
  async (p, { open }) => {
    const other = await open()
    const kept = await p.enqueue('t', 'kept')
    const [r] = await p.receive(1, 5)
    assert.equal(r.id, kept.id)
    // Three lease lengths while `p` is alive: its heartbeat keeps the job.
    assert.deepEqual(await other.receive(1, 3), [], 'a renewed lease is not reclaimed')
    await p.acknowledge(r.receiptHandle)
    const lost = await other.enqueue('t', 'lost')
    const third = await open()
    const [held] = await third.receive(1, 5)
    assert.equal(held.id, lost.id)
    // The holder goes away without settling.
    await third.close()
    const t0 = Date.now()
    const [again] = await other.receive(1, 10)
    assert.equal(again?.id, lost.id)
    assert.equal(again.attempts, 2)
    assert.ok(Date.now() - t0 < 4000, `reclaimed after ${Date.now() - t0} ms`)
    await other.acknowledge(again.receiptHandle)
    assert.equal((await other.getJob(lost.id)).status, 'completed')
  },
  {
    config: { visibilityTimeout: 1 },
    notFor: {
      memory: 'the memory queue lives and dies with its process',
    },
  },
)

// ---- admin API ------------------------------------------------------------------------

/** Providers that cannot do the admin API (SQS), and say so. */
const ADMIN_UNSUPPORTED = new Set(['sqs'])

/** Each admin call on a provider without it rejects naming the provider and the operation. */
async function assertAdminUnsupported(p) {
  for (const [op, call] of [
    ['listJobs', () => p.listJobs()],
    ['retryJob', () => p.retryJob(randomUUID())],
    ['cancelJob', () => p.cancelJob(randomUUID())],
    ['pause', () => p.pause('t')],
    ['resume', () => p.resume()],
    ['paused', () => p.paused()],
  ]) {
    await assert.rejects(call(), new RegExp(`^Error: ${op} is not supported by the ${p.name} provider$`))
  }
}

/** Every job of a listing, page by page. */
async function listAll(p, options) {
  const pages = []
  let cursor = null
  do {
    const page = await p.listJobs({ ...options, cursor })
    pages.push(page.jobs)
    cursor = page.nextCursor
  } while (cursor !== null)
  return pages
}

contract('listJobs: newest first, keyset pages, status and type filters, checked options', async (p, { kind }) => {
  if (ADMIN_UNSUPPORTED.has(kind)) return assertAdminUnsupported(p)
  await assert.rejects(p.redriveDeadLetters(), new RegExp(`^Error: redriveDeadLetters is not supported by the ${kind} provider$`))
  const jobs = []
  for (let i = 0; i < 7; i++) jobs.push(await p.enqueue(i % 2 ? 'odd' : 'even', { i }))
  const newest = jobs.map((j) => j.id).reverse()
  const pages = await listAll(p, { limit: 3 })
  assert.deepEqual(pages.map((pg) => pg.length), [3, 3, 1])
  assert.deepEqual(pages.flat().map((j) => j.id), newest)
  assert.deepEqual(pages[0][0].payload, { i: 6 })
  assert.ok(pages[0][0].createdAt instanceof Date)
  // A job enqueued after the first page does not shift the later pages.
  const first = await p.listJobs({ limit: 3 })
  await p.enqueue('even', { i: 7 })
  const second = await p.listJobs({ limit: 3, cursor: first.nextCursor })
  assert.deepEqual(second.jobs.map((j) => j.id), newest.slice(3, 6))
  const odd = (await listAll(p, { type: 'odd', limit: 2 })).flat()
  assert.deepEqual(odd.map((j) => j.payload.i), [5, 3, 1])
  const [r] = await p.receive(1, 5)
  const running = await p.listJobs({ status: 'processing' })
  assert.deepEqual(running.jobs.map((j) => j.id), [r.id])
  assert.equal(running.nextCursor, null)
  assert.deepEqual((await p.listJobs({ status: 'cancelled' })).jobs, [])
  await assert.rejects(p.listJobs({ status: 'done' }), (e) => e instanceof TypeError && /options\.status must be one of 'pending'.*'cancelled', got "done"/.test(e.message))
  await assert.rejects(p.listJobs({ type: 5 }), (e) => e instanceof TypeError && /options\.type/.test(e.message))
  await assert.rejects(p.listJobs({ limit: 0 }), (e) => e instanceof RangeError && /options\.limit must be an integer from 1 to 1000, got 0/.test(e.message))
  await assert.rejects(p.listJobs({ limit: 1001 }), (e) => e instanceof RangeError && /options\.limit must be an integer from 1 to 1000, got 1001/.test(e.message))
  await assert.rejects(p.listJobs({ cursor: 'junk' }), (e) => e instanceof RangeError && /cursor must be a nextCursor returned by listJobs, got "junk"/.test(e.message))
  await assert.rejects(p.listJobs('x'), TypeError)
})

contract('retryJob: a dead job is pending again with its attempts; others are not retried', async (p, { kind }) => {
  if (ADMIN_UNSUPPORTED.has(kind)) return assertAdminUnsupported(p)
  const job = await p.enqueue('t', 1, { maxRetries: 0 })
  assert.equal(await p.retryJob(job.id), false, 'a pending job is not retried')
  assert.equal(await p.retryJob(randomUUID()), false)
  await assert.rejects(p.retryJob(''), (e) => e instanceof TypeError && /jobId/.test(e.message))
  const [r] = await p.receive(1, 5)
  await p.fail(r.receiptHandle, new Error('boom'))
  await until('dead', async () => (await p.getJob(job.id)).status === 'dead')
  assert.equal(await p.retryJob(job.id), true)
  const back = await p.getJob(job.id)
  assert.equal(back.status, 'pending')
  assert.equal(back.attempts, 1)
  assert.equal((await p.getStats()).dead, 0)
  const [again] = await p.receive(1, 5)
  assert.equal(again.id, job.id)
  assert.equal(again.attempts, 2)
  await p.acknowledge(again.receiptHandle, 'ok')
  assert.equal((await p.getJob(job.id)).status, 'completed')
})

contract('cancelJob: pending, scheduled and running jobs end cancelled and never run', async (p, { kind }) => {
  if (ADMIN_UNSUPPORTED.has(kind)) return assertAdminUnsupported(p)
  const running = await p.enqueue('t', 'running')
  const [r] = await p.receive(1, 5)
  assert.equal(r.id, running.id)
  const pending = await p.enqueue('t', 'pending')
  const later = await p.enqueue('t', 'later', { delay: 60_000 })
  for (const j of [pending, later, running]) assert.equal(await p.cancelJob(j.id), true, j.payload)
  assert.equal(await p.cancelJob(pending.id), false, 'already cancelled')
  // The running attempt's outcome is discarded when it settles.
  await p.acknowledge(r.receiptHandle, 'late')
  for (const j of [pending, later, running]) {
    const got = await p.getJob(j.id)
    assert.equal(got.status, 'cancelled', j.payload)
    assert.ok(got.completedAt instanceof Date)
  }
  assert.equal((await p.getJob(running.id)).result, undefined)
  const s = await p.getStats()
  assert.deepEqual([s.cancelled, s.pending, s.scheduled, s.processing, s.completed], [3, 0, 0, 0, 0])
  assert.deepEqual(await p.receive(5, 0), [])
  const done = await p.enqueue('t', 'done')
  const [d] = await p.receive(1, 5)
  await p.acknowledge(d.receiptHandle)
  assert.equal(await p.cancelJob(done.id), false, 'a completed job is not cancelled')
  assert.deepEqual((await p.listJobs({ status: 'cancelled' })).jobs.map((j) => j.id), [later.id, pending.id, running.id])
})

contract('pause and resume by type and for everything, across processes; a Worker stops taking paused jobs', async (p, { kind, open }) => {
  if (ADMIN_UNSUPPORTED.has(kind)) return assertAdminUnsupported(p)
  if (kind !== 'memory') {
    // Another process on the same queue honours the pause, and can lift it.
    const other = await open()
    await p.pause('z')
    const z = await p.enqueue('z', 0)
    assert.deepEqual(await other.receive(5, 0), [])
    assert.deepEqual(await other.paused(), ['z'])
    await other.resume('z')
    const [got] = await p.receive(5, 5)
    assert.equal(got?.id, z.id)
    await p.acknowledge(got.receiptHandle)
  }
  const a = await p.enqueue('a', 1)
  const b = await p.enqueue('b', 2)
  await p.pause('a')
  assert.deepEqual(await p.paused(), ['a'])
  assert.deepEqual((await p.receive(5, 0)).map((j) => j.id), [b.id])
  await p.pause()
  assert.deepEqual(await p.paused(), [null, 'a'])
  await p.enqueue('c', 3)
  assert.deepEqual(await p.receive(5, 0), [])
  await p.resume('a')
  assert.deepEqual(await p.receive(5, 0), [], 'everything is still paused')
  await p.resume()
  assert.deepEqual(await p.paused(), [])
  await assert.rejects(p.pause(''), (e) => e instanceof TypeError && /type must be a non-empty string/.test(e.message))
  const ran = []
  queue.registerJobHandler('a', async (job) => ran.push(job.id))
  queue.registerJobHandler('c', async (job) => ran.push(job.id))
  await p.pause('c')
  const w = new queue.Worker({ provider: p, config: { concurrency: 2, pollInterval: 20 } })
  w.start()
  try {
    await until('a ran', async () => ran.includes(a.id))
    await sleep(200)
    assert.deepEqual(ran, [a.id], 'the paused type waits')
    await p.resume('c')
    await until('c ran', async () => ran.length === 2, 5000)
  } finally {
    await w.stop()
  }
})

test('postgres/sqlite: a bad providerConfig names the field; a database that is down names the URL without its password', async (t) => {
  await assert.rejects(
    queue.createQueueProvider({ type: 'postgres', databaseUrl: 'postgres://u:secret@127.0.0.1:1/db' }),
    (e) => e.message.includes('postgres://u:***@127.0.0.1:1/db') && !e.message.includes('secret'),
  )
  await assert.rejects(queue.createQueueProvider({ type: 'postgres', databaseUrl: 'mysql://x' }), /providerConfig\.databaseUrl/)
  await assert.rejects(queue.createQueueProvider({ type: 'sqlite', databaseUrl: 'sqlite:/x.db', visibilityTimeout: 0 }), /providerConfig\.visibilityTimeout/)
  await assert.rejects(queue.createQueueProvider({ type: 'sqlite', databaseUrl: 'file.db' }), /providerConfig\.databaseUrl/)
})

for (const kind of ['postgres', 'sqlite']) {
  test(`${kind}: a worker process SIGKILLed mid-job: the job runs again after its lease`, { timeout: 60_000 }, async (t) => {
    const why = PROVIDERS[kind].available()
    if (why) return t.skip(why)
    const config = await PROVIDERS[kind].queueConfig({ visibilityTimeout: 2 })
    const p = await queue.createQueueProvider(config)
    const child = spawn(process.execPath, [path.join(__dirname, 'crash-child.js'), JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let w = null
    try {
      const job = await p.enqueue('hang', { n: 1 })
      const started = await new Promise((resolve, reject) => {
        let out = ''
        child.stdout.on('data', (d) => {
          out += d
          const m = /started (\S+)/.exec(out)
          if (m) resolve(m[1])
        })
        child.once('exit', (code) => reject(new Error(`worker exited (${code}) before starting the job`)))
      })
      assert.equal(started, job.id)
      assert.equal((await p.getJob(job.id)).status, 'processing')
      child.kill('SIGKILL')
      const killedAt = Date.now()
      queue.registerJobHandler('hang', async (j, ctx) => ({ attempt: ctx.attempt }))
      w = new queue.Worker({ provider: p, config: { concurrency: 1 } })
      w.start()
      const done = await until('the job run again', async () => {
        const j = await p.getJob(job.id)
        return j.status === 'completed' && j
      })
      const after = Date.now() - killedAt
      assert.deepEqual(done.result, { attempt: 2 })
      assert.equal(done.attempts, 2)
      assert.ok(after < 6000, `ran again ${after} ms after the kill (lease 2 s)`)
    } finally {
      child.kill('SIGKILL')
      await w?.stop()
      await p.close()
      queue.clearJobHandlers()
    }
  })
}
