// The app config as the server has it: the queue on PostgreSQL (DATABASE_URL, whose `?schema=`
// Prisma honours and so does the queue), workers standalone, the scheduler on.
import type { QueueConfig } from '@chaaskit/server'

export const config: { app: { name: string }; queue: QueueConfig } = {
  app: { name: 'old-server' },
  queue: {
    enabled: true,
    providerConfig: { type: 'postgres' },
    worker: { mode: 'standalone', concurrency: 2 },
    scheduler: { enabled: true, pollInterval: 500 },
  },
}
