// The server's start and stop around an automation sync; prints one JSON line of what it saw.
import { getScheduler, getWorker, initializeQueue, shutdownQueue } from '@chaaskit/server'
import { config } from '../config/app.config'
import { db } from './db'
import { recurringNames, syncScheduledPrompt } from './automations'

async function main(): Promise<void> {
  const before = await syncScheduledPrompt('off', 'every 1 second')
  await initializeQueue(config.queue)
  const workerInServer = getWorker() !== null // worker.mode 'standalone': none here
  const after = await syncScheduledPrompt(process.argv[2] ?? 'p1', 'every 1 second')
  const names = await recurringNames()
  await shutdownQueue()
  const afterStop = getScheduler()
  await db.$disconnect()
  console.log(JSON.stringify({ before, after, workerInServer, names, afterStop }))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
