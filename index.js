'use strict'
// @chaaskit/queue — the package entry. All JavaScript glue lives in this file: argument
// validation, JSON <-> native translation, the handler registry, the handler runtime the
// Rust worker drives, and the process-wide singletons of the old JS queue's API.

const path = require('node:path')
const fs = require('node:fs')
const util = require('node:util')
const { pathToFileURL } = require('node:url')
const binding = require('./binding.js')

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

const MAX_TIMER_MS = 2147483647

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'function') return `[function ${v.name || 'anonymous'}]`
  if (typeof v === 'symbol') return v.toString()
  if (v instanceof Date) return `Date(${isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()})`
  try {
    return util.inspect(v, { depth: 1, breakLength: Infinity })
  } catch {
    return String(v)
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

function checkNonNegative(v, name, { integer = false, max = Number.MAX_SAFE_INTEGER } = {}) {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max || (integer && !Number.isInteger(v))) {
    const what = integer ? 'a non-negative integer' : 'a non-negative finite number'
    throw new RangeError(`${name} must be ${what}${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}, got ${describe(v)}`)
  }
  return v
}

/** A Date, an epoch-ms number or a date string, as epoch ms; RangeError when invalid. */
function dateMs(v, name) {
  const ms = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN
  if (!Number.isFinite(ms)) throw new RangeError(`${name} must be a valid Date, got ${describe(v)}`)
  return ms
}

/** `EnqueueOptions` checked and in the native form (dates as epoch ms). */
function enqueueArgs(options, name = 'options') {
  if (options === undefined || options === null) return undefined
  if (typeof options !== 'object') throw new TypeError(`${name} must be an object, got ${describe(options)}`)
  const out = {}
  if (options.delay !== undefined) out.delay = checkNonNegative(options.delay, `${name}.delay`, { max: Number.MAX_SAFE_INTEGER })
  if (options.scheduledFor !== undefined) out.scheduledFor = dateMs(options.scheduledFor, `${name}.scheduledFor`)
  if (options.maxRetries !== undefined) out.maxRetries = checkNonNegative(options.maxRetries, `${name}.maxRetries`, { integer: true, max: 4294967295 })
  if (options.timeout !== undefined) {
    checkNonNegative(options.timeout, `${name}.timeout`, { max: MAX_TIMER_MS })
    if (options.timeout === 0) throw new RangeError(`${name}.timeout must be greater than 0, got 0`)
    out.timeout = options.timeout
  }
  if (options.priority !== undefined) out.priority = checkNonNegative(options.priority, `${name}.priority`, { integer: true, max: 4294967295 })
  if (options.deduplicationKey !== undefined) out.deduplicationKey = checkType(options.deduplicationKey, `${name}.deduplicationKey`)
  return out
}

/**
 * `enqueueBulk` items checked and serialised for the native side: `flat` is
 * `[type, payload, …]` as one JSON text, `options` is `[[index, options], …]` or undefined.
 */
function bulkArgs(items) {
  if (!Array.isArray(items)) throw new TypeError(`items must be an array, got ${describe(items)}`)
  const flat = new Array(2 * items.length)
  let options
  for (let i = 0; i < items.length; i++) {
    const it = items[i]
    if (it === null || typeof it !== 'object') throw new TypeError(`items[${i}] must be an object, got ${describe(it)}`)
    const type = it.type
    if (typeof type !== 'string' || type.length === 0) checkType(type, `items[${i}].type`)
    flat[2 * i] = type
    flat[2 * i + 1] = it.payload === undefined ? null : it.payload
    if (it.options !== undefined && it.options !== null) (options ??= []).push([i, enqueueArgs(it.options, `items[${i}].options`)])
  }
  let text
  try {
    text = JSON.stringify(flat, rejectUnserialisable)
  } catch {
    for (let i = 0; i < items.length; i++) payloadJson(items[i].payload, `items[${i}].payload`) // names the item
    throw new TypeError('items cannot be serialised to JSON')
  }
  return { flat: text, options: options && JSON.stringify(options) }
}

// ---- jobs across the boundary ----------------------------------------------------------

/** A job parsed from native JSON, with its dates as `Date`s. */
function toJob(j) {
  j.createdAt = new Date(j.createdAt)
  if (j.scheduledFor !== undefined) j.scheduledFor = new Date(j.scheduledFor)
  if (j.startedAt !== undefined) j.startedAt = new Date(j.startedAt)
  if (j.completedAt !== undefined) j.completedAt = new Date(j.completedAt)
  return j
}

