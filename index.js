'use strict'
// @chaaskit/queue — the package entry. All JavaScript glue lives in this file: argument
// validation, JSON <-> native translation, the handler registry, the handler runtime the
// Rust worker drives, and the process-wide singletons of the old JS queue's API.

const path = require('node:path')
const fs = require('node:fs')
const util = require('node:util')
const http = require('node:http')
const { pathToFileURL } = require('node:url')
const binding = require('./binding.js')
const otel = require('./otel.js')

// ---- logging -------------------------------------------------------------------------

/** Package log lines go through the addon's `tracing` subscriber (CHAASKIT_QUEUE_LOG). */
const logger = {
  error: (...a) => binding.log('error', util.format(...a)),
  warn: (...a) => binding.log('warn', util.format(...a)),
  info: (...a) => binding.log('info', util.format(...a)),
  debug: (...a) => {
    if (binding.logEnabled('debug')) binding.log('debug', util.format(...a))
  },
}

// ---- validation ----------------------------------------------------------------------

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'function') return `[function ${v.name || 'anonymous'}]`
  if (typeof v === 'symbol') return v.toString()
  if (v instanceof Date) return `Date(${isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()})`
  try {
    return util.inspect(v, { depth: 1, breakLength: Infinity })
  } catch {
    return Object.prototype.toString.call(v)
  }
}

function checkType(type, name = 'type') {
  if (typeof type !== 'string' || type.length === 0) {
    throw new TypeError(`${name} must be a non-empty string, got ${describe(type)}`)
  }
  return type
}

function rejectUnserialisable(key, value) {
  const t = typeof value
  if (t === 'function' || t === 'symbol') {
    throw new TypeError(`cannot carry a ${t}${key ? ` at key ${JSON.stringify(key)}` : ''}`)
  }
  return value
}

/** The payload as JSON text; TypeError naming `name` when JSON cannot carry it. */
function payloadJson(payload, name = 'payload') {
  let json
  try {
    json = JSON.stringify(payload === undefined ? null : payload, rejectUnserialisable)
  } catch (e) {
    throw new TypeError(`${name} cannot be serialised to JSON: ${e.message}`)
  }
  return json
}

/**
 * `enqueueBulk` items in the native form, which checks them (it reads `items` again to say
 * what is wrong with an item): `n` is their count (0 when `items` is no array), `flat` is
 * `[type, payload, …]` as one JSON text, `optionItems` and `options` the indexes and options
 * of the items that have them, or undefined.
 */
function bulkArgs(items) {
  const n = Array.isArray(items) ? items.length : 0
  const flat = new Array(2 * n)
  let optionItems
  let options
  for (let i = 0; i < n; i++) {
    const it = items[i]
    flat[2 * i] = it?.type
    const payload = it?.payload
    flat[2 * i + 1] = payload === undefined ? null : payload
    const o = it?.options
    if (o !== undefined && o !== null) {
      ;(optionItems ??= []).push(i)
      ;(options ??= []).push(o)
    }
  }
  return { n, flat: flatJson(flat, n), optionItems, options }
}

/** `[type, payload, …]` as JSON; a payload JSON cannot carry is a TypeError naming its item. */
function flatJson(flat, n) {
  try {
    return JSON.stringify(flat, rejectUnserialisable)
  } catch {
    // A type that is not a string crosses as null (the native side says what is wrong with it).
    for (let i = 0; i < n; i++) if (typeof flat[2 * i] !== 'string') flat[2 * i] = null
    for (let i = 0; i < n; i++) payloadJson(flat[2 * i + 1], `items[${i}].payload`)
    return JSON.stringify(flat, rejectUnserialisable)
  }
}

// ---- jobs across the boundary ----------------------------------------------------------

/** A job parsed from native JSON (a received batch), with its dates as `Date`s. */
function toJob(j) {
  j.createdAt = new Date(j.createdAt)
  if (j.scheduledFor !== undefined) j.scheduledFor = new Date(j.scheduledFor)
  if (j.startedAt !== undefined) j.startedAt = new Date(j.startedAt)
  if (j.completedAt !== undefined) j.completedAt = new Date(j.completedAt)
  return j
}

const parseJobs = (json) => JSON.parse(json).map(toJob)

const JOB_STATUSES = binding.jobStatuses()
const SLOTS = binding.enqueuedSlots()

/**
 * A job just queued: the caller's type, payload and options, and the call's trace context; the
 * rest as the native side stored it, `SLOTS` numbers from `out[k]` (`ENQUEUED_SLOTS` in
 * src/provider.rs). A status number of -1 is a job that already held the deduplication key:
 * `existing(id)` gives it.
 */
