'use strict'
// The cost of OpenTelemetry on the worker: no-op async handlers on the memory provider,
// BENCH_OTEL_N (default 100000) jobs pre-enqueued, concurrency 50, end-to-end jobs/s, in
// these modes, each run in a fresh process (the SDK's context manager, once enabled, stays)
// and the modes alternated, BENCH_OTEL_RUNS (default 3) runs each, median reported:
//
// - off: `new Worker({ telemetry: false })`, no tracer provider registered;
// - api, no SDK: `@opentelemetry/api` loaded, no tracer provider registered (what an app
//   without an OTel SDK pays);
// - SDK, worker telemetry off: the SDK below registered and its context manager in use, the
//   worker's spans off (what the queue's own spans add is the difference to the next one);
// - SDK, all sampled: BasicTracerProvider, AlwaysOn sampler, BatchSpanProcessor with an
//   exporter that drops spans, AsyncLocalStorageContextManager: a span per job recorded;
// - SDK, 1% sampled: the same with TraceIdRatioBased(0.01) (spans made, 1% recorded).
//
// `node bench/otel.js` prints the rows; `run()` returns them for bench/index.js.

const { spawn } = require('node:child_process')
const { performance } = require('node:perf_hooks')
const { runStandalone } = require('./rows.js')

const N = Number(process.env.BENCH_OTEL_N || 100000)
const RUNS = Number(process.env.BENCH_OTEL_RUNS || 3)
const CONCURRENCY = 50
const MODES = {
  off: 'telemetry off (Worker telemetry: false)',
  api: '@opentelemetry/api loaded, no tracer provider registered',
  sdkoff: 'OTel SDK and context manager registered, Worker telemetry: false',
  all: 'OTel SDK, every job sampled (BatchSpanProcessor)',
  ratio: 'OTel SDK, 1% of jobs sampled',
}

const fmt = (n) => Math.round(n).toLocaleString('en-US')
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** One measurement in this process (the child side): jobs/s. */
async function measure(mode) {
  const api = require('@opentelemetry/api')
  if (mode === 'all' || mode === 'ratio' || mode === 'sdkoff') {
    const { BasicTracerProvider, BatchSpanProcessor, AlwaysOnSampler, TraceIdRatioBasedSampler } = require('@opentelemetry/sdk-trace-base')
    const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
    const drop = { export: (spans, done) => done({ code: 0 }), shutdown: async () => {} }
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
    api.trace.setGlobalTracerProvider(
      new BasicTracerProvider({
        sampler: mode === 'ratio' ? new TraceIdRatioBasedSampler(0.01) : new AlwaysOnSampler(),
        spanProcessors: [new BatchSpanProcessor(drop, { maxQueueSize: 65536, maxExportBatchSize: 4096 })],
      }),
    )
  }
  const q = require('../index.js')
  const type = 'bench:otel'
  q.registerJobHandler(type, async () => {})
  const p = await q.createQueueProvider({ type: 'memory' })
  // An app with OTel set up has used its context manager (each request does); so does this.
  if (mode === 'sdkoff') api.context.with(api.trace.setSpan(api.context.active(), api.trace.getTracer('bench').startSpan('app')), () => {})
  const w = new q.Worker({ provider: p, config: { concurrency: CONCURRENCY }, telemetry: mode !== 'off' && mode !== 'sdkoff' })
  for (let i = 0; i < N; i += 10000) {
    await p.enqueueBulk(Array.from({ length: Math.min(10000, N - i) }, () => ({ type, payload: null })))
  }
  if (global.gc) global.gc()
  const t = performance.now()
  const running = w.start()
  while (w.getStats().processed < N) await new Promise((r) => setImmediate(r))
  const s = (performance.now() - t) / 1000
  const failed = w.getStats().failed
  await w.stop()
  await running
  await p.close()
  if (failed !== 0) throw new Error(`${failed} no-op jobs failed`)
  return N / s
}

function child(mode) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--expose-gc', __filename, '--measure', mode], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    c.once('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`bench/otel.js ${mode} exited with ${code}`))))
  })
}

async function run() {
  const got = Object.fromEntries(Object.keys(MODES).map((m) => [m, []]))
  for (let r = 0; r < RUNS; r++) for (const m of Object.keys(MODES)) got[m].push(await child(m))
  const off = median(got.off)
  const rows = []
  for (const [m, label] of Object.entries(MODES)) {
    const v = median(got[m])
    rows.push({
      name: `worker with OpenTelemetry, no-op handlers, ${fmt(N)} jobs, concurrency ${CONCURRENCY}: ${label}, median of ${RUNS} (runs: ${got[m].map(fmt).join(', ')})`,
      value: fmt(v),
      unit: 'jobs/s',
      target: m === 'off' ? '' : `${(v / off).toFixed(3)} of off; target ≥ 0.95`,
    })
  }
  return rows
}

if (process.argv[2] === '--measure') {
  measure(process.argv[3]).then(
    (v) => process.stdout.write(`${v}\n`),
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
} else if (require.main === module) {
  runStandalone(run)
}

module.exports = { run }
