'use strict'
// The Scheduler class and nextRuns(): wrappers of the Rust scheduler.

const binding = require('./native.js')
const otel = require('../otel.js')
const { describe, checkType, payloadJson, rangeError } = require('./check.js')
const { NativeQueueProvider } = require('./providers.js')

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
    throw rangeError(e)
  }
  return runs.map((ms) => new Date(ms))
}

module.exports = { Scheduler, nextRuns }