function queuedJob(id, type, payload, given, out, k, trace, existing) {
  const status = out[k + 5] | 0
  if (status < 0) return existing(id)
  // `>>> 0`: the integers as small integers, not heap doubles (all three are u32 natively).
  const options = { maxRetries: out[k + 2] >>> 0, timeout: out[k + 3] >>> 0, priority: out[k + 4] >>> 0 }
  // The caller's options, which the native side checked and stored.
  if (given != null && given.deduplicationKey !== undefined) options.deduplicationKey = given.deduplicationKey
  if (given != null && typeof given.traceparent === 'string') trace = given
  if (trace !== undefined) {
    options.traceparent = trace.traceparent
    if (typeof trace.tracestate === 'string') options.tracestate = trace.tracestate
  }
  const job = { id, type, payload: payload === undefined ? null : payload, options, status: JOB_STATUSES[status], attempts: 0, createdAt: new Date(out[k]) }
  const scheduledFor = out[k + 1]
  if (scheduledFor === scheduledFor) job.scheduledFor = new Date(scheduledFor) // NaN when none
  return job
}

/** `queuedJob` for each of `items`, whose ids come joined, 36 characters each. */
function queuedJobs(items, ids, out, trace, existing) {
  const jobs = new Array(items.length)
  for (let i = 0; i < items.length; i++) {
    const it = items[i]
    jobs[i] = queuedJob(ids.slice(i * 36, i * 36 + 36), it.type, it.payload, it.options, out, i * SLOTS, trace, existing)
  }
  return jobs
}

/** A native job object (dates already `Date`s) with its payload and result parsed. */
function fromNative(j) {
  if (j === null || j === undefined) return null
  j.payload = JSON.parse(j.payload)
  if (j.result !== undefined) j.result = JSON.parse(j.result)
  return j
}

function errorMessage(e) {
  if (e instanceof Error) return e.message || e.name || 'Error'
  if (typeof e === 'string') return e
  if (e === undefined) return 'Job failed (rejected with undefined)'
  try {
    return `Job failed: ${JSON.stringify(e)}`
  } catch {
    // Neither JSON (a cycle, a throwing getter) nor String() (a null-prototype object) may work.
    return `Job failed: ${describe(e)}`
  }
}

// ---- providers -------------------------------------------------------------------------

/** Open providers of this process, in creation order: their stats are the depth gauges of getMetrics(). */
const openProviders = new Set()

/**
 * A provider made by `createQueueProvider` whose native side does I/O (SQS, and the database
 * providers): every call is async. `MemoryQueueProvider` is the class for the memory kind.
 */
class NativeQueueProvider {
  constructor(native) {
    this._native = native
    this.name = native.name
    openProviders.add(this)
  }

  /** `type` and `options` are checked natively (errors name the field and value). */
  async enqueue(type, payload, options) {
    if (options?.tx !== undefined) return (await this._enqueueInTx(options.tx, [{ type, payload, options }]))[0]
    const json = payloadJson(payload)
    const span = otel.startSend(this.name, type)
    if (span !== null) return otel.sending(span, async () => fromNative(await this._native.enqueue(type, json, otel.withTrace(span, options))))
    return fromNative(await this._native.enqueue(type, json, options))
  }

  /** Many jobs in one call: `items` is `[{ type, payload, options? }]`. All are checked first. */
  async enqueueBulk(items, bulkOptions) {
    if (bulkOptions?.tx !== undefined) return this._enqueueInTx(bulkOptions.tx, items)
    const { flat, optionItems, options } = bulkArgs(items)
    const span = otel.startSend(this.name, items)
    const trace = span === null ? undefined : otel.traceOf(span)
    const queue = async () => {
      // `EnqueuedJobs` in src/provider.rs: the jobs of items with a deduplication key as JSON.
      const { ids, slots, keyed } = await this._native.enqueueBulk(items, flat, optionItems, options, trace)
      const held = keyed == null ? [] : JSON.parse(keyed)
      let next = 0
      return queuedJobs(items, ids, slots, trace, () => toJob(held[next++]))
    }
    return span === null ? queue() : otel.sending(span, queue)
  }

  /** Enqueue inside the caller's transaction (postgres): the SQL comes from Rust, `tx` runs it. */
  async _enqueueInTx(tx, items) {
    const run = txRunner(tx)
    if (this.name !== 'postgres') throw new TypeError(`options.tx needs the postgres provider; this provider is ${this.name}`)
    const { flat, optionItems, options } = bulkArgs(items)
    const span = otel.startSend(this.name, items.length === 1 ? items[0].type : items)
    if (span !== null) return otel.sending(span, () => this._runInTx(run, items, this._native.txEnqueueSql(items, flat, optionItems, options, otel.traceOf(span))))
    return this._runInTx(run, items, this._native.txEnqueueSql(items, flat, optionItems, options))
  }

  async _runInTx(run, items, [sql, param]) {
    const jobs = JSON.parse(await run(sql, param))
    if (jobs.length !== items.length) {
      throw new Error(`${items.length - jobs.length} deduplicated job(s) are held by a transaction not yet committed; nothing was queued by this call once its transaction rolls back`)
    }
    for (const j of jobs) if (j.scheduledFor === null) delete j.scheduledFor
    return jobs.map(toJob)
  }

  /** Up to `maxMessages` jobs, waiting up to `waitTimeSeconds` for the first (defaults: native). */
  async receive(maxMessages, waitTimeSeconds) {
    const { max, waitMs } = binding.receiveArgs(maxMessages, waitTimeSeconds)
    return parseJobs(await this._native.receive(max, waitMs))
  }

