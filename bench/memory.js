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
 * RSS per pending job, in a fresh process (`node --expose-gc --max-semi-space-size=1
 * bench/memory.js <n> rss`): the least-squares slope of RSS over ten points of filling a queue
 * to `n`. The queue keeps nothing on V8's heap, but filling it makes garbage there; a small
 * young generation keeps V8's share of RSS from growing with that garbage.
 */
async function rssChild(n) {
  const p = await q.createQueueProvider({ type: 'memory' })
  const xs = []
  const ys = []
  for (let i = 0; i < n; i += BATCH) {
    await p.enqueueBulk(items)
    if ((i + BATCH) % (n / 10) === 0) {
      xs.push(i + BATCH)
      ys.push(rss())
    }
  }
  const mx = xs.reduce((a, b) => a + b) / xs.length
  const my = ys.reduce((a, b) => a + b) / ys.length
  const slope = xs.reduce((a, x, k) => a + (x - mx) * (ys[k] - my), 0) / xs.reduce((a, x) => a + (x - mx) ** 2, 0)
  await p.close()
  return { perJob: slope }
}

/**
 * The timed figures with `n` jobs already queued, in a fresh process (`node bench/memory.js
 * <n>`): the queue is filled (untimed), the timed work is warmed up on a second provider
 * (JIT, allocator), then measured on the full queue.
 */
async function timeChild(n) {
  const p = await q.createQueueProvider({ type: 'memory', maxHistorySize: 1000 })
  for (let i = 0; i < n; i += BATCH) await p.enqueueBulk(items)
  const warm = await q.createQueueProvider({ type: 'memory' })
  await measure(warm)
  await warm.close()
  const f = await measure(p)
  await p.close()
  return f
}

function inChild(args) {
  const { execFileSync } = require('node:child_process')
  return JSON.parse(execFileSync(process.execPath, ['--expose-gc', ...args], { encoding: 'utf8' }))
}

async function rowsAt(n) {
  const f = inChild([__filename, String(n)])
  const rows = [
    { name: `enqueueBulk (batches of ${BATCH}), ${n} queued (median of 5)`, value: Math.round(f.bulk), unit: 'jobs/s', target: '≥ 1,000,000' },
    { name: `awaited single enqueue, ${n} queued (median of 5)`, value: Math.round(f.single), unit: 'jobs/s', target: '≥ 150,000' },
    { name: `receive(1000) + acknowledge each, ${n} queued (median of 5)`, value: Math.round(f.receive), unit: 'jobs/s', target: 'within 20% across sizes' },
  ]
  // At 10k the growth (about 2 MB) is within V8's and the allocator's steps: not printed.
  if (n >= 100000) {
    const { perJob } = inChild(['--max-semi-space-size=1', __filename, String(n), 'rss'])
    rows.push({ name: `RSS per pending job (payload ~10 B; slope of RSS while filling), ${n} queued`, value: Math.round(perJob), unit: 'bytes', target: '≤ 300 + payload' })
  }
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
  const n = Number(process.argv[2])
  ;(process.argv[3] === 'rss' ? rssChild(n) : timeChild(n)).then(
    (f) => process.stdout.write(JSON.stringify(f)),
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
}
