// A worker process for the cross-process cancel test: runs `wait` jobs until their
// ctx.signal aborts, and reports on stdout (one JSON line per event). argv[2] is the
// providerConfig as JSON.
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
  const w = new queue.Worker({ provider, config: { concurrency: 2 } })
  for (const e of ['completed', 'failed', 'dead']) w.on(e, (job) => say({ event: e, id: job.id }))
  w.start()
  say({ ready: true })
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
