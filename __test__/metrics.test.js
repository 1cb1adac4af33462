'use strict'
// getMetrics() and the worker's /metrics endpoint, read with a Prometheus text parser.
const test = require('node:test')
const assert = require('node:assert/strict')
const parse = require('parse-prometheus-text-format')
const q = require('..')

const { sleep } = require('./wait.js')
async function until(fn, ms = 15000) {
  const end = performance.now() + ms
  while (performance.now() < end) {
    if (await fn()) return
    await sleep(10)
  }
  throw new Error('condition not met in time')
}

const family = (text, name) => parse(text).find((f) => f.name === name)
const sample = (f, labels) => f && f.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels && m.labels[k] === v))
const jobsTotal = (text, type, outcome) => {
  const s = sample(family(text, 'chaaskit_queue_jobs_total'), { type, outcome })
  return s ? Number(s.value) : 0
}

/** One type's series of a histogram family, parsed: { type, buckets }. */
function histogram(text, name, type) {
  const lines = text.split('\n').filter((l) => l.startsWith('#') ? l.includes(` ${name} `) : l.startsWith(`${name}_`) && l.includes(`type="${type}"`))
  const [f] = parse(lines.join('\n') + '\n')
  assert.equal(f.name, name)
  assert.equal(f.metrics.length, 1)
  return { type: f.type, buckets: f.metrics[0].buckets }
}

test.afterEach(() => q.clearJobHandlers())

test('counters, histograms and gauges after known work', async (t) => {
  const type = `m${process.pid}`
  const p = await q.createQueueProvider({ type: 'memory' })
  const w = new q.Worker({ provider: p, config: { concurrency: 3 } })
  t.after(() => w.stop())
  q.registerJobHandler(type, async (job) => {
    await sleep(20)
    if (job.payload.fail) throw new Error('no')
    return 1
  })
  w.start()
  for (let i = 0; i < 4; i++) await p.enqueue(type, { fail: false })
  await p.enqueue(type, { fail: true }, { maxRetries: 0 })
  await until(() => w.getStats().processed === 5)
  const text = await q.getMetrics()

  assert.equal(jobsTotal(text, type, 'completed'), 4)
  assert.equal(jobsTotal(text, type, 'dead'), 1)
  assert.equal(jobsTotal(text, type, 'failed'), 0)
  assert.equal(family(text, 'chaaskit_queue_jobs_total').type, 'COUNTER')

  // parse-prometheus-text-format merges labelled histogram series (and then drops _sum/_count),
  // so each histogram is parsed with only this type's series kept.
  const run = histogram(text, 'chaaskit_queue_job_run_seconds', type)
  assert.equal(run.type, 'HISTOGRAM')
  assert.equal(Number(run.buckets['0.01']), 0, 'every run slept 20 ms')
  assert.equal(Number(run.buckets['1']), 5)
  assert.equal(Number(run.buckets['+Inf']), 5)
  const wait = histogram(text, 'chaaskit_queue_job_wait_seconds', type)
  assert.equal(Number(wait.buckets['+Inf']), 5)
  assert.ok(Number(wait.buckets['0.005']) <= 5)

  const depth = family(text, 'chaaskit_queue_jobs')
  assert.equal(depth.type, 'GAUGE')
  assert.equal(Number(sample(depth, { provider: 'memory', status: 'completed' }).value), 4)
  assert.equal(Number(sample(depth, { provider: 'memory', status: 'dead' }).value), 1)
  const conc = family(text, 'chaaskit_queue_worker_concurrency')
  assert.ok(conc.metrics.some((m) => m.labels.provider === 'memory' && m.value === '3'))
  const running = family(text, 'chaaskit_queue_worker_running')
  assert.ok(running.metrics.every((m) => m.value === '0'))
  await w.stop()
  await p.close()
  assert.equal(sample(family(await q.getMetrics(), 'chaaskit_queue_jobs'), { provider: 'memory', status: 'completed' }), undefined, 'a closed provider is no longer shown')
})

test('worker metricsPort serves /metrics on 127.0.0.1 while running; config checks the port', async (t) => {
  const p = await q.createQueueProvider({ type: 'memory' })
  assert.throws(() => new q.Worker({ provider: p, config: { metricsPort: 70000 } }), { name: 'RangeError', message: /worker\.metricsPort .*70000/ })
  assert.equal(new q.Worker({ provider: p }).metricsPort, null)
  const w = new q.Worker({ provider: p, config: { metricsPort: 0 } })
  t.after(() => w.stop())
  const type = `port${process.pid}`
  q.registerJobHandler(type, async () => 'x')
  w.start()
  await until(() => w.metricsPort > 0)
  await p.enqueue(type, {})
  await until(() => w.getStats().succeeded === 1)
  const res = await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  assert.equal(jobsTotal(await res.text(), type, 'completed'), 1)
  assert.equal((await fetch(`http://127.0.0.1:${w.metricsPort}/other`)).status, 404)
  const port = w.metricsPort
  await w.stop()
  await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`))
  await p.close()
})
