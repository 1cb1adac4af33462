'use strict'
// The queue's events from every process (PostgreSQL LISTEN/NOTIFY).

const { toJob } = require('./jobs.js')
const { NativeQueueProvider, createQueueProvider } = require('./providers.js')
const { Worker } = require('./worker.js')

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

module.exports = { createQueueEvents }