  /** Acknowledge an attempt; `result` (optional) is kept on the job. */
  async acknowledge(receiptHandle, result) {
    checkType(receiptHandle, 'receiptHandle')
    await this._native.acknowledge(receiptHandle, result === undefined ? undefined : payloadJson(result, 'result'))
  }

  async fail(receiptHandle, error) {
    checkType(receiptHandle, 'receiptHandle')
    await this._native.fail(receiptHandle, errorMessage(error))
  }

  async getJob(jobId) {
    checkType(jobId, 'jobId')
    return fromNative(await this._native.getJob(jobId))
  }

  /** The job's `ctx.log` lines ({ lines: [{ at, attempt, line }], dropped }); null when no such job. */
  async getJobLogs(jobId) {
    checkType(jobId, 'jobId')
    return this._native.getJobLogs(jobId)
  }

  async getStats() {
    return this._native.getStats()
  }

  /** Jobs newest first, `limit` at a time; pass the page's `nextCursor` as `cursor` for the next. */
  async listJobs(options) {
    let page
    try {
      page = await this._native.listJobs(options)
    } catch (e) {
      throw e && e.code === 'InvalidArg' ? new RangeError(e.message) : e // a cursor that is not one
    }
    page.jobs = page.jobs.map(fromNative)
    if (page.nextCursor === undefined) page.nextCursor = null
    return page
  }

  /** A dead or failed job back to pending, now; false when it is neither. */
  async retryJob(jobId) {
    return this._native.retryJob(checkType(jobId, 'jobId'))
  }

  /** A pending, scheduled, failed or running job to `cancelled`; false when it is none of these. */
  async cancelJob(jobId) {
    return this._native.cancelJob(checkType(jobId, 'jobId'))
  }

  /** Workers stop taking jobs of `type` (of every type without one); running jobs finish. */
  async pause(type) {
    await this._native.pause(type === undefined ? undefined : checkType(type))
  }

  async resume(type) {
    await this._native.resume(type === undefined ? undefined : checkType(type))
  }

  /** What is paused: type names, and `null` when everything is. */
  async paused() {
    return this._native.paused()
  }

  /** SQS: move every message of the dead-letter queue back to the queue; returns how many. */
  async redriveDeadLetters() {
    return this._native.redriveDeadLetters()
  }

  async close() {
    openProviders.delete(this)
    await this._native.close()
  }
}

/** How to run one statement with one parameter on a caller's transaction, by its kind. */
function txRunner(tx) {
  if (tx !== null && typeof tx === 'object') {
    if (typeof tx.$queryRawUnsafe === 'function') {
      // Prisma's transaction client lacks the root client's `$connect` (Prisma 7 gives it a
      // `$transaction`, for nesting).
      if (typeof tx.$connect === 'function') {
        throw new TypeError('options.tx must be the client prisma.$transaction(async (tx) => …) passes, not the PrismaClient itself')
      }
      return async (sql, param) => (await tx.$queryRawUnsafe(sql, param))[0].jobs
    }
    if (typeof tx.query === 'function') {
      if (typeof tx.totalCount === 'number') {
        throw new TypeError('options.tx must be a node-postgres client inside BEGIN … COMMIT, not a Pool (pool.connect() gives one)')
      }
      return async (sql, param) => (await tx.query(sql, [param])).rows[0].jobs
    }
  }
  throw new TypeError(`options.tx must be a Prisma interactive-transaction client or a node-postgres client, got ${describe(tx)}`)
}

/**
 * The memory provider: it never blocks, so every call is synchronous on the native side. An
 * enqueue returns the id and writes the stored job's numbers into a Float64Array (see
 * src/provider.rs); the job is assembled here with the type and payload the caller gave.
 */
class MemoryQueueProvider extends NativeQueueProvider {
  constructor(native) {
    super(native)
    this._out = new Float64Array(SLOTS)
    this._bulkOut = this._out
  }

  /** A deduplicated job: the one that held the key. */
  _existing = (id) => fromNative(this._native.getJobSync(id))

  async enqueue(type, payload, options) {
    const json = payloadJson(payload)
    if (options?.tx !== undefined) return (await this._enqueueInTx(options.tx, [{ type, payload, options }]))[0]
    const span = otel.startSend(this.name, type)
    if (span !== null) {
      const traced = otel.withTrace(span, options)
      return otel.sending(span, () => queuedJob(this._native.enqueueSync(type, json, traced, this._out), type, payload, traced, this._out, 0, undefined, this._existing))
    }
    const id = this._native.enqueueSync(type, json, options, this._out)
    return queuedJob(id, type, payload, options, this._out, 0, undefined, this._existing)
  }

  async enqueueBulk(items, bulkOptions) {
    if (bulkOptions?.tx !== undefined) return this._enqueueInTx(bulkOptions.tx, items)
    const { n, flat, optionItems, options } = bulkArgs(items)
    // One scratch array, grown as needed: a new one per call would be external memory for
    // V8 to collect, which makes its collector run more often.
    if (this._bulkOut.length < SLOTS * n) this._bulkOut = new Float64Array(SLOTS * n)
    const span = otel.startSend(this.name, items)
    if (span !== null) return otel.sending(span, () => this._queuedBulk(items, flat, optionItems, options, otel.traceOf(span)))
    return this._queuedBulk(items, flat, optionItems, options)
  }

