// A worker process for the OpenTelemetry tests: registers the OTel SDK with an exporter that
// writes each finished span as one JSON line (`span {...}`) on stdout, runs `traced` jobs
// (each makes a span of its own inside the handler) until argv[3] of them are done, then
// stops. argv[2] is the providerConfig as JSON.
'use strict'
const api = require('@opentelemetry/api')
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
const queue = require('../index.js')

const exporter = {
  export(spans, done) {
    for (const s of spans) {
      const c = s.spanContext()
      const line = { name: s.name, kind: s.kind, traceId: c.traceId, spanId: c.spanId, parentSpanId: s.parentSpanContext?.spanId, attributes: s.attributes, status: s.status }
      process.stdout.write(`span ${JSON.stringify(line)}\n`)
    }
    done({ code: 0 })
  },
  shutdown: async () => {},
}
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))

async function main() {
  const provider = await queue.createQueueProvider(JSON.parse(process.argv[2]))
  const want = Number(process.argv[3])
  const tracer = api.trace.getTracer('otel-child')
  const worker = new queue.Worker({ provider, config: { concurrency: 4, pollInterval: 50, shutdownTimeout: 1000 } })
  let done = 0
  queue.registerJobHandler('traced', async (job) => {
    tracer.startSpan('handler-work', { attributes: { jobId: job.id } }).end()
    return 'ok'
  })
  worker.on('completed', () => {
    if (++done === want) worker.stop()
  })
  await worker.start()
  await provider.close()
  process.stdout.write('done\n')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
