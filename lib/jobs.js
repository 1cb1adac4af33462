'use strict'
// Jobs across the boundary: job objects built from what the native side returns.

const binding = require('./native.js')

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

module.exports = { toJob, parseJobs, SLOTS, queuedJob, queuedJobs, fromNative }
