'use strict'
// Events: the `on`/`off` of a Worker and of QueueEvents (a node:events emitter), and the
// queue's events from every process (PostgreSQL LISTEN/NOTIFY).

const { toJob } = require('./jobs.js')
const { NativeQueueProvider, createQueueProvider } = require('./providers.js')
const { EventEmitter } = require('node:events')
const { describe } = require('./check.js')
const { logger } = require('./log.js')

const WORKER_EVENTS = ['active', 'completed', 'failed', 'dead', 'progress', 'stalled']

/**
 * `on`/`off` of a Worker and of QueueEvents (WorkerEvents in index.d.ts). The listeners are in a
 * node:events emitter made on the first `on`; `_emitter` is null while none is registered, so
 * jobs pay nothing for events. A listener that throws is logged; the others still run.
 */
class Listeners {
  constructor() {
    this._emitter = null
  }

  /** Call `fn` on each `event` (see WorkerEvents in index.d.ts). Listener errors are logged. */
  on(event, fn) {
    if (!WORKER_EVENTS.includes(event)) throw new TypeError(`event must be one of ${WORKER_EVENTS.join(', ')}, got ${describe(event)}`)
    if (typeof fn !== 'function') throw new TypeError(`listener for '${event}' must be a function, got ${describe(fn)}`)
    if (this._emitter === null) this._emitter = new EventEmitter().setMaxListeners(0)
    this._emitter.on(event, fn)
    return this
  }

  off(event, fn) {
    if (this._emitter === null || typeof fn !== 'function') return this
    this._emitter.off(event, fn)
    if (this._emitter.eventNames().length === 0) this._emitter = null
    return this
  }

  _emit(event, args) {
    if (this._emitter === null) return
    // Not `emit`: it would stop at the first listener that throws.
    for (const fn of this._emitter.listeners(event)) {
      try {
        fn(...args)
      } catch (e) {
        logger.warn(`worker '${event}' listener threw: ${e && e.message}`)
      }
    }
  }
}

/** The queue's event stream in any process: `on`/`off` as on a Worker (WorkerEvents). */
class QueueEvents extends Listeners {
  constructor(provider, ownsProvider) {
    super()
    this.provider = provider
    this._native = null
    this._owns = ownsProvider
  }

  /** `[{ e, job, a?, ms?, r?, p? }]` from Rust: the event's own facts, and the job as stored. */
  _deliver(json) {
    if (this._emitter === null) return
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
    this._emitter = null
    if (this._owns) await this.provider.close()
  }
}

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

module.exports = { Listeners, createQueueEvents }
