// A worker process for the cross-process tests (cancel.test.js, queue-events.test.js): runs
// `wait` jobs until their ctx.signal aborts, `ok` (returns { n: payload.n * 2 }, reports 50%
// progress first), `bad` (throws "boom"), `hang` (never ends); reports on stdout, one JSON line
// per fact. argv[2] is the providerConfig as JSON.
'use strict'
const queue = require('../index.js')

const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`)

async function main() {
  const provider = await queue.createQueueProvider(JSON.parse(process.argv[2]))
  queue.registerJobHandler('wait', (job, ctx) => {
    say({ started: job.id })
    return new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        say({ aborted: job.id, name: ctx.signal.reason.name, message: ctx.signal.reason.message, at: Date.now() })
        resolve('late result')
      })
    })
  })
  queue.registerJobHandler('ok', async (job, ctx) => {
    ctx.progress(50)
    return { n: job.payload.n * 2, at: Date.now() }
  })
  queue.registerJobHandler('bad', async () => {
    throw new Error('boom')
  })
  queue.registerJobHandler('hang', (job) => {
    say({ started: job.id })
    return new Promise(() => {})
  })
  const w = new queue.Worker({ provider, config: { concurrency: 2 } })
  for (const e of ['completed', 'failed', 'dead']) w.on(e, (job) => say({ event: e, id: job.id }))
  w.start()
  say({ ready: true })
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
