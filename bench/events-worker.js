'use strict'
// The worker process of bench/events.js: runs `stamp` jobs (each returns the time it finished)
// on the providerConfig in argv[2]; sends 'ready' once started.
const q = require('../index.js')

async function main() {
  const provider = await q.createQueueProvider(JSON.parse(process.argv[2]))
  q.registerJobHandler('stamp', async () => ({ at: Date.now() }))
  new q.Worker({ provider, config: { concurrency: 10 } }).start()
  process.send('ready')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
