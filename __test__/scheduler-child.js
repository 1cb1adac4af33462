// One scheduler process for the multi-process test in scheduler.test.js: polls the database
// in argv[2] into its own memory queue; on the message 'dump' it stops and sends back the
// payloads it enqueued, then exits.
'use strict'

const queue = require('../index.js')

async function main() {
  const databaseUrl = process.argv[2]
  const provider = await queue.createQueueProvider({ type: 'memory', maxHistorySize: 10 })
  const scheduler = new queue.Scheduler({ provider, config: { databaseUrl, pollInterval: 10 } })
  await scheduler.start()
  process.send({ started: true })
  process.on('message', async (m) => {
    if (m !== 'dump') return
    await scheduler.stop()
    const payloads = []
    for (;;) {
      const jobs = await provider.receive(1000, 0)
      if (jobs.length === 0) break
      for (const j of jobs) payloads.push(JSON.stringify(j.payload))
    }
    process.send({ payloads }, () => process.exit(0))
  })
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
