'use strict'
// The memory provider at 10k, 100k and 1M queued jobs: enqueueBulk, awaited single enqueue,
// receive+acknowledge, RSS per pending job, and the wake-up latency of a blocked receive.
// Run with --expose-gc (npm run bench does) so RSS is read after a full collection.
const q = require('..')

function rss() {
  if (global.gc) global.gc()
  return process.memoryUsage().rss
}

const elapsed = (t) => Number(process.hrtime.bigint() - t) / 1e9

async function rowsAt(n) {
  const rows = []
  const p = await q.createQueueProvider({ type: 'memory', maxHistorySize: 1000 })
  // The items are made before the clock starts: the figure is enqueueBulk's, not the caller's.
  const batch = 10000
  const items = Array.from({ length: batch }, (_, k) => ({ type: 'bench', payload: { i: k } }))
  const before = rss()
  let t = process.hrtime.bigint()
  for (let i = 0; i < n; i += batch) await p.enqueueBulk(items)
  rows.push({ name: `enqueueBulk (batches of ${batch}), ${n} queued`, value: Math.round(n / elapsed(t)), unit: 'jobs/s', target: '≥ 1,000,000' })
  rows.push({ name: `RSS per pending job (payload ~10 B), ${n} queued`, value: Math.round((rss() - before) / n), unit: 'bytes', target: '≤ 300 + payload' })
  const m = 50000
  t = process.hrtime.bigint()
  for (let i = 0; i < m; i++) await p.enqueue('bench', { i })
  rows.push({ name: `awaited single enqueue, ${n} queued`, value: Math.round(m / elapsed(t)), unit: 'jobs/s', target: '≥ 150,000' })
  t = process.hrtime.bigint()
  for (let done = 0; done < m; ) {
    const got = await p.receive(1000, 0)
    for (const r of got) await p.acknowledge(r.receiptHandle)
    done += got.length
  }
  rows.push({ name: `receive(1000) + acknowledge each, ${n} queued`, value: Math.round(m / elapsed(t)), unit: 'jobs/s', target: 'within 20% across sizes' })
  await p.close()
  return rows
}

async function wakeLatency() {
  const p = await q.createQueueProvider({ type: 'memory' })
  const lat = []
  for (let i = 0; i < 1000; i++) {
    const waiting = p.receive(1, 5)
    await new Promise((r) => setImmediate(r))
    const t = process.hrtime.bigint()
    await p.enqueue('w', i)
    await waiting
    lat.push(elapsed(t) * 1000)
  }
  await p.close()
  lat.sort((a, b) => a - b)
  const at = (f) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))].toFixed(3)
  return [{ name: 'blocked receive wake-up after enqueue, p50 / p99 (1,000 samples)', value: `${at(0.5)} / ${at(0.99)}`, unit: 'ms', target: '≤ 1' }]
}

async function run() {
  const rows = []
  for (const n of [10000, 100000, 1000000]) rows.push(...(await rowsAt(n)))
  rows.push(...(await wakeLatency()))
  return rows
}

module.exports = { run }