  _queuedBulk(items, flat, optionItems, options, trace) {
    const ids = this._native.enqueueBulkSync(items, flat, optionItems, options, this._bulkOut, trace)
    return queuedJobs(items, ids, this._bulkOut, trace, this._existing)
  }

  async receive(maxMessages, waitTimeSeconds) {
    const { max, waitMs } = binding.receiveArgs(maxMessages, waitTimeSeconds)
    const now = parseJobs(this._native.tryReceiveSync(max))
    if (now.length > 0 || max === 0) return now
    return parseJobs(await this._native.receive(max, waitMs))
  }

  async acknowledge(receiptHandle, result) {
    checkType(receiptHandle, 'receiptHandle')
    this._native.acknowledgeSync(receiptHandle, result === undefined ? undefined : payloadJson(result, 'result'))
  }

  async fail(receiptHandle, error) {
    checkType(receiptHandle, 'receiptHandle')
    this._native.failSync(receiptHandle, errorMessage(error))
  }

  async getJob(jobId) {
    checkType(jobId, 'jobId')
    return fromNative(this._native.getJobSync(jobId))
  }

  async getStats() {
    return this._native.getStatsSync()
  }
}

/** A `QueueProvider` for a native provider: the class for its kind, chosen once. */
const wrapProvider = (native) => (native.isSync ? new MemoryQueueProvider(native) : new NativeQueueProvider(native))

/** `{ type: 'memory', maxHistorySize: 1000 }`, from the native side. */
function getDefaultProviderConfig() {
  return binding.defaultProviderConfig()
}

/** Create a provider from a `providerConfig` (checked natively: errors name `providerConfig.<field>`). */
async function createQueueProvider(providerConfig) {
  const c = binding.checkProviderConfig(providerConfig)
  // Load the OpenTelemetry API now if it is installed (about 20 ms): on the first enqueue or
  // job it stalled the event loop, and the first ~50 jobs at 500 jobs/s started that late.
  otel.activeTracer()
  return wrapProvider(await binding.createProvider(c))
}

let provider = null

async function initializeQueueProvider(queueConfig) {
  if (provider) {
    logger.warn('Queue provider already initialized; returning the existing one')
    return provider
  }
  const c = queueConfig === undefined || queueConfig === null ? null : validateQueueConfig(queueConfig)
  provider = await createQueueProvider(c ? c.providerConfig : getDefaultProviderConfig())
  return provider
}

function getQueueProvider() {
  if (!provider) {
    logger.warn('Queue provider not initialized; using an in-memory provider')
    provider = wrapProvider(binding.createMemoryProvider())
  }
  return provider
}

async function closeQueueProvider() {
  if (provider) {
    const p = provider
    provider = null
    await p.close()
  }
}

function resetQueueProvider() {
  provider = null
}

// ---- handler registry ------------------------------------------------------------------

const handlers = new Map()

function registerJobHandler(type, handler, description) {
  checkType(type)
  if (typeof handler !== 'function') throw new TypeError(`handler for ${JSON.stringify(type)} must be a function, got ${describe(handler)}`)
  if (description !== undefined && typeof description !== 'string') {
    throw new TypeError(`description must be a string, got ${describe(description)}`)
  }
  if (handlers.has(type)) logger.warn(`Job handler for ${JSON.stringify(type)} is already registered; overwriting it`)
  handlers.set(type, { handler, description })
}

const getJobHandler = (type) => handlers.get(type)
const hasJobHandler = (type) => handlers.has(type)
const getRegisteredJobTypes = () => [...handlers.keys()]
const unregisterJobHandler = (type) => handlers.delete(type)
const clearJobHandlers = () => handlers.clear()

/** Run the handler registered for `job.type`. Rejects when none is registered. */
async function executeJob(job, ctx) {
  if (job === null || typeof job !== 'object') throw new TypeError(`job must be an object, got ${describe(job)}`)
  const entry = handlers.get(job.type)
  // A type that is no string (a symbol would not even convert) is shown as describe() shows it.
  if (!entry) throw new Error(`No handler registered for job type: ${typeof job.type === 'string' ? job.type : describe(job.type)}`)
  return entry.handler(job, ctx)
}

// ---- worker ----------------------------------------------------------------------------

