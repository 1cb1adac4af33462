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

const BATCH = 10000
const items = Array.from({ length: BATCH }, (_, k) => ({ type: 'bench', payload: { i: k } }))

async function drain(p, m) {
  for (let done = 0; done < m; ) {
    const got = await p.receive(1000, 0)
    for (const r of got) await p.acknowledge(r.receiptHandle)
    done += got.length
  }
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1]

/**
 * Timed work at one queue depth, each the median of 5 rounds that leave the depth as it was:
 * 100k jobs by enqueueBulk (then 100k drained, untimed); 50k awaited single enqueues; 50k
 * received and acknowledged one by one.
 */
async function measure(p) {
  const bulk = []
  const single = []
  const receive = []
  for (let round = 0; round < 5; round++) {
    let t = process.hrtime.bigint()
    for (let i = 0; i < 100000; i += BATCH) await p.enqueueBulk(items)
    bulk.push(100000 / elapsed(t))
    await drain(p, 100000)
    const m = 50000
    t = process.hrtime.bigint()
    for (let i = 0; i < m; i++) await p.enqueue('bench', { i })
    single.push(m / elapsed(t))
    t = process.hrtime.bigint()
    await drain(p, m)
    receive.push(m / elapsed(t))
  }
  return { bulk: median(bulk), single: median(single), receive: median(receive) }
}

/**
 * The figures with `n` jobs already queued, in a fresh process (`node bench/memory.js <n>`).
 * A first provider is filled with 100k jobs and kept, so V8's heap and the JIT are warm and
 * its memory is not reused; then the measured queue is filled (untimed), giving RSS per
 * pending job;
 * a warm-up of the timed work on a third provider; then the timed work on the measured queue.
 */
async function child(n) {
  const keep = await q.createQueueProvider({ type: 'memory' })
  for (let i = 0; i < 100000; i += BATCH) await keep.enqueueBulk(items)
  const p = await q.createQueueProvider({ type: 'memory', maxHistorySize: 1000 })
  // RSS per job as the slope between half full and full: fixed costs (code, the first heap
  // pages, allocator metadata) fall out.
  for (let i = 0; i < n / 2; i += BATCH) await p.enqueueBulk(items)
  const half = rss()
  for (let i = n / 2; i < n; i += BATCH) await p.enqueueBulk(items)
  const perJob = (rss() - half) / (n / 2)
  const warm = await q.createQueueProvider({ type: 'memory' })
  await measure(warm)
  await warm.close()
  const f = await measure(p)
  await p.close()
  await keep.close()
  process.stdout.write(JSON.stringify({ perJob, ...f }))
}

async function rowsAt(n) {
  const { execFileSync } = require('node:child_process')
  const f = JSON.parse(execFileSync(process.execPath, ['--expose-gc', __filename, String(n)], { encoding: 'utf8' }))
  const rows = [
    { name: `enqueueBulk (batches of ${BATCH}), ${n} queued (median of 5)`, value: Math.round(f.bulk), unit: 'jobs/s', target: '≥ 1,000,000' },
    { name: `awaited single enqueue, ${n} queued (median of 5)`, value: Math.round(f.single), unit: 'jobs/s', target: '≥ 150,000' },
    { name: `receive(1000) + acknowledge each, ${n} queued (median of 5)`, value: Math.round(f.receive), unit: 'jobs/s', target: 'within 20% across sizes' },
  ]
  // At 10k the RSS growth is below the allocator's and V8's page granularity: not printed.
  if (n >= 100000) rows.push({ name: `RSS per pending job (payload ~10 B), ${n} queued`, value: Math.round(f.perJob), unit: 'bytes', target: '≤ 300 + payload' })
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

if (require.main === module && process.argv[2]) {
  child(Number(process.argv[2])).catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
