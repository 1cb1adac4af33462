// OpenTelemetry through the public API, with the OTel SDK's in-memory exporter: a PRODUCER
// span per enqueue, a CONSUMER span per attempt with the handler inside it, the trace context
// carried by the job — in process on memory, and across processes on postgres, sqlite and
// SQS (moto) — and no spans and no trouble without `@opentelemetry/api`.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { randomUUID } = require('node:crypto')
const { spawn } = require('node:child_process')
const api = require('@opentelemetry/api')
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
const { PG_URL, pgReachable, dropSchemas } = require('./pg.js')
const { startMoto, sqsClient, createQueue, REGION } = require('./moto.js')
const queue = require('../index.js')

const RUN = randomUUID().slice(0, 8)
const { sleep, until } = require('./wait.js')
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/

const exporter = new InMemorySpanExporter()
const sdk = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
const tracer = api.trace.getTracer('otel-test')
const register = () => api.trace.setGlobalTracerProvider(sdk)

const spans = () => exporter.getFinishedSpans()
const named = (name) => spans().filter((s) => s.name === name)
const parentOf = (s) => s.parentSpanContext && s.parentSpanContext.spanId

/** Run `fn` inside a finished "request" span (the app's incoming request); returns [span, result]. */
async function inRequest(fn) {
  return tracer.startActiveSpan('request', async (span) => {
    try {
      return [span, await fn()]
    } finally {
      span.end()
    }
  })
}

let moto = null
let sqs = null
let pgUp = false
const schemas = []
const dirs = []

test.before(async () => {
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  register()
  pgUp = await pgReachable('postgres case')
  moto = await startMoto()
  if (moto) sqs = sqsClient(moto.endpoint)
})

test.beforeEach(() => {
  exporter.reset()
  queue.clearJobHandlers()
})

test.after(async () => {
  sqs?.destroy()
  await moto?.stop()
  if (pgUp) await dropSchemas(schemas)
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
  api.trace.disable()
  api.context.disable()
})

test('memory: a send span per enqueue, a process span per attempt, the handler inside it', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  queue.registerJobHandler('email', async () => {
    tracer.startSpan('smtp').end()
    return 'sent'
  })
  const [request, job] = await inRequest(() => p.enqueue('email', { to: 'a@b.c' }))
  const [, m] = TRACEPARENT.exec(job.options.traceparent) || []
  assert.equal(m, request.spanContext().traceId, `traceparent ${job.options.traceparent}`)
  assert.deepEqual((await p.getJob(job.id)).options, job.options, 'the enqueue returns what getJob stores')

  const [send] = named('send email')
  assert.ok(send, `spans: ${spans().map((s) => s.name)}`)
  assert.equal(send.kind, api.SpanKind.PRODUCER)
  assert.equal(parentOf(send), request.spanContext().spanId)
  assert.equal(job.options.traceparent, `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`)
  assert.deepEqual(send.attributes, {
    'messaging.system': 'chaaskit_queue',
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'enqueue',
    'messaging.destination.name': 'email',
    'messaging.message.id': job.id,
    'chaaskit.queue.provider': 'memory',
  })

  const w = new queue.Worker({ provider: p, config: { concurrency: 2 } })
  const run = w.start()
  await until('the process span', () => named('process email').length === 1 && named('smtp').length === 1)
  await w.stop()
  await run
  const [proc] = named('process email')
  const [smtp] = named('smtp')
  assert.equal(proc.kind, api.SpanKind.CONSUMER)
  assert.equal(proc.spanContext().traceId, request.spanContext().traceId)
  assert.equal(parentOf(proc), send.spanContext().spanId, 'the attempt is a child of the enqueue')
  assert.equal(parentOf(smtp), proc.spanContext().spanId, "the handler's span is a child of the attempt")
  assert.equal(smtp.spanContext().traceId, request.spanContext().traceId)
  assert.deepEqual(proc.status, { code: api.SpanStatusCode.UNSET })
  assert.deepEqual(proc.attributes, {
    'messaging.system': 'chaaskit_queue',
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.destination.name': 'email',
    'messaging.message.id': job.id,
    'chaaskit.queue.provider': 'memory',
    'chaaskit.queue.job.attempt': 1,
  })
  await p.close()
})