/** Runs jobs from a provider with the registered handlers; the pool itself is in Rust. */
class Worker {
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
    const { provider: p, config, telemetry = true } = options
    if (!(p instanceof NativeQueueProvider)) {
      throw new TypeError(`Worker needs a provider made by createQueueProvider, got ${describe(p)}`)
    }
    if (typeof telemetry !== 'boolean') throw new TypeError(`options.telemetry must be a boolean, got ${describe(telemetry)}`)
    this.provider = p
    /** Whether attempts get OpenTelemetry spans (when `@opentelemetry/api` and a tracer provider are there). */
    this._telemetry = telemetry
    this._native = new binding.NativeWorker(p._native, config)
    /** The worker config with its defaults filled in (by the native side). */
    this.config = this._native.config
    this._running = new Map() // token -> { ac, job }
    this._outcomes = []
    this._flushQueued = false
    this._runPromise = null
    this._flush = () => this._flushOutcomes()
    /** event name -> listeners; null while none is registered, so jobs pay nothing for events. */
    this._events = null
    this._eventQueue = []
    this._metricsServer = null
  }

  /** Call `fn` on each `event` (see WorkerEvents in index.d.ts). Listener errors are logged. */
  on(event, fn) {
    if (!WORKER_EVENTS.includes(event)) throw new TypeError(`event must be one of ${WORKER_EVENTS.join(', ')}, got ${describe(event)}`)
    if (typeof fn !== 'function') throw new TypeError(`listener for '${event}' must be a function, got ${describe(fn)}`)
    if (this._events === null) this._events = new Map()
    const list = this._events.get(event)
    if (list) list.push(fn)
    else this._events.set(event, [fn])
    return this
  }

  off(event, fn) {
    const list = this._events && this._events.get(event)
    if (!list) return this
    const i = list.indexOf(fn)
    if (i !== -1) list.splice(i, 1)
    if (list.length === 0) this._events.delete(event)
    if (this._events.size === 0) this._events = null
    return this
  }

  _emit(event, args) {
    const list = this._events && this._events.get(event)
    if (!list) return
    for (const fn of list.slice()) {
      try {
        fn(...args)
      } catch (e) {
        logger.warn(`worker '${event}' listener threw: ${e && e.message}`)
      }
    }
  }

  /** Events of a failed attempt: `failed`, then `dead` when it had no retries left. */
  _failureEvents(run, error) {
    const job = run.job
    this._eventQueue.push('failed', [job, error, { attempt: job.attempts, willRetry: !run.last }])
    if (run.last) this._eventQueue.push('dead', [job, error])
  }

  _emitQueued() {
    const q = this._eventQueue
    this._eventQueue = []
    for (let i = 0; i < q.length; i += 2) this._emit(q[i], q[i + 1])
  }

  /** The port /metrics is served on (config.metricsPort; the bound port once listening), or null. */
  get metricsPort() {
    const addr = this._metricsServer && this._metricsServer.address()
    if (addr && typeof addr === 'object') return addr.port
    return this.config.metricsPort === undefined ? null : this.config.metricsPort
  }

  _serveMetrics() {
    if (this.config.metricsPort === undefined || this._metricsServer) return
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || req.url.split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
        return
      }
      getMetrics().then(
        (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
        (e) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e && e.message}\n`),
      )
    })
    server.on('error', (e) => logger.error(`metrics server on 127.0.0.1:${this.config.metricsPort}: ${e.message}`))
    server.listen(this.config.metricsPort, '127.0.0.1')
    this._metricsServer = server
  }

  /** Start taking jobs. Resolves when the worker has stopped. */
  start() {
    if (!this._runPromise) {
      otel.activeTracer() // loaded before the first job (see createQueueProvider)
      this._serveMetrics()
      this._runPromise = this._native
        .run(
          (json) => this._startBatch(json),
          ([tokens, reason]) => this._abort(tokens, reason),
          (json) => this._providerEvent(json),
        )
        .finally(() => {
          this._runPromise = null
          if (this._metricsServer) {
            this._metricsServer.close()
            this._metricsServer = null
          }
        })
    }
    return this._runPromise
  }

  /** Stop taking jobs; wait up to `shutdownTimeout` for running ones, then return them to the queue. */
  async stop() {
    const run = this._runPromise
    await this._native.stop()
    if (run) await run
  }

  isRunning() {
    return this._native.running
  }

  getStats() {
    return this._native.stats()
  }

  _startBatch(json) {
    const batch = JSON.parse(json)
    // One look per batch: null unless OpenTelemetry is on (see otel.js).
    const tracer = this._telemetry ? otel.activeTracer() : null
    for (let i = 0; i < batch.length; i++) this._startJob(batch[i].token, toJob(batch[i].job), batch[i].lastAttempt === true, tracer)
  }

  _startJob(token, job, last, tracer) {
    // The AbortController is made when a handler first reads `ctx.signal`: most never do,
    // and making one per job would cost more than the rest of the dispatch.
    const run = { ac: null, abortReason: undefined, job, last, span: null, context: null }
    if (tracer !== null) otel.startProcess(tracer, this.provider.name, job, run)
    this._running.set(token, run)
    if (this._events !== null) this._emit('active', [job])
    const native = this._native
    const worker = this
    const ctx = {
      jobId: job.id,
      attempt: job.attempts,
      log: (msg, ...args) => {
        const line = util.format(msg, ...args)
        binding.log('info', `[job ${job.id}] ${line}`)
        native.log(token, line) // kept on the job (not on SQS): getJobLogs
      },
      progress: (percent) => {
        if (native.progress(token, percent) && worker._events !== null) worker._emit('progress', [job, percent])
      },
      get signal() {
        if (!run.ac) {
          run.ac = new AbortController()
          if (run.abortReason !== undefined) run.ac.abort(run.abortReason)
        }
        return run.ac.signal
      },
    }
    const entry = handlers.get(job.type)
    if (!entry) return this._settle(token, new Error(`No handler registered for job type: ${job.type}`))
    let r
    try {
      r = run.context === null ? entry.handler(job, ctx) : otel.runIn(run.context, entry.handler, job, ctx)
    } catch (e) {
      return this._settle(token, e === undefined ? new Error('Job failed (threw undefined)') : e)
    }
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') {
      r.then(
        (v) => this._settle(token, undefined, v, true),
        (e) => this._settle(token, e === undefined ? new Error('Job failed (rejected with undefined)') : e),
      )
    } else {
      this._settle(token, undefined, r, true)
    }
  }

  _settle(token, error, result, ok = false) {
    const run = this._running.get(token)
    this._running.delete(token)
    let part
    if (ok) {
      let r
      if (result !== undefined) {
        try {
          r = JSON.stringify(result, rejectUnserialisable)
        } catch (e) {
          logger.warn(`job ${run ? run.job.id : token}: its result cannot be serialised to JSON (${e.message}); it is not kept`)
        }
      }
      part = r === undefined ? `{"t":${token}}` : `{"t":${token},"r":${r}}`
    } else {
      part = `{"t":${token},"e":${JSON.stringify(errorMessage(error))}}`
    }
    this._outcomes.push(part)
    if (run && run.span !== null) {
      otel.endProcess(run.span, ok ? undefined : error, !run.last)
      run.span = null
    }
    // An attempt aborted by its timeout already failed (and had its events) at the deadline.
    if (this._events !== null && run && run.abortReason === undefined) {
      if (ok) this._eventQueue.push('completed', [run.job, result, run.job.startedAt ? Date.now() - run.job.startedAt.getTime() : 0])
      else this._failureEvents(run, error)
    }
    if (!this._flushQueued) {
      this._flushQueued = true
      queueMicrotask(this._flush)
    }
  }

  _flushOutcomes() {
    this._flushQueued = false
    const text = `[${this._outcomes.join(',')}]`
    this._outcomes = []
    const next = this._native.complete(text)
    if (this._eventQueue.length !== 0) this._emitQueued()
    if (next) this._startBatch(next)
  }

  _abort(tokens, reason) {
    for (const token of tokens) {
      const run = this._running.get(token)
      if (!run || run.abortReason !== undefined) continue
      run.abortReason = abortError(reason, run.job)
      if (run.ac) run.ac.abort(run.abortReason)
      if (reason === 'timeout' && run.span !== null) {
        // The attempt failed at its deadline, whenever the handler ends.
        otel.endProcess(run.span, run.abortReason, !run.last)
        run.span = null
      }
      if (reason === 'timeout' && this._events !== null) this._failureEvents(run, run.abortReason)
    }
    if (this._eventQueue.length !== 0) this._emitQueued()
  }

  /** `stalled` (a lease of this worker's provider ran out and the provider took the job back). */
  _providerEvent(json) {
    if (this._events === null) return
    const ev = JSON.parse(json)
    this._emit(ev.e, [toJob(ev.job)])
  }
}

/** The reason a handler's `ctx.signal` aborts with. */
function abortError(reason, job) {
  if (reason === 'timeout') return new Error(`Job timed out after ${job.options.timeout} ms`)
  if (reason === 'cancel') {
    const e = new Error(`Job ${job.id} was cancelled (cancelJob)`)
    e.name = 'CancelledError'
    return e
  }
  return new Error('Worker is shutting down')
}

const WORKER_EVENTS = ['active', 'completed', 'failed', 'dead', 'progress', 'stalled']

// ---- events across processes (PostgreSQL LISTEN/NOTIFY) --------------------------------

/** The queue's event stream in any process: `on`/`off` as on a Worker (WorkerEvents). */
class QueueEvents {
  constructor(provider, ownsProvider) {
    this.provider = provider
    this._native = null
    this._owns = ownsProvider
    this._events = null
  }

  /** `[{ e, job, a?, ms?, r?, p? }]` from Rust: the event's own facts, and the job as stored. */
  _deliver(json) {
    if (this._events === null) return
    for (const ev of JSON.parse(json)) {
      const job = toJob(ev.job)
      switch (ev.e) {
        case 'completed':
          this._emit('completed', [job, job.result, ev.ms])
          break
        case 'failed':
          this._emit('failed', [job, new Error(job.lastError), { attempt: ev.a, willRetry: ev.r }])
          break
        case 'dead':
          this._emit('dead', [job, new Error(job.lastError)])
          break
        case 'progress':
          this._emit('progress', [job, ev.p])
          break
        default:
          this._emit(ev.e, [job])
      }
    }
  }

  /** Stop listening (and close the provider `createQueueEvents` opened for a config). */
  async close() {
    this._native.close()
    this._events = null
    if (this._owns) await this.provider.close()
  }
}
for (const m of ['on', 'off', '_emit']) QueueEvents.prototype[m] = Worker.prototype[m]

/**
 * Listen to the queue's events from every process (postgres). `source` is a provider made by
 * createQueueProvider (its connections are shared) or a providerConfig (a provider of its own,
 * closed by `close()`). Resolves once listening.
 */
async function createQueueEvents(source) {
  const own = !(source instanceof NativeQueueProvider)
  const p = own ? await createQueueProvider(source) : source
  const events = new QueueEvents(p, own)
  try {
    events._native = await p._native.listenEvents((json) => events._deliver(json))
  } catch (e) {
    if (own) await p.close()
    throw e
  }
  return events
}

/** Prometheus text of this process: job counters and histograms, worker gauges, queue depths. */
async function getMetrics() {
  const providers = [...openProviders]
  const seen = new Map()
  const depths = await Promise.all(
    providers.map(async (p) => {
      const n = (seen.get(p.name) || 0) + 1
      seen.set(p.name, n)
      const stats = await p.getStats()
      return { provider: n === 1 ? p.name : `${p.name}#${n}`, ...stats }
    }),
  )
  return binding.renderMetrics(depths)
}