const parseJob = (json) => toJob(JSON.parse(json))
const parseJobs = (json) => JSON.parse(json).map(toJob)

function errorMessage(e) {
  if (e instanceof Error) return e.message || e.name || 'Error'
  if (typeof e === 'string') return e
  if (e === undefined) return 'Job failed (rejected with undefined)'
  try {
    return `Job failed: ${JSON.stringify(e)}`
  } catch {
    return `Job failed: ${String(e)}`
  }
}

// ---- providers -------------------------------------------------------------------------

/** A `QueueProvider` backed by the native provider (memory or SQS). */
class NativeQueueProvider {
  constructor(native) {
    this._native = native
    this._sync = native.isSync
    this.name = native.name
  }

  async enqueue(type, payload, options) {
    checkType(type)
    if (options?.tx !== undefined) return (await this._enqueueInTx(options.tx, [{ type, payload, options }]))[0]
    const json = payloadJson(payload)
    const args = enqueueArgs(options)
    if (!this._sync) return parseJob(await this._native.enqueue(type, json, args))
    return this._newJob(this._native.enqueueSync(type, json, args), type, payload, options, Date.now())
  }

  /** Many jobs in one call: `items` is `[{ type, payload, options? }]`. All are checked first. */
  async enqueueBulk(items, bulkOptions) {
    if (bulkOptions?.tx !== undefined) return this._enqueueInTx(bulkOptions.tx, items)
    const { flat, options } = bulkArgs(items)
    if (!this._sync) return parseJobs(await this._native.enqueueBulk(flat, options))
    const ids = this._native.enqueueBulkSync(flat, options)
    const now = Date.now()
    const jobs = new Array(items.length)
    for (let i = 0; i < items.length; i++) {
      const it = items[i]
      jobs[i] = this._newJob(ids.slice(i * 36, i * 36 + 36), it.type, it.payload, it.options, now)
    }
    return jobs
  }

  /** Enqueue inside the caller's transaction (postgres): the SQL comes from Rust, `tx` runs it. */
  async _enqueueInTx(tx, items) {
    const run = txRunner(tx)
    if (this.name !== 'postgres') throw new TypeError(`options.tx needs the postgres provider; this provider is ${this.name}`)
    const { flat, options } = bulkArgs(items)
    const [sql, param] = this._native.txEnqueueSql(flat, options)
    const jobs = JSON.parse(await run(sql, param))
    if (jobs.length !== items.length) {
      throw new Error(`${items.length - jobs.length} deduplicated job(s) are held by a transaction not yet committed; nothing was queued by this call once its transaction rolls back`)
    }
    for (const j of jobs) if (j.scheduledFor === null) delete j.scheduledFor
    return jobs.map(toJob)
  }

  /** The job the memory provider just queued, built here rather than sent back as JSON. */
  _newJob(id, type, payload, o, now) {
    if (o && o.deduplicationKey !== undefined) return parseJob(this._native.getJobSync(id)) // maybe an existing job
    const job = {
      id,
      type,
      payload: payload === undefined ? null : payload,
      options: o
        ? { maxRetries: o.maxRetries ?? 3, timeout: o.timeout ?? 30000, priority: o.priority ?? 0 }
        : { maxRetries: 3, timeout: 30000, priority: 0 },
      status: 'pending',
      attempts: 0,
      createdAt: new Date(now),
    }
    const visibleAt = o && (o.scheduledFor !== undefined ? dateMs(o.scheduledFor, '') : o.delay >= 1 ? now + Math.floor(o.delay) : undefined)
    if (visibleAt > now) {
      job.status = 'scheduled'
      job.scheduledFor = new Date(visibleAt)
    }
    return job
  }

  async receive(maxMessages = 1, waitTimeSeconds = 20) {
    checkNonNegative(maxMessages, 'maxMessages', { integer: true, max: 4294967295 })
    checkNonNegative(waitTimeSeconds, 'waitTimeSeconds')
    if (this._sync) {
      const now = JSON.parse(this._native.tryReceiveSync(maxMessages))
      if (now.length > 0 || maxMessages === 0) return now.map(toJob)
    }
    return parseJobs(await this._native.receive(maxMessages, waitTimeSeconds * 1000))
  }

