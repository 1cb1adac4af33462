// The app config, as in a chaaskit app. The queue provider comes from the environment:
// memory by default; PostgreSQL with QUEUE_PROVIDER=postgres (DATABASE_URL, QUEUE_PG_SCHEMA);
// SQLite with QUEUE_PROVIDER=sqlite (QUEUE_SQLITE_URL); SQS with QUEUE_PROVIDER=sqs,
// SQS_QUEUE_URL, AWS_REGION (and SQS_ENDPOINT for an SQS-compatible server such as moto).
import type { QueueConfig, QueueProviderConfig } from '@chaaskit/server'

export interface AppConfig {
  name: string
  queue: QueueConfig
}

function providerConfig(): QueueProviderConfig {
  const type = process.env.QUEUE_PROVIDER || 'memory'
  if (type === 'memory') return { type: 'memory', maxHistorySize: 1000 }
  if (type === 'postgres') return { type: 'postgres', schema: process.env.QUEUE_PG_SCHEMA || undefined }
  if (type === 'sqlite') return { type: 'sqlite', databaseUrl: process.env.QUEUE_SQLITE_URL || undefined }
  if (type !== 'sqs') {
    throw new Error(`QUEUE_PROVIDER must be 'memory', 'postgres', 'sqlite' or 'sqs', got ${JSON.stringify(type)}`)
  }
  return {
    type: 'sqs',
    region: process.env.AWS_REGION || 'us-east-1',
    queueUrl: process.env.SQS_QUEUE_URL!,
    deadLetterQueueUrl: process.env.SQS_DLQ_URL || undefined,
    endpoint: process.env.SQS_ENDPOINT || undefined,
    visibilityTimeout: Number(process.env.SQS_VISIBILITY_TIMEOUT || 30),
  }
}

export const config: AppConfig = {
  name: 'queue-example',
  queue: {
    enabled: process.env.QUEUE_ENABLED !== 'false',
    providerConfig: providerConfig(),
    // 'standalone': this server runs no worker; `queue-worker` processes do the work.
    worker: { mode: process.env.QUEUE_WORKER_MODE === 'standalone' ? 'standalone' : 'in-process', concurrency: 2 },
    scheduler: { enabled: true, pollInterval: 5000 },
  },
}