let worker = null

function getWorker(options) {
  if (!worker) {
    if (options !== undefined && options !== null && typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
    if (!options) throw new Error('Worker not initialized: call getWorker({ provider, config }) or startWorker() first')
    worker = new Worker(options)
  }
  return worker
}

/** Start the process-wide worker in the background; returns it. */
function startWorker(options = {}) {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
  const w = getWorker({ provider: options.provider || getQueueProvider(), config: options.config })
  w.start().catch((e) => logger.error(`worker stopped with an error: ${e && e.message}`))
  return w
}

async function stopWorker() {
  if (worker) await worker.stop()
}

/** Forget the process-wide worker (stopping it in the background if it runs, so it lets the process exit). */
function resetWorker() {
  const w = worker
  worker = null
  if (w) w.stop().catch((e) => logger.error(`stopping the worker failed: ${e && e.message}`))
}

// ---- scheduler (begin) ----
// The database-backed scheduler (one-time and recurring jobs); the scheduler itself is in
// Rust (crates/core/src/scheduler.rs). Rows come back as Prisma returned them to the old
// scheduler: `payload`/`options` as JSON text, dates as `Date`s, absent values as `null`.

/** Delayed and recurring jobs kept in a database and enqueued to `provider` when due. */
class Scheduler {
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
    const { provider: p, config } = options
    if (!(p instanceof NativeQueueProvider)) {
      throw new TypeError(`Scheduler needs a provider made by createQueueProvider, got ${describe(p)}`)
    }
    this.provider = p
    this._native = new binding.NativeScheduler(p._native, config)
    /** The scheduler config with its defaults filled in (by the native side). */
    this.config = this._native.config
  }

  /** Migrate (when `autoMigrate`), then poll at once and every `pollInterval` in the background. */
  async start() {
    await this._native.start()
  }

  async stop() {
    await this._native.stop()
  }

  isRunning() {
    return this._native.running
  }

  /** Create the scheduler's tables if missing (the spec's `db:push` step). */
  async migrate() {
    await this._native.migrate()
  }

  /** Enqueue everything due now; `{ scheduled, recurring, failed }` counts. */
  async pollOnce() {
    return this._native.pollOnce()
  }

  /** Store a job to be enqueued at `date` (a Date, epoch ms or date string). */
  async schedule(type, payload, date, options) {
    const json = payloadJson(payload)
    const span = otel.startSend(this.provider.name, type, 'schedule')
    if (span === null) return this._native.schedule(type, json, date, options)
    return otel.sending(span, () => this._native.schedule(type, json, date, otel.withTrace(span, options)))
  }

  /** A scheduled job by id, or null. */
  async getScheduledJob(id) {
    return this._native.getScheduledJob(checkType(id, 'id'))
  }

  /** Cancel a job that is still `scheduled`; false otherwise. */
  async cancelScheduledJob(id) {
    checkType(id, 'id')
    return this._native.cancelScheduledJob(id)
  }

  /** Create or replace (by name) a recurring job; it is enabled and its next run computed. */
  async registerRecurring(input) {
    if (input === null || typeof input !== 'object') throw new TypeError(`input must be an object, got ${describe(input)}`)
    checkType(input.name, 'input.name')
    if (typeof input.schedule !== 'string' || input.schedule.trim().length === 0) {
      throw new TypeError(`input.schedule must be a cron expression or "every N unit", got ${describe(input.schedule)}`)
    }
    if (input.timezone !== undefined && input.timezone !== null && typeof input.timezone !== 'string') {
      throw new TypeError(`input.timezone must be an IANA time zone name, got ${describe(input.timezone)}`)
    }
    const args = {
      name: input.name,
      type: input.type,
      payloadJson: payloadJson(input.payload, 'input.payload'),
      schedule: input.schedule,
      timezone: typeof input.timezone === 'string' ? input.timezone : undefined,
      options: input.options,
    }
    return this._native.registerRecurring(args)
  }

  async enableRecurring(name) {
    return this._native.enableRecurring(checkType(name, 'name'))
  }

  async disableRecurring(name) {
    return this._native.disableRecurring(checkType(name, 'name'))
  }

  async deleteRecurring(name) {
    return this._native.deleteRecurring(checkType(name, 'name'))
  }

  /** All recurring jobs, sorted by name. */
  async listRecurring() {
    return this._native.listRecurring()
  }
}

