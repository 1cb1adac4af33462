'use strict'
// A plain in-process JavaScript job queue, written only as a yardstick for bench/worker.js:
// what a straightforward, reasonably efficient pure-JS queue does on the same workload.
//
// - pending jobs in a growable ring buffer (O(1) push/shift, no Array#shift copying);
// - `receive` hands out jobs and records them as in flight in a Map keyed by receipt handle;
// - `acknowledge` / `fail` are Map lookups (a failed job is re-queued until out of retries);
// - `PlainWorker` runs `concurrency` async loops, each taking a job, awaiting its handler and
//   acknowledging it; an idle loop sleeps on a promise that `enqueue` resolves (no polling).
//
// It has none of the package's delays, priorities, timeouts, abort signals, progress or job
// history, so it does less work per job than the package's worker — it is an upper bound for a
// simple JS design, not a strawman.

const { randomUUID } = require('node:crypto')

class Ring {
  constructor(capacity = 1024) {
    this.buf = new Array(capacity)
    this.mask = capacity - 1
    this.head = 0
    this.length = 0
  }

  push(v) {
    if (this.length === this.buf.length) this._grow()
    this.buf[(this.head + this.length) & this.mask] = v
    this.length++
  }

  shift() {
    if (this.length === 0) return undefined
    const v = this.buf[this.head]
    this.buf[this.head] = undefined
    this.head = (this.head + 1) & this.mask
    this.length--
    return v
  }

  _grow() {
    const old = this.buf
    const next = new Array(old.length * 2)
    for (let i = 0; i < this.length; i++) next[i] = old[(this.head + i) & this.mask]
    this.buf = next
    this.mask = next.length - 1
    this.head = 0
  }
}

class PlainQueue {
  constructor() {
    this.pending = new Ring()
    this.inFlight = new Map() // receiptHandle -> job
    this.waiters = [] // resolve functions of idle worker loops
    this.completed = 0
    this.failed = 0
  }

  enqueue(type, payload, options = {}) {
    const job = {
      id: randomUUID(),
      type,
      payload: payload === undefined ? null : payload,
      options: { maxRetries: options.maxRetries ?? 3 },
      status: 'pending',
      attempts: 0,
      createdAt: Date.now(),
    }
    this.pending.push(job)
    const w = this.waiters.pop()
    if (w) w()
    return job
  }

  enqueueBulk(items) {
    return items.map((it) => this.enqueue(it.type, it.payload, it.options))
  }

  /** Take one pending job (or undefined), marking it in flight. */
  take() {
    const job = this.pending.shift()
    if (job === undefined) return undefined
    job.status = 'processing'
    job.attempts++
    this.inFlight.set(job.id, job)
    return job
  }

  /** Resolves once a job may be available. */
  waitForJob() {
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  acknowledge(receiptHandle) {
    const job = this.inFlight.get(receiptHandle)
    if (!job) return
    this.inFlight.delete(receiptHandle)
    job.status = 'completed'
    this.completed++
  }

  fail(receiptHandle, error) {
    const job = this.inFlight.get(receiptHandle)
    if (!job) return
    this.inFlight.delete(receiptHandle)
    job.error = error instanceof Error ? error.message : String(error)
    if (job.attempts <= job.options.maxRetries) {
      job.status = 'pending'
      this.pending.push(job)
    } else {
      job.status = 'dead'
      this.failed++
    }
  }
}

class PlainWorker {
  constructor(queue, handlers, { concurrency = 5 } = {}) {
    this.queue = queue
    this.handlers = handlers // Map type -> async (job) => result
    this.concurrency = concurrency
    this.running = false
    this.processed = 0
    this._loops = []
  }

  start() {
    this.running = true
    for (let i = 0; i < this.concurrency; i++) this._loops.push(this._loop())
  }

  async _loop() {
    const q = this.queue
    while (this.running) {
      const job = q.take()
      if (job === undefined) {
        await q.waitForJob()
        continue
      }
      const handler = this.handlers.get(job.type)
      try {
        if (!handler) throw new Error(`No handler registered for job type: ${job.type}`)
        await handler(job)
        q.acknowledge(job.id)
      } catch (e) {
        q.fail(job.id, e)
      }
      this.processed++
    }
  }

  async stop() {
    this.running = false
    // wake idle loops so they see `running === false`
    for (const w of this.queue.waiters.splice(0)) w()
    await Promise.all(this._loops)
    this._loops = []
  }
}

module.exports = { PlainQueue, PlainWorker, Ring }
