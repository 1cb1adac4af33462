'use strict'
// `npm run bench`: the memory provider and worker figures, then the scheduler and SQS
// benchmarks (bench/scheduler.js, bench/sqs.js). Prints one table.
const q = require('..')

function rssMb() {
  global.gc && global.gc()
  return process.memoryUsage().rss
}

async function memoryRows(n) {
  const rows = []
  const p = await q.createQueueProvider({ type: 'memory', maxHistorySize: 1000 })
  const before = rssMb()
  let t = process.hrtime.bigint()
  const batch = 10000
  for (let i = 0; i < n; i += batch) {
    await p.enqueueBulk(Array.from({ length: Math.min(batch, n - i) }, (_, k) => ({ type: 'bench', payload: { i: i + k } })))
  }
  let s = Number(process.hrtime.bigint() - t) / 1e9
  rows.push({ name: `enqueueBulk, ${n} queued`, value: Math.round(n / s), unit: 'jobs/s', target: '≥ 1,000,000' })
  const perJob = (rssMb() - before) / n
  rows.push({ name: `RSS per pending job (payload ~10 B), ${n} queued`, value: Math.round(perJob), unit: 'bytes', target: '≤ 300 + payload' })
  const m = 20000
  t = process.hrtime.bigint()
  for (let i = 0; i < m; i++) await p.enqueue('bench', { i })
  s = Number(process.hrtime.bigint() - t) / 1e9
  rows.push({ name: `awaited single enqueue, ${n} queued`, value: Math.round(m / s), unit: 'jobs/s', target: '≥ 150,000' })
  t = process.hrtime.bigint()
  let done = 0
  while (done < m) {
    const got = await p.receive(1000, 0)
    for (const r of got) await p.acknowledge(r.receiptHandle)
    done += got.length
  }
  s = Number(process.hrtime.bigint() - t) / 1e9
  rows.push({ name: `receive+acknowledge, ${n} queued`, value: Math.round(m / s), unit: 'jobs/s', target: '' })
  await p.close()
  return rows
}

async function wakeLatency() {
  const p = await q.createQueueProvider({ type: 'memory' })
  const lat = []
  for (let i = 0; i < 200; i++) {
    const waiting = p.receive(1, 5)
    await new Promise((r) => setImmediate(r))
    const t = process.hrtime.bigint()
    await p.enqueue('w', i)
    await waiting
    lat.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  lat.sort((a, b) => a - b)
  return [{ name: 'blocked receive wake-up after enqueue, p50 / p99', value: `${lat[100].toFixed(3)} / ${lat[198].toFixed(3)}`, unit: 'ms', target: '≤ 1' }]
}

async function workerRows(concurrency, n = 100000) {
  const p = await q.createQueueProvider({ type: 'memory' })
  q.registerJobHandler('noop', async () => {})
  const w = new q.Worker({ provider: p, config: { concurrency } })
  for (let i = 0; i < n; i += 10000) await p.enqueueBulk(Array.from({ length: 10000 }, () => ({ type: 'noop', payload: null })))
  const t = process.hrtime.bigint()
  w.start()
  while (w.getStats().processed < n) await new Promise((r) => setTimeout(r, 5))
  const s = Number(process.hrtime.bigint() - t) / 1e9
  await w.stop()
  await p.close()
  return [{ name: `worker, no-op handlers, ${n} jobs, concurrency ${concurrency}`, value: Math.round(n / s), unit: 'jobs/s', target: concurrency >= 50 ? '≥ 100,000' : '≥ 50,000' }]
}

async function main() {
  const only = process.argv[2]
  let rows = []
  if (!only || only === 'memory') {
    for (const n of [10000, 100000, 1000000]) rows.push(...(await memoryRows(n)))
    rows.push(...(await wakeLatency()))
  }
  if (!only || only === 'worker') {
    rows.push(...(await workerRows(50)), ...(await workerRows(5)))
  }
  if (!only || only === 'scheduler') rows.push(...(await require('./scheduler.js').run()))
  if (!only || only === 'sqs') rows.push(...(await require('./sqs.js').run()))
  console.log('\n| benchmark | figure | unit | target |\n| --- | --- | --- | --- |')
  for (const r of rows) console.log(`| ${r.name} | ${r.value} | ${r.unit || ''} | ${r.target || ''} |`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
