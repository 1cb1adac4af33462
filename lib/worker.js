'use strict'
// The Worker: runs jobs from a provider with the registered handlers; the pool itself is in Rust.

const util = require('node:util')
const binding = require('./native.js')
const otel = require('../otel.js')
const { describe, rejectUnserialisable, errorMessage } = require('./check.js')
const { toJob } = require('./jobs.js')
const { NativeQueueProvider } = require('./providers.js')
const { getJobHandler } = require('./registry.js')
const { logger } = require('./log.js')
const { serveMetrics } = require('./metrics.js')
const { Listeners } = require('./events.js')

/** Runs jobs from a provider with the registered handlers; the pool itself is in Rust. */
class Worker extends Listeners {
  constructor(options = {}) {
    super()
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
    this._eventQueue = []
    this._metricsServer = null
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
    this._metricsServer = serveMetrics(this.config.metricsPort)
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
    for (let i = 0; i < batch.length; i++) {
      const d = batch[i]
      const job = toJob(d.job)
      job.receiptHandle = d.receiptHandle // a ReceivedJob, as the old queue handed handlers
      this._startJob(d.token, job, d.lastAttempt === true, tracer)
    }
  }

  _startJob(token, job, last, tracer) {
    // The AbortController is made when a handler first reads `ctx.signal`: most never do,
    // and making one per job would cost more than the rest of the dispatch.
    const run = { ac: null, abortReason: undefined, job, last, span: null, context: null }
    if (tracer !== null) otel.startProcess(tracer, this.provider.name, job, run)
    this._running.set(token, run)
    if (this._emitter !== null) this._emit('active', [job])
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
        if (native.progress(token, percent) && worker._emitter !== null) worker._emit('progress', [job, percent])
      },
      get signal() {
        if (!run.ac) {
          run.ac = new AbortController()
          if (run.abortReason !== undefined) run.ac.abort(run.abortReason)
        }
        return run.ac.signal
      },
    }
    const entry = getJobHandler(job.type)
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
    if (this._emitter !== null && run && run.abortReason === undefined) {
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
      if (reason === 'timeout' && this._emitter !== null) this._failureEvents(run, run.abortReason)
    }
    if (this._eventQueue.length !== 0) this._emitQueued()
  }

  /** `stalled` (a lease of this worker's provider ran out and the provider took the job back). */
  _providerEvent(json) {
    if (this._emitter === null) return
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

module.exports = { Worker }
