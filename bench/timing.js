'use strict'
// Timing helpers shared by the benchmarks: a paced producer (a steady offered rate on the
// monotonic clock), percentiles of a sorted sample, and a clock that processes share.

const { performance } = require('node:perf_hooks')

/**
 * Milliseconds on the host's monotonic clock (CLOCK_MONOTONIC, since boot), which every process
 * on the host reads alike: for instants taken in different processes and compared. Not
 * `performance.timeOrigin + performance.now()`: each process fixes its origin from the wall
 * clock as it starts, and the wall clock is slewed and stepped while the monotonic one runs on
 * (a worker process started minutes after the bench disagreed with it by 2.7 ms, so handlers
 * seemed to start before their enqueue had resolved).
 */
const hostNow = () => Number(process.hrtime.bigint()) / 1e6

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

/**
 * Calls `enqueueOne()` `rate` times a second for `durationMs`, paced on the monotonic clock: a
 * 1 ms interval timer enqueues every job due by now (so a late tick catches up, and the offered
 * rate stays `rate` on average). Returns how many were sent and over how long.
 */
function pace(rate, durationMs, enqueueOne) {
  const total = Math.round((rate * durationMs) / 1000)
  return new Promise((resolve) => {
    const start = performance.now()
    let sent = 0
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1)
      while (sent < due) {
        enqueueOne()
        sent++
      }
      if (sent >= total) {
        clearInterval(timer)
        resolve({ sent, seconds: (performance.now() - start) / 1000 })
      }
    }, 1)
  })
}

module.exports = { hostNow, pace, percentile }
