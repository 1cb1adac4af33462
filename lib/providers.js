'use strict'
// Queue providers: the async class for I/O providers, the synchronous memory one, and the
// runner of the caller's transaction (Prisma or node-postgres) for `options.tx`.

const binding = require('./native.js')
const otel = require('../otel.js')
const { describe, checkType, payloadJson, bulkArgs, errorMessage, rangeError } = require('./check.js')
const { toJob, parseJobs, SLOTS, queuedJob, queuedJobs, fromNative } = require('./jobs.js')

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
      throw rangeError(e) // a cursor that is not one
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

module.exports = { openProviders, NativeQueueProvider, MemoryQueueProvider, wrapProvider, getDefaultProviderConfig, createQueueProvider }