test('memory: a failed attempt is an ERROR span with the exception; each retry has its own span', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  queue.registerJobHandler('flaky', async (job) => {
    if (job.attempts === 1) throw new TypeError('smtp down')
    return 'ok'
  })
  const [request, job] = await inRequest(() => p.enqueue('flaky', null, { maxRetries: 1 }))
  const w = new queue.Worker({ provider: p, config: { concurrency: 1 } })
  const run = w.start()
  await until('two attempts', () => named('process flaky').length === 2, 10_000) // backoff 1 s
  await w.stop()
  await run
  const [first, second] = named('process flaky').sort((a, b) => a.attributes['chaaskit.queue.job.attempt'] - b.attributes['chaaskit.queue.job.attempt'])
  const [send] = named('send flaky')
  assert.equal(first.attributes['chaaskit.queue.job.attempt'], 1)
  assert.equal(second.attributes['chaaskit.queue.job.attempt'], 2)
  assert.deepEqual(first.status, { code: api.SpanStatusCode.ERROR, message: 'smtp down' })
  assert.equal(first.attributes['error.type'], 'TypeError')
  assert.equal(first.attributes['chaaskit.queue.job.will_retry'], true)
  const ex = first.events.find((e) => e.name === 'exception')
  assert.equal(ex && ex.attributes['exception.message'], 'smtp down')
  assert.deepEqual(second.status, { code: api.SpanStatusCode.UNSET })
  for (const s of [first, second]) {
    assert.equal(parentOf(s), send.spanContext().spanId)
    assert.equal(s.spanContext().traceId, request.spanContext().traceId)
  }
  assert.equal((await p.getJob(job.id)).status, 'completed')
  await p.close()
})

test('memory: a timed-out attempt ends its span at the deadline, as failed', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  queue.registerJobHandler('slow', () => new Promise(() => {})) // ignores its signal
  await p.enqueue('slow', null, { maxRetries: 0, timeout: 50 })
  const w = new queue.Worker({ provider: p, config: { concurrency: 1, shutdownTimeout: 100 } })
  const run = w.start()
  const [span] = await until('the process span', () => named('process slow').length === 1 && named('process slow'))
  assert.deepEqual(span.status, { code: api.SpanStatusCode.ERROR, message: 'Job timed out after 50 ms' })
  assert.equal(span.attributes['chaaskit.queue.job.will_retry'], false)
  await w.stop()
  await run
  assert.equal(named('process slow').length, 1, 'ended once')
  await p.close()
})

test('memory: enqueueBulk is one send span with the batch count; every job carries its context', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  const [request, jobs] = await inRequest(() => p.enqueueBulk([1, 2, 3].map((n) => ({ type: 'bulk', payload: n }))))
  const [send] = named('send bulk')
  assert.equal(named('send bulk').length, 1)
  assert.equal(parentOf(send), request.spanContext().spanId)
  assert.equal(send.attributes['messaging.batch.message_count'], 3)
  assert.equal(send.attributes['messaging.operation.name'], 'enqueueBulk')
  assert.equal(send.attributes['messaging.message.id'], undefined)
  const tp = `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`
  for (const j of jobs) {
    assert.equal(j.options.traceparent, tp)
    assert.equal((await p.getJob(j.id)).options.traceparent, tp)
  }
  // Mixed types: the span is named by the operation alone.
  await p.enqueueBulk([{ type: 'a' }, { type: 'b' }])
  const [mixed] = named('send')
  assert.equal(mixed.attributes['messaging.destination.name'], undefined)
  assert.equal(mixed.attributes['messaging.batch.message_count'], 2)
  await p.close()
})

test('a failed enqueue ends its send span as an error', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  await p.close()
  await assert.rejects(p.enqueue('closed', 1), /closed/)
  const [send] = named('send closed')
  assert.equal(send.status.code, api.SpanStatusCode.ERROR)
  assert.match(send.status.message, /closed/)
})