let scheduler = null

/** The process-wide scheduler, made on first call (with the queue provider and defaults when no options). */
function getScheduler(options) {
  if (!scheduler) {
    if (options !== undefined && options !== null && typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
    const o = options || {}
    scheduler = new Scheduler({ provider: o.provider || getQueueProvider(), config: o.config })
  }
  return scheduler
}

/** Start the process-wide scheduler; resolves with it once it is running. */
async function startScheduler(options) {
  const s = getScheduler(options)
  await s.start()
  return s
}

async function stopScheduler() {
  if (scheduler) await scheduler.stop()
}

/** Forget the process-wide scheduler (stopping it in the background if it runs). */
function resetScheduler() {
  const s = scheduler
  scheduler = null
  if (s && s.isRunning()) s.stop().catch((e) => logger.error(`stopping the scheduler failed: ${e && e.message}`))
}

// ---- scheduler (end) ----

// ---- start-up sequence -----------------------------------------------------------------

/**
 * The whole `queue` block checked, with defaults filled in, by the native side (the one place
 * that knows the defaults and rules). Errors name the path at fault, e.g.
 * `queue.providerConfig.queueUrl is required when type is 'sqs', got undefined`. A disabled
 * queue's provider settings are not checked (it runs on the default memory provider).
 */
function validateQueueConfig(queueConfig, name = 'queue') {
  return binding.validateQueueConfig(queueConfig, checkType(name, 'name'))
}

/** `url` with its password, if any, replaced by `***` (for logs and messages). */
function redactUrl(url) {
  if (typeof url !== 'string') throw new TypeError(`url must be a string, got ${describe(url)}`)
  return binding.redactUrl(url)
}

/** The server's start-up: provider, then the in-process worker, then the scheduler. */
async function initializeQueue(queueConfig) {
  const c = validateQueueConfig(queueConfig ?? { enabled: false })
  const p = await initializeQueueProvider(c)
  if (!c.enabled) return { provider: p, worker: null, scheduler: null }
  const w = c.worker.mode === 'in-process' ? startWorker({ provider: p, config: c.worker }) : null
  const s = c.scheduler.enabled ? await startScheduler({ provider: p, config: c.scheduler }) : null
  return { provider: p, worker: w, scheduler: s }
}

/** The orderly reverse of `initializeQueue`. */
async function shutdownQueue() {
  await stopScheduler()
  resetScheduler()
  await stopWorker()
  resetWorker()
  await closeQueueProvider()
}

/** Import every `*.ts`/`*.js` handler file in `dir` (not `index.*`), in name order. */
async function loadJobHandlers(dir = 'extensions/jobs') {
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError(`dir must be a non-empty string, got ${describe(dir)}`)
  const abs = path.resolve(dir)
  if (!fs.existsSync(abs)) return []
  const files = fs
    .readdirSync(abs)
    .filter((f) => /\.(ts|js|mjs|cjs|mts|cts)$/.test(f) && !/^index\./.test(f) && !f.endsWith('.d.ts'))
    .sort()
  const loaded = []
  for (const f of files) {
    await import(pathToFileURL(path.join(abs, f)).href)
    loaded.push(path.join(abs, f))
  }
  return loaded
}

// ---- schedules ---------------------------------------------------------------------

/**
 * The next runs of a schedule (cron or `every N unit`), as the scheduler computes them:
 * `options.timezone` (IANA, default UTC), strictly after `options.from` (default now),
 * `options.count` of them (default 1). Fewer when a cron expression stops matching.
 */
function nextRuns(schedule, options = {}) {
  if (typeof schedule !== 'string') {
    throw new TypeError(`schedule must be a cron expression or "every N unit", got ${describe(schedule)}`)
  }
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
  const { timezone, from, count } = options
  if (timezone !== undefined && typeof timezone !== 'string') {
    throw new TypeError(`options.timezone must be an IANA time zone name, got ${describe(timezone)}`)
  }
  if (count !== undefined && typeof count !== 'number') throw new TypeError(`options.count must be a number, got ${describe(count)}`)
  let runs
  try {
    runs = binding.nextRuns(schedule, timezone, from, count)
  } catch (e) {
    throw e && e.code === 'InvalidArg' ? new RangeError(e.message) : e
  }
  return runs.map((ms) => new Date(ms))
}

// One object literal, so ES-module importers (`import { x }`, `export * from`) see every name.
// A name, not `key: require(…)`: Node 24's CommonJS lexer reads the latter as a re-export of
// the whole module, which would add the dashboard's own names to the package's ES view.
const { createDashboard } = require('./dashboard/index.js')

module.exports = {
  createQueueProvider,
  initializeQueueProvider,
  getQueueProvider,
  closeQueueProvider,
  resetQueueProvider,
  getDefaultProviderConfig,
  registerJobHandler,
  getJobHandler,
  hasJobHandler,
  getRegisteredJobTypes,
  unregisterJobHandler,
  clearJobHandlers,
  executeJob,
  Worker,
  createQueueEvents,
  getMetrics,
  startWorker,
  stopWorker,
  getWorker,
  resetWorker,
  validateQueueConfig,
  redactUrl,
  initializeQueue,
  shutdownQueue,
  loadJobHandlers,
  Scheduler,
  getScheduler,
  startScheduler,
  stopScheduler,
  resetScheduler,
  nextRuns,
  logger,
  createDashboard,
}
