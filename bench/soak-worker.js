'use strict'
// One worker process of bench/soak.js: runs `soak` jobs (a short sleep each) at concurrency 8,
// appending "start"/"end" lines for every attempt to the log file. argv: providerConfig JSON, log.
const fs = require('node:fs')
const q = require('../index.js')

async function main() {
  const provider = await q.createQueueProvider(JSON.parse(process.argv[2]))
  const fd = fs.openSync(process.argv[3], 'a')
  q.registerJobHandler('soak', async (job, ctx) => {
    fs.writeSync(fd, `start ${job.id} ${ctx.attempt} ${Date.now()}\n`)
    await new Promise((r) => setTimeout(r, job.payload.ms))
    fs.writeSync(fd, `end ${job.id} ${ctx.attempt} ${Date.now()}\n`)
  })
  new q.Worker({ provider, config: { concurrency: 8 } }).start()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