  /** Acknowledge an attempt; `result` (optional) is kept on the job. */
  async acknowledge(receiptHandle, result) {
    checkType(receiptHandle, 'receiptHandle')
    const r = result === undefined ? undefined : payloadJson(result, 'result')
    if (this._sync) this._native.acknowledgeSync(receiptHandle, r)
    else await this._native.acknowledge(receiptHandle, r)
  }

  async fail(receiptHandle, error) {
    checkType(receiptHandle, 'receiptHandle')
    const msg = errorMessage(error)
    if (this._sync) this._native.failSync(receiptHandle, msg)
    else await this._native.fail(receiptHandle, msg)
  }

  async getJob(jobId) {
    checkType(jobId, 'jobId')
    const json = this._sync ? this._native.getJobSync(jobId) : await this._native.getJob(jobId)
    return json == null ? null : parseJob(json)
  }

  async getStats() {
    return JSON.parse(await this._native.getStats())
  }

  async close() {
    await this._native.close()
  }
}

/** How to run one statement with one parameter on a caller's transaction, by its kind. */
function txRunner(tx) {
  if (tx !== null && typeof tx === 'object') {
    if (typeof tx.$queryRawUnsafe === 'function') {
      if (typeof tx.$transaction === 'function') {
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

const PROVIDER_TYPES = ['memory', 'sqs', 'postgres', 'sqlite']

function getDefaultProviderConfig() {
  return { type: 'memory', maxHistorySize: 1000 }
}

const SQS_KEYS = ['type', 'region', 'queueUrl', 'deadLetterQueueUrl', 'visibilityTimeout', 'endpoint', 'maxMessageBytes', 'messageGroupId']

function warnUnknownKeys(config, known, name) {
  for (const k of Object.keys(config)) {
    if (!known.includes(k)) logger.warn(`${name}.${k} is not a known option (known: ${known.join(', ')}); it is ignored`)
  }
}

function checkOptionalString(config, key, name) {
  const v = config[key]
  if (v !== undefined && v !== null && (typeof v !== 'string' || v.length === 0)) {
    throw new TypeError(`${name}.${key} must be a non-empty string, got ${describe(v)}`)
  }
}

function checkUrl(v, name) {
  let ok = false
  try {
    ok = /^https?:$/.test(new URL(v).protocol)
  } catch {}
  if (!ok) throw new TypeError(`${name} must be an http(s) URL, got ${describe(v)}`)
}

/** A `providerConfig` checked (errors name `name.<field>`), with its defaults filled in. */
function checkProviderConfig(config, name = 'providerConfig') {
  if (config === null || typeof config !== 'object') {
    throw new TypeError(`${name} must be an object, got ${describe(config)}`)
  }
  if (!PROVIDER_TYPES.includes(config.type)) {
    const t = typeof config.type === 'string' ? config.type : describe(config.type)
    throw new Error(`Unknown queue provider type: ${t} (${name}.type must be 'memory', 'sqs', 'postgres' or 'sqlite')`)
  }
  // The durable providers' settings are checked, and defaulted, in Rust.
  if (config.type === 'postgres' || config.type === 'sqlite') return config
  if (config.type === 'memory') {
    warnUnknownKeys(config, ['type', 'maxHistorySize'], name)
    const maxHistorySize = config.maxHistorySize ?? 1000
    checkNonNegative(maxHistorySize, `${name}.maxHistorySize`, { integer: true, max: 4294967295 })
    return { type: 'memory', maxHistorySize }
  }
  warnUnknownKeys(config, SQS_KEYS, name)
  for (const key of ['region', 'queueUrl']) {
    if (typeof config[key] !== 'string' || config[key].length === 0) {
      throw new TypeError(`${name}.${key} is required when type is 'sqs', got ${describe(config[key])}`)
    }
  }
  checkUrl(config.queueUrl, `${name}.queueUrl`)
  for (const key of ['deadLetterQueueUrl', 'endpoint', 'messageGroupId']) checkOptionalString(config, key, name)
  if (config.deadLetterQueueUrl) checkUrl(config.deadLetterQueueUrl, `${name}.deadLetterQueueUrl`)
  if (config.endpoint) checkUrl(config.endpoint, `${name}.endpoint`)
  const out = { ...config, visibilityTimeout: config.visibilityTimeout ?? 30, maxMessageBytes: config.maxMessageBytes ?? 262144 }
  checkNonNegative(out.visibilityTimeout, `${name}.visibilityTimeout`, { integer: true, max: 43200 })
  checkNonNegative(out.maxMessageBytes, `${name}.maxMessageBytes`, { integer: true, max: 1048576 })
  if (out.maxMessageBytes < 1024) throw new RangeError(`${name}.maxMessageBytes must be at least 1024, got ${out.maxMessageBytes}`)
  for (const key of Object.keys(out)) if (out[key] === undefined || out[key] === null) delete out[key]
  return out
}

/** Create a provider from a `providerConfig`. */
async function createQueueProvider(providerConfig) {
  const c = checkProviderConfig(providerConfig)
  if (c.type === 'memory') return new NativeQueueProvider(binding.createMemoryProvider(c.maxHistorySize))
  return new NativeQueueProvider(await binding.createProvider(JSON.stringify(c)))
}

let provider = null

async function initializeQueueProvider(queueConfig) {
  if (provider) {
    logger.warn('Queue provider already initialized; returning the existing one')
    return provider
  }
  const c = queueConfig === undefined || queueConfig === null ? null : validateQueueConfig(queueConfig)
  provider = await createQueueProvider(c && c.enabled ? c.providerConfig : getDefaultProviderConfig())
  return provider
}

function getQueueProvider() {
  if (!provider) {
    logger.warn('Queue provider not initialized; using an in-memory provider')
    provider = new NativeQueueProvider(binding.createMemoryProvider(getDefaultProviderConfig().maxHistorySize))
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
  const entry = handlers.get(job.type)
  if (!entry) throw new Error(`No handler registered for job type: ${job.type}`)
  return entry.handler(job, ctx)
}

// ---- worker ----------------------------------------------------------------------------

const WORKER_DEFAULTS = { mode: 'in-process', concurrency: 5, pollInterval: 1000, shutdownTimeout: 30000 }

function workerConfig(config = {}, name = 'worker') {
  if (config === null || typeof config !== 'object') throw new TypeError(`${name} must be an object, got ${describe(config)}`)
  warnUnknownKeys(config, Object.keys(WORKER_DEFAULTS), name)
  const c = { ...WORKER_DEFAULTS }
  for (const k of Object.keys(WORKER_DEFAULTS)) if (config[k] !== undefined) c[k] = config[k]
  if (c.mode !== 'in-process' && c.mode !== 'standalone') {
    throw new RangeError(`${name}.mode must be 'in-process' or 'standalone', got ${describe(c.mode)}`)
  }
  checkNonNegative(c.concurrency, `${name}.concurrency`, { integer: true, max: 100000 })
  if (c.concurrency < 1) throw new RangeError(`${name}.concurrency must be at least 1, got ${c.concurrency}`)
  checkNonNegative(c.pollInterval, `${name}.pollInterval`, { max: MAX_TIMER_MS })
  checkNonNegative(c.shutdownTimeout, `${name}.shutdownTimeout`, { max: MAX_TIMER_MS })
  return c
}

/** Runs jobs from a provider with the registered handlers; the pool itself is in Rust. */
class Worker {
  constructor({ provider: p, config } = {}) {
    if (!(p instanceof NativeQueueProvider)) {
      throw new TypeError(`Worker needs a provider made by createQueueProvider, got ${describe(p)}`)
    }
    this.provider = p
    this.config = workerConfig(config)
    this._native = new binding.NativeWorker(p._native, JSON.stringify(this.config))
    this._running = new Map() // token -> { ac, job }
    this._outcomes = []
    this._flushQueued = false
    this._runPromise = null
    this._flush = () => this._flushOutcomes()
  }

  /** Start taking jobs. Resolves when the worker has stopped. */
  start() {
    if (!this._runPromise) {
      this._runPromise = this._native
        .run(
          (json) => this._startBatch(json),
          ([tokens, reason]) => this._abort(tokens, reason),
        )
        .finally(() => {
          this._runPromise = null
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
    return JSON.parse(this._native.stats())
  }

  _startBatch(json) {
    const batch = JSON.parse(json)
    for (let i = 0; i < batch.length; i++) this._startJob(batch[i].token, toJob(batch[i].job))
  }

  _startJob(token, job) {
    // The AbortController is made when a handler first reads `ctx.signal`: most never do,
    // and making one per job would cost more than the rest of the dispatch.
    const run = { ac: null, abortReason: undefined, job }
    this._running.set(token, run)
    const native = this._native
    const ctx = {
      jobId: job.id,
      attempt: job.attempts,
      log: (msg, ...args) => binding.log('info', `[job ${job.id}] ${util.format(msg, ...args)}`),
      progress: (percent) => {
        checkNonNegative(percent, 'progress', { max: 100 })
        native.progress(token, percent)
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
      r = entry.handler(job, ctx)
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
    if (next) this._startBatch(next)
  }

  _abort(tokens, reason) {
    for (const token of tokens) {
      const run = this._running.get(token)
      if (!run || run.abortReason !== undefined) continue
      run.abortReason = new Error(reason === 'timeout' ? `Job timed out after ${run.job.options.timeout} ms` : 'Worker is shutting down')
      if (run.ac) run.ac.abort(run.abortReason)
    }
  }
}

let worker = null

function getWorker(options) {
  if (!worker) {
    if (!options) throw new Error('Worker not initialized: call getWorker({ provider, config }) or startWorker() first')
    worker = new Worker(options)
  }
  return worker
}

/** Start the process-wide worker in the background; returns it. */
function startWorker(options = {}) {
  const w = getWorker({ provider: options.provider || getQueueProvider(), config: options.config })
  w.start().catch((e) => logger.error(`worker stopped with an error: ${e && e.message}`))
  return w
}

async function stopWorker() {
  if (worker) await worker.stop()
}

function resetWorker() {
  worker = null
}

// ---- scheduler (begin) ----
// The database-backed scheduler (one-time and recurring jobs); the scheduler itself is in
// Rust (crates/core/src/scheduler.rs). Rows come back as Prisma returned them to the old
// scheduler: `payload`/`options` as JSON text, dates as `Date`s, absent values as `null`.

const SCHEDULER_DEFAULTS = { enabled: false, pollInterval: 60000, autoMigrate: true }

function schedulerConfig(config = {}, name = 'scheduler') {
  if (config === null || typeof config !== 'object') {
    throw new TypeError(`${name} must be an object, got ${describe(config)}`)
  }
  warnUnknownKeys(config, [...Object.keys(SCHEDULER_DEFAULTS), 'databaseUrl'], name)
  const c = { ...SCHEDULER_DEFAULTS }
  if (config.enabled !== undefined) {
    if (typeof config.enabled !== 'boolean') throw new TypeError(`${name}.enabled must be a boolean, got ${describe(config.enabled)}`)
    c.enabled = config.enabled
  }
  if (config.pollInterval !== undefined) {
    checkNonNegative(config.pollInterval, `${name}.pollInterval`, { max: MAX_TIMER_MS })
    if (config.pollInterval < 1) throw new RangeError(`${name}.pollInterval must be at least 1 ms, got ${describe(config.pollInterval)}`)
    c.pollInterval = Math.round(config.pollInterval)
  }
  if (config.databaseUrl !== undefined && config.databaseUrl !== null) {
    if (typeof config.databaseUrl !== 'string' || !/^(postgres|postgresql|sqlite):/i.test(config.databaseUrl)) {
      throw new TypeError(`${name}.databaseUrl must be a postgres://, postgresql:// or sqlite: URL, got ${describe(typeof config.databaseUrl === 'string' ? config.databaseUrl.replace(/:\/\/([^:@/]*):[^@/]*@/, '://$1:***@') : config.databaseUrl)}`)
    }
    c.databaseUrl = config.databaseUrl
  }
  if (config.autoMigrate !== undefined) {
    if (typeof config.autoMigrate !== 'boolean') throw new TypeError(`${name}.autoMigrate must be a boolean, got ${describe(config.autoMigrate)}`)
    c.autoMigrate = config.autoMigrate
  }
  return c
}

const dateOrNull = (ms) => (ms === null || ms === undefined ? null : new Date(ms))

function toScheduledJob(r) {
  r.scheduledFor = new Date(r.scheduledFor)
  r.createdAt = new Date(r.createdAt)
  r.updatedAt = new Date(r.updatedAt)
  return r
}

function toRecurringJob(r) {
  r.nextRunAt = dateOrNull(r.nextRunAt)
  r.lastRunAt = dateOrNull(r.lastRunAt)
  r.createdAt = new Date(r.createdAt)
  r.updatedAt = new Date(r.updatedAt)
  return r
}

/** Job options stored with a scheduled or recurring job (delay/scheduledFor do not apply). */
function jobOptionsArgs(options, name) {
  const args = enqueueArgs(options, name)
  if (args) {
    delete args.delay
    delete args.scheduledFor
  }
  return args
}

/** Delayed and recurring jobs kept in a database and enqueued to `provider` when due. */
class Scheduler {
  constructor({ provider: p, config } = {}) {
    if (!(p instanceof NativeQueueProvider)) {
      throw new TypeError(`Scheduler needs a provider made by createQueueProvider, got ${describe(p)}`)
    }
    this.provider = p
    this.config = schedulerConfig(config)
    this._native = new binding.NativeScheduler(p._native, JSON.stringify(this.config))
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
    return JSON.parse(await this._native.pollOnce())
  }

  /** Store a job to be enqueued at `date` (a Date, epoch ms or date string). */
  async schedule(type, payload, date, options) {
    checkType(type)
    const json = payloadJson(payload)
    const at = dateMs(date, 'date')
    const args = jobOptionsArgs(options, 'options')
    return toScheduledJob(JSON.parse(await this._native.schedule(type, json, at, args ? JSON.stringify(args) : undefined)))
  }

  /** A scheduled job by id, or null. */
  async getScheduledJob(id) {
    checkType(id, 'id')
    const json = await this._native.getScheduledJob(id)
    return json == null ? null : toScheduledJob(JSON.parse(json))
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
    checkType(input.type, 'input.type')
    if (typeof input.schedule !== 'string' || input.schedule.trim().length === 0) {
      throw new TypeError(`input.schedule must be a cron expression or "every N unit", got ${describe(input.schedule)}`)
    }
    if (input.timezone !== undefined && input.timezone !== null && typeof input.timezone !== 'string') {
      throw new TypeError(`input.timezone must be an IANA time zone name, got ${describe(input.timezone)}`)
    }
    const payload = payloadJson(input.payload, 'input.payload')
    const args = jobOptionsArgs(input.options, 'input.options')
    const parts = [
      `"name":${JSON.stringify(input.name)}`,
      `"type":${JSON.stringify(input.type)}`,
      `"payload":${payload}`,
      `"schedule":${JSON.stringify(input.schedule)}`,
    ]
    if (typeof input.timezone === 'string') parts.push(`"timezone":${JSON.stringify(input.timezone)}`)
    if (args) parts.push(`"options":${JSON.stringify(args)}`)
    return toRecurringJob(JSON.parse(await this._native.registerRecurring(`{${parts.join(',')}}`)))
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
    return JSON.parse(await this._native.listRecurring()).map(toRecurringJob)
  }
}

let scheduler = null

/** The process-wide scheduler, made on first call (with the queue provider and defaults when no options). */
function getScheduler(options) {
  if (!scheduler) {
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
 * The whole `queue` block checked, with defaults filled in. Errors name the path at fault,
 * e.g. `queue.providerConfig.queueUrl is required when type is 'sqs'`. A disabled queue's
 * provider settings are not checked (it runs on the default memory provider).
 */
function validateQueueConfig(queueConfig, name = 'queue') {
  if (queueConfig === null || typeof queueConfig !== 'object') throw new TypeError(`${name} must be an object, got ${describe(queueConfig)}`)
  warnUnknownKeys(queueConfig, ['enabled', 'providerConfig', 'worker', 'scheduler'], name)
  const enabled = queueConfig.enabled ?? false
  if (typeof enabled !== 'boolean') throw new TypeError(`${name}.enabled must be a boolean, got ${describe(enabled)}`)
  if (enabled && queueConfig.providerConfig === undefined) throw new TypeError(`${name}.providerConfig is required when ${name}.enabled is true`)
  return {
    enabled,
    providerConfig: enabled ? checkProviderConfig(queueConfig.providerConfig, `${name}.providerConfig`) : getDefaultProviderConfig(),
    worker: workerConfig(queueConfig.worker ?? {}, `${name}.worker`),
    scheduler: schedulerConfig(queueConfig.scheduler ?? {}, `${name}.scheduler`),
  }
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

// One object literal, so ES-module importers (`import { x }`, `export * from`) see every name.
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
  startWorker,
  stopWorker,
  getWorker,
  resetWorker,
  validateQueueConfig,
  initializeQueue,
  shutdownQueue,
  loadJobHandlers,
  Scheduler,
  getScheduler,
  startScheduler,
  stopScheduler,
  resetScheduler,
  logger,
}
