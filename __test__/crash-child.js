// A worker process for the crash-safety test: runs `hang` jobs that never end, and says so on
// stdout, until the test SIGKILLs it. argv[2] is the providerConfig as JSON.
'use strict'
const queue = require('../index.js')

async function main() {
  const provider = await queue.createQueueProvider(JSON.parse(process.argv[2]))
  queue.registerJobHandler('hang', (job) => {
    process.stdout.write(`started ${job.id}\n`)
    return new Promise(() => {})
  })
  new queue.Worker({ provider, config: { concurrency: 1 } }).start()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