test('telemetry: false on a worker, or no tracer provider registered: no spans, no trace context', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  queue.registerJobHandler('quiet', async () => 'ok')
  const [, traced] = await inRequest(() => p.enqueue('quiet', 1))
  assert.match(traced.options.traceparent, TRACEPARENT)
  const w = new queue.Worker({ provider: p, config: { concurrency: 1 }, telemetry: false })
  const done = new Promise((r) => w.on('completed', r))
  const run = w.start()
  await done
  await w.stop()
  await run
  assert.equal(named('process quiet').length, 0)
  assert.throws(() => new queue.Worker({ provider: p, telemetry: 'no' }), /options\.telemetry must be a boolean, got "no"/)

  api.trace.disable()
  try {
    exporter.reset()
    const plain = await p.enqueue('quiet', 2)
    const [bulk] = await p.enqueueBulk([{ type: 'quiet', payload: 3 }])
    assert.equal(plain.options.traceparent, undefined)
    assert.equal(bulk.options.traceparent, undefined)
    assert.equal((await p.getJob(plain.id)).options.traceparent, undefined)
    const w2 = new queue.Worker({ provider: p, config: { concurrency: 2 } })
    let n = 0
    const both = new Promise((r) => w2.on('completed', () => ++n === 2 && r()))
    const run2 = w2.start()
    await both
    await w2.stop()
    await run2
    assert.equal(spans().length, 0)
  } finally {
    register()
  }
  await p.close()
})

test('Scheduler.schedule inside a request: the job runs in that trace when the scheduler enqueues it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-otel-sched-'))
  dirs.push(dir)
  const p = await queue.createQueueProvider({ type: 'memory' })
  const s = new queue.Scheduler({ provider: p, config: { databaseUrl: `sqlite:${path.join(dir, 'scheduler.db')}`, pollInterval: 60_000 } })
  await s.migrate()
  queue.registerJobHandler('later', async () => tracer.startSpan('later-work').end())
  const [request, row] = await inRequest(() => s.schedule('later', { n: 1 }, Date.now() - 1))
  const [send] = named('send later')
  assert.equal(send.attributes['messaging.operation.name'], 'schedule')
  assert.equal(send.attributes['messaging.message.id'], row.id)
  assert.equal(parentOf(send), request.spanContext().spanId)
  assert.deepEqual(await s.pollOnce(), { scheduled: 1, recurring: 0, failed: 0 })
  const w = new queue.Worker({ provider: p, config: { concurrency: 1 } })
  const run = w.start()
  await until('the process span', () => named('later-work').length === 1)
  await w.stop()
  await run
  const [proc] = named('process later')
  assert.equal(proc.spanContext().traceId, request.spanContext().traceId)
  assert.equal(parentOf(proc), send.spanContext().spanId)
  assert.equal(parentOf(named('later-work')[0]), proc.spanContext().spanId)
  await s.stop()
  await p.close()
})

/** Run `__test__/<script>` with `args`; resolves to its stdout lines once it exits 0. */
function runChild(args, { preload } = {}) {
  const argv = preload ? ['-r', path.join(__dirname, preload)] : []
  const child = spawn(process.execPath, [...argv, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.once('exit', (code, signal) => {
      clearTimeout(t)
      if (code === 0) resolve(out.split('\n').filter(Boolean))
      else reject(new Error(`child exited with ${code ?? signal}: ${err}${out}`))
    })
  })
}

const CROSS = {
  postgres: {
    skip: () => !pgUp && 'PostgreSQL unavailable',
    config: async () => {
      const schema = `otel_${RUN}_${schemas.length}`
      schemas.push(schema)
      return { type: 'postgres', databaseUrl: PG_URL, schema }
    },
  },
  sqlite: {
    skip: () => false,
    config: async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-otel-'))
      dirs.push(dir)
      return { type: 'sqlite', databaseUrl: `sqlite:${path.join(dir, 'queue.db')}` }
    },
  },
  sqs: {
    skip: () => !moto && 'moto_server unavailable',
    config: async () => ({ type: 'sqs', region: REGION, queueUrl: await createQueue(sqs, 'otel'), endpoint: moto.endpoint }),
  },
}

