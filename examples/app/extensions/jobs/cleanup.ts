// A recurring job: server.ts registers it with the scheduler ('cache-cleanup'); whichever
// scheduler runs (the server's, or a queue-worker's) enqueues it when due.
import { registerJobHandler } from '@chaaskit/server'

let runs = 0

registerJobHandler<Record<string, never>, { run: number }>(
  'maintenance:cleanup',
  async (job) => {
    runs++
    console.log(`[cleanup] run ${runs} (job ${job.id})`)
    return { run: runs }
  },
  'Periodic cache cleanup',
)