for (const [kind, { skip, config }] of Object.entries(CROSS)) {
  test(`${kind}: the handler's span is a child of the request that enqueued it, across processes`, async (t) => {
    const why = skip()
    if (why) return t.skip(why)
    const providerConfig = await config()
    const p = await queue.createQueueProvider(providerConfig)
    const [request, [one, bulk]] = await inRequest(async () => [
      await p.enqueue('traced', { n: 1 }),
      await p.enqueueBulk([{ type: 'traced', payload: { n: 2 } }, { type: 'traced', payload: { n: 3 } }]),
    ])
    const traceId = request.spanContext().traceId
    const sendOne = named('send traced').find((s) => s.attributes['messaging.operation.name'] === 'enqueue')
    const sendBulk = named('send traced').find((s) => s.attributes['messaging.operation.name'] === 'enqueueBulk')
    assert.equal(sendOne.attributes['messaging.system'], kind === 'sqs' ? 'aws_sqs' : 'chaaskit_queue')
    assert.equal(sendOne.attributes['messaging.message.id'], one.id)
    const producerOf = new Map([[one.id, sendOne.spanContext().spanId], ...bulk.map((j) => [j.id, sendBulk.spanContext().spanId])])

    if (kind === 'sqs') {
      // The body stays the old queue's format; the context is a message attribute.
      const { ReceiveMessageCommand } = require('@aws-sdk/client-sqs')
      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: providerConfig.queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], VisibilityTimeout: 0, WaitTimeSeconds: 1 }))
      assert.ok(got.Messages && got.Messages.length > 0)
      for (const m of got.Messages) {
        const body = JSON.parse(m.Body)
        assert.deepEqual(Object.keys(body), ['jobId', 'type', 'payload', 'options', 'createdAt'])
        assert.deepEqual(Object.keys(body.options), ['maxRetries', 'timeout', 'priority'])
        const tp = m.MessageAttributes.traceparent
        assert.equal(tp.DataType, 'String')
        assert.equal(tp.StringValue, `00-${traceId}-${producerOf.get(body.jobId)}-01`)
      }
    }
    await p.close()

    const lines = await runChild([path.join(__dirname, 'otel-child.js'), JSON.stringify(providerConfig), '3'])
    assert.equal(lines.at(-1), 'done')
    const child = lines.filter((l) => l.startsWith('span ')).map((l) => JSON.parse(l.slice(5)))
    const procs = child.filter((s) => s.name === 'process traced')
    assert.equal(procs.length, 3, JSON.stringify(child))
    for (const proc of procs) {
      const id = proc.attributes['messaging.message.id']
      assert.equal(proc.kind, api.SpanKind.CONSUMER)
      assert.equal(proc.traceId, traceId, 'same trace as the request in the other process')
      assert.equal(proc.parentSpanId, producerOf.get(id), 'parent: the send span of that job')
      assert.equal(proc.attributes['chaaskit.queue.provider'], kind)
      const work = child.find((s) => s.name === 'handler-work' && s.attributes.jobId === id)
      assert.equal(work.traceId, traceId)
      assert.equal(work.parentSpanId, proc.spanId, "the handler's own span is a child of the attempt")
    }
  })
}

test('without @opentelemetry/api installed the queue works and makes no spans', async () => {
  const script = `
    const queue = require(${JSON.stringify(path.join(__dirname, '..', 'index.js'))})
    ;(async () => {
      const p = await queue.createQueueProvider({ type: 'memory' })
      queue.registerJobHandler('t', async (job) => job.payload * 2)
      const a = await p.enqueue('t', 21)
      const [b] = await p.enqueueBulk([{ type: 't', payload: 1 }])
      const w = new queue.Worker({ provider: p, config: { concurrency: 2 } })
      let n = 0
      const done = new Promise((r) => w.on('completed', () => ++n === 2 && r()))
      const run = w.start()
      await done
      await w.stop()
      await run
      const got = await p.getJob(a.id)
      let apiMissing = false
      try { require.resolve('@opentelemetry/api', { paths: [${JSON.stringify(path.join(__dirname, '..'))}] }) } catch { apiMissing = true }
      console.log(JSON.stringify({ apiMissing, status: got.status, result: got.result, options: [a.options, b.options] }))
    })().catch((e) => { console.error(e); process.exit(1) })`
  const file = path.join(os.tmpdir(), `chaaskit-no-otel-${RUN}.js`)
  fs.writeFileSync(file, script)
  try {
    const [line] = await runChild([file], { preload: 'no-otel.js' })
    const r = JSON.parse(line)
    assert.equal(r.apiMissing, true)
    assert.equal(r.status, 'completed')
    assert.equal(r.result, 42)
    for (const o of r.options) assert.deepEqual(o, { maxRetries: 3, timeout: 30000, priority: 0 })
  } finally {
    fs.rmSync(file, { force: true })
  }
})
