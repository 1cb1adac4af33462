// Every API the spec (job-queue.md) shows, written as the spec writes it, plus the additions
// (enqueueBulk, initializeQueue, loadJobHandlers, validateQueueConfig, generic handlers).
// Compiled with `tsc --strict --noEmit` against index.d.ts by __test__/types.test.js; never run.
// The `@ts-expect-error` lines prove the types are strict: each must be a compile error.
import {
  registerJobHandler,
  getQueueProvider,
  getScheduler,
  initializeQueue,
  shutdownQueue,
  loadJobHandlers,
  validateQueueConfig,
  createQueueProvider,
  initializeQueueProvider,
  closeQueueProvider,
  resetQueueProvider,
  getDefaultProviderConfig,
  getJobHandler,
  hasJobHandler,
  getRegisteredJobTypes,
  unregisterJobHandler,
  clearJobHandlers,
  executeJob,
  Worker,
  startWorker,
  stopWorker,
  getWorker,
  resetWorker,
  Scheduler,
  startScheduler,
  stopScheduler,
  resetScheduler,
  type QueueConfig,
  type QueueProvider,
  type QueueProviderConfig,
  type QueueWorkerConfig,
  type QueueSchedulerConfig,
  type EnqueueOptions,
  type JobContext,
  type JobHandler,
  type Job,
  type QueueEvents,
  type ReceivedJob,
  type QueueStats,
  type JobStatus,
  type JobOptions,
  type RecurringJobInput,
  type RecurringJob,
  type ScheduledJob,
  type WorkerStats,
} from '@chaaskit/server'
import * as queuePackage from '@chaaskit/queue'

// The app's own pieces the spec's snippets call.
interface AppConfig {
  name?: string
  queue: QueueConfig
}
declare function sendEmail(payload: unknown): Promise<void>
declare function generateReport(payload: unknown): Promise<{ url: string }>
declare function riskyOperation(): Promise<void>
declare function processItem(item: number): Promise<void>
declare const items: number[]
type PayloadType = { reportId: string }
type ResultType = { pages: number }

// ---- Quick Start 1: config/app.config.ts ----------------------------------------------------
export const config: AppConfig = {
  queue: {
    enabled: true,
    providerConfig: { type: 'memory' },
    worker: { mode: 'in-process', concurrency: 5 },
    scheduler: { enabled: true },
  },
}

// ---- Quick Start 2: extensions/jobs/email.ts ------------------------------------------------
registerJobHandler('email:send', async (job, ctx) => {
  ctx.log('Sending email to', job.payload.to)
  await sendEmail(job.payload)
})

registerJobHandler('report:generate', async (job, ctx) => {
  ctx.log('Generating report', job.payload.reportId)
  ctx.progress(50) // Report progress
  const report = await generateReport(job.payload)
  ctx.progress(100)
  return report
})

async function quickStartEnqueue(): Promise<void> {
  // ---- Quick Start 3 --------------------------------------------------------------------------
  const queue = getQueueProvider()

  // Immediate job
  await queue.enqueue('email:send', {
    to: 'user@example.com',
    subject: 'Welcome!',
  })

  // Delayed job (up to 15 min for SQS)
  await queue.enqueue('reminder:send', { userId: '123' }, {
    delay: 60000, // 1 minute
  })

  // Job with retry configuration
  await queue.enqueue('webhook:send', { url: '...' }, {
    maxRetries: 5,
    timeout: 30000,
  })

  // A job's ctx.log lines (issue 25)
  const logs = await queue.getJobLogs('id')
  if (logs !== null) {
    const first: { at: Date; attempt: number; line: string } | undefined = logs.lines[0]
    const dropped: number = logs.dropped
    void first
    void dropped
  }

  // The job returned carries the payload's type.
  const job: Job<{ to: string }> = await queue.enqueue('email:send', { to: 'a@b.c' })
  const to: string = job.payload.to
  const status: JobStatus = job.status
  const options: JobOptions = job.options
  const created: Date = job.createdAt
  void [to, status, options, created, job.id, job.type, job.attempts, job.scheduledFor, job.startedAt, job.completedAt, job.lastError, job.progress]
}

// ---- Configuration: full options, development, production ---------------------------------
const fullMemory: QueueConfig = {
  enabled: true,
  providerConfig: { type: 'memory', maxHistorySize: 1000 },
  worker: { mode: 'in-process', concurrency: 5, pollInterval: 1000, shutdownTimeout: 30000 },
  scheduler: { enabled: false, pollInterval: 60000 },
}

const development: AppConfig['queue'] = {
  enabled: true,
  providerConfig: { type: 'memory', maxHistorySize: 1000 },
  worker: { mode: 'in-process', concurrency: 2 },
  scheduler: { enabled: true },
}

const production: QueueConfig = {
  enabled: true,
  providerConfig: {
    type: 'sqs',
    region: 'us-east-1',
    queueUrl: process.env.SQS_QUEUE_URL!,
    deadLetterQueueUrl: process.env.SQS_DLQ_URL,
    visibilityTimeout: 60,
  },
  worker: { mode: 'in-process', concurrency: 10 },
  scheduler: { enabled: true, pollInterval: 30000 },
}

// ---- Queue Providers ------------------------------------------------------------------------
const memoryProvider: QueueProviderConfig = {
  type: 'memory',
  maxHistorySize: 1000, // Keep last N completed jobs
}

const sqsProvider: QueueProviderConfig = {
  type: 'sqs',
  region: 'us-east-1',
  queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789/my-queue',
  deadLetterQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789/my-dlq',
  visibilityTimeout: 30,
}

// Additions: endpoint, maxMessageBytes, messageGroupId; scheduler databaseUrl, autoMigrate.
const sqsCompatible: QueueProviderConfig = {
  type: 'sqs',
  region: 'us-east-1',
  queueUrl: 'http://127.0.0.1:5000/123456789012/jobs.fifo',
  endpoint: 'http://127.0.0.1:5000',
  maxMessageBytes: 262144,
  messageGroupId: 'jobs',
}
const schedulerConfig: QueueSchedulerConfig = { enabled: true, databaseUrl: 'sqlite:.chaaskit/queue.db', autoMigrate: false }

// ---- Job Handlers: generic registration -----------------------------------------------------
registerJobHandler<PayloadType, ResultType>(
  'job:type',
  async (job, ctx) => {
    // job.id - Unique job ID
    // job.type - Job type string
    // job.payload - Your typed payload
    // job.attempts - Current attempt number
    // job.options - Job options (maxRetries, timeout, etc.)
    const id: string = job.id
    const type: string = job.type
    const reportId: string = job.payload.reportId
    const attempts: number = job.attempts
    const maxRetries: number = job.options.maxRetries
    const timeout: number = job.options.timeout

    // ctx.jobId - Same as job.id
    // ctx.attempt - Current attempt (1-based)
    // ctx.log() - Job-specific logging
    // ctx.progress() - Report progress (0-100)
    // ctx.signal - AbortSignal for cancellation
    const jobId: string = ctx.jobId
    const attempt: number = ctx.attempt
    ctx.log('working on %s', reportId, { id, type, attempts, maxRetries, timeout, jobId, attempt })
    ctx.progress(10)
    const signal: AbortSignal = ctx.signal

    const result: ResultType = { pages: signal.aborted ? 0 : 3 }
    return result
  },
  'Optional description for debugging',
)

// ---- Error Handling & Retries ---------------------------------------------------------------
registerJobHandler('flaky:job', async (job, ctx) => {
  if (Math.random() < 0.5) {
    throw new Error('Random failure')
    // Job will be retried up to maxRetries times
  }
  return 'success'
})

async function configureRetries(): Promise<void> {
  const queue = getQueueProvider()
  // Configure retries per job
  await queue.enqueue('flaky:job', {}, {
    maxRetries: 5, // Default: 3
    timeout: 60000, // Job timeout in ms
  })
}

// ---- Timeout Handling -----------------------------------------------------------------------
registerJobHandler('long:task', async (job, ctx) => {
  // Check if job was cancelled/timed out
  if (ctx.signal.aborted) {
    throw new Error('Job cancelled')
  }

  // For long operations, periodically check the signal
  for (const item of items) {
    if (ctx.signal.aborted) break
    await processItem(item)
  }
})

// ---- Scheduler ------------------------------------------------------------------------------
async function schedulerSpec(jobId: string): Promise<void> {
  // `null` until the scheduler is started (as in the old queue): the spec's code runs where it is on.
  const scheduler = getScheduler()
  if (!scheduler) return

  // Schedule for a specific time
  const scheduled: ScheduledJob = await scheduler.schedule(
    'report:send',
    { reportId: '123', recipients: ['user@example.com'] },
    new Date('2024-12-25T09:00:00Z'),
  )

  // Cancel a scheduled job
  const cancelled: boolean = await scheduler.cancelScheduledJob(jobId)

  // Cron expression (daily at 9am)
  await scheduler.registerRecurring({
    name: 'daily-digest',
    type: 'email:digest',
    payload: { digestType: 'daily' },
    schedule: '0 9 * * *',
    timezone: 'America/New_York',
  })

  // Interval syntax
  await scheduler.registerRecurring({
    name: 'cache-cleanup',
    type: 'maintenance:cleanup',
    payload: {},
    schedule: 'every 1 hour',
  })

  // Manage recurring jobs
  await scheduler.disableRecurring('daily-digest')
  await scheduler.enableRecurring('daily-digest')
  await scheduler.deleteRecurring('daily-digest')

  // List all recurring jobs
  const jobs = await scheduler.listRecurring()
  const first: RecurringJob | undefined = jobs[0]
  const next: Date | null = first ? first.nextRunAt : null

  // Beyond the spec's snippets: a typed recurring input, options, a poll, a lookup.
  const input: RecurringJobInput<{ digestType: string }> = {
    name: 'weekly-digest',
    type: 'email:digest',
    payload: { digestType: 'weekly' },
    schedule: '0 9 * * 1',
    options: { maxRetries: 1, timeout: 5000 },
  }
  await scheduler.registerRecurring(input)
  const outcome = await scheduler.pollOnce()
  const enqueued: number = outcome.scheduled + outcome.recurring + outcome.failed
  const again: ScheduledJob | null = await scheduler.getScheduledJob(scheduled.id)
  void [cancelled, next, enqueued, again]
}

// ---- Worker Modes ---------------------------------------------------------------------------
const inProcess: QueueWorkerConfig = {
  mode: 'in-process',
  concurrency: 5,
}
const standalone: QueueWorkerConfig = {
  mode: 'standalone', // Server won't start workers
}

// ---- API Reference: QueueProvider, EnqueueOptions, JobContext -------------------------------
async function providerApi(queue: QueueProvider): Promise<void> {
  const name: string = queue.name
  const options: EnqueueOptions = {
    delay: 1000,
    scheduledFor: new Date(),
    maxRetries: 3,
    timeout: 30000,
    deduplicationKey: 'user-123-welcome',
    priority: 0,
  }
  const job: Job<{ n: number }> = await queue.enqueue<{ n: number }>('t', { n: 1 }, options)
  const received: ReceivedJob[] = await queue.receive(10, 20)
  for (const r of received) {
    const handle: string = r.receiptHandle
    if (r.attempts > 2) await queue.fail(handle, new Error('boom'))
    else await queue.acknowledge(handle)
  }
  await queue.receive()
  const found: Job | null = await queue.getJob(job.id)
  const stats: QueueStats = await queue.getStats()
  const total: number = stats.pending + stats.processing + stats.completed + stats.failed + stats.dead + stats.scheduled
  await queue.close()
  void [name, found, total]
}

const contextShape = (ctx: JobContext): void => {
  const jobId: string = ctx.jobId
  const attempt: number = ctx.attempt // 1-based attempt number
  ctx.log('msg', 1, 'two', { three: 3 }) // Job-specific logging
  ctx.progress(50) // Report progress 0-100
  const signal: AbortSignal = ctx.signal // Check for cancellation
  void [jobId, attempt, signal]
}

// ---- Best Practices: error handling -----------------------------------------------------------
registerJobHandler('critical:job', async (job, ctx) => {
  try {
    await riskyOperation()
  } catch (error) {
    // Log with context. (The spec writes `error.message`; under `strict` a catch variable is
    // `unknown`, so TypeScript itself requires the narrowing.)
    ctx.log('Operation failed', { error: (error as Error).message, attempt: ctx.attempt })

    // Re-throw to trigger retry
    throw error

    // Or handle gracefully and don't retry
    // return { status: 'failed', reason: error.message };
  }
})

// ---- Additions: enqueueBulk, initializeQueue, loadJobHandlers, validateQueueConfig ------------
async function additions(): Promise<void> {
  const loaded: string[] = await loadJobHandlers()
  await loadJobHandlers('extensions/jobs')

  const resolved = validateQueueConfig(config.queue)
  const concurrency: number = resolved.worker.concurrency // filled in
  const shutdownTimeout: number = resolved.worker.shutdownTimeout
  const pollInterval: number = resolved.scheduler.pollInterval

  const { provider, worker, scheduler } = await initializeQueue(config.queue)
  const jobs: Job<{ to: string }>[] = await provider.enqueueBulk([
    { type: 'email:send', payload: { to: 'a@b.c' } },
    { type: 'email:send', payload: { to: 'd@e.f' }, options: { priority: 1, delay: 500 } },
  ])
  const firstTo: string = jobs[0].payload.to
  if (worker) {
    const stats: WorkerStats = worker.getStats()
    const running: boolean = worker.isRunning() && stats.running
    void running
  }
  if (scheduler) await scheduler.listRecurring()
  await shutdownQueue()
  void [loaded, concurrency, shutdownTimeout, pollInterval, firstTo]
}

// ---- The rest of the old queue's surface ------------------------------------------------------
async function surface(): Promise<void> {
  const p: QueueProvider = await createQueueProvider(getDefaultProviderConfig())
  const init: QueueProvider = await initializeQueueProvider(config.queue)
  const defaults: { type: 'memory'; maxHistorySize: number } = getDefaultProviderConfig()

  const handler: JobHandler<{ n: number }, number> = (job) => job.payload.n * 2
  registerJobHandler('double', handler)
  const entry = getJobHandler('double')
  const description: string | undefined = entry?.description
  const known: boolean = hasJobHandler('double')
  const types: string[] = getRegisteredJobTypes()
  const removed: boolean = unregisterJobHandler('double')
  const job = await p.enqueue('double', { n: 2 })
  const received: ReceivedJob<{ n: number }> = { ...job, receiptHandle: 'r' }
  const out = await executeJob<{ n: number }, number>(received, { jobId: job.id, attempt: 1, log: () => {}, progress: () => {}, signal: new AbortController().signal })
  const doubled: number = out
  clearJobHandlers()

  const worker = new Worker({ provider: p, config: { concurrency: 2, shutdownTimeout: 1000 } })
  const done: Promise<void> = worker.start()
  await worker.stop()
  await done
  // Events and metrics: listener arguments are typed by event name.
  const onFailed = (job: Job, error: Error, info: { attempt: number; willRetry: boolean }) => void [job.id, error.message, info.willRetry]
  worker.on('completed', (job, result, durationMs: number) => void [job.id, result, durationMs]).on('failed', onFailed)
  worker.off('failed', onFailed)
  // @ts-expect-error 'finished' is not a worker event
  worker.on('finished', () => {})
  // @ts-expect-error a progress listener gets a number, not a string
  worker.on('progress', (_job, percent: string) => void percent)
  worker.on('stalled', (job: Job) => void job.status)
  // Events across processes (postgres): the same names and arguments.
  const events: QueueEvents = await queuePackage.createQueueEvents({ type: 'postgres', schema: 'app', publishEvents: true })
  events.on('completed', (job, result, durationMs: number) => void [job.id, result, durationMs]).on('dead', (job, error) => void [job.id, error.message])
  const shared: QueueEvents = await queuePackage.createQueueEvents(p)
  await Promise.all([events.close(), shared.close()])
  // @ts-expect-error a memory provider config has no publishEvents
  void queuePackage.createQueueEvents({ type: 'memory', publishEvents: true })
  // Errors carry a code of the Rust error's kind.
  try {
    await p.acknowledge('no-such-handle')
  } catch (e) {
    const code: queuePackage.QueueErrorCode = (e as queuePackage.QueueError).code
    if (code === 'ERR_QUEUE_UNKNOWN_RECEIPT' || code === 'ERR_QUEUE_NOT_SUPPORTED') void code
    // @ts-expect-error not a code the queue raises
    if (code === 'ERR_QUEUE_NOPE') void code
  }
  const metricsPort: number | null = new Worker({ provider: p, config: { metricsPort: 9464 } }).metricsPort
  const metrics: string = await queuePackage.getMetrics()
  void [metricsPort, metrics]
  const w = startWorker({ provider: p })
  const same: Worker | null = getWorker()
  await stopWorker()
  resetWorker()

  const s = new Scheduler({ provider: p, config: { databaseUrl: 'sqlite::memory:', pollInterval: 1000 } })
  await s.migrate()
  await s.start()
  const running: boolean = s.isRunning()
  await s.stop()
  const started: Scheduler = await startScheduler({ provider: p, config: schedulerConfig })
  await stopScheduler()
  resetScheduler()

  await closeQueueProvider()
  resetQueueProvider()
  void [init, defaults, description, known, types, removed, doubled, w, same, running, started, queuePackage.getQueueProvider]
}

// nextRuns: a schedule's next runs, as the scheduler computes them.
function scheduleRuns(): Date[] {
  const next: Date[] = queuePackage.nextRuns('0 30 2 * * *', { timezone: 'America/New_York', from: new Date(), count: 3 })
  const options: queuePackage.NextRunsOptions = { from: '2024-03-10T00:00:00Z' }
  // @ts-expect-error the time zone is a name, not an offset
  queuePackage.nextRuns('@daily', { timezone: -5 })
  return [...next, ...queuePackage.nextRuns('every 1 hour', options), ...queuePackage.nextRuns('0 9 * * 1#2')]
}

async function dashboardMount(provider: queuePackage.AdminQueueProvider, scheduler: Scheduler): Promise<void> {
  const { createServer } = await import('node:http')
  const options: queuePackage.DashboardOptions = {
    provider,
    scheduler,
    authorize: async (req, res) => {
      if (req.headers.authorization === 'Bearer x') return true
      res.writeHead(401).end()
      return false
    },
    basePath: '/admin/queue',
    refreshInterval: 5000,
  }
  const dashboard: queuePackage.DashboardHandler = queuePackage.createDashboard(options)
  createServer(dashboard)
  createServer((req, res) => dashboard(req, res, () => res.end('not the dashboard')))
  const base: string = dashboard.basePath
  dashboard.close()
  // @ts-expect-error authorize is required
  queuePackage.createDashboard({ provider })
  // @ts-expect-error basePath is a string
  queuePackage.createDashboard({ provider, authorize: () => true, basePath: 5 })
  void base
}

// ---- Strictness: each of these must NOT compile --------------------------------------------------
// @ts-expect-error 'redis' is not a provider type
const badProvider: QueueProviderConfig = { type: 'redis' }
// @ts-expect-error an SQS provider needs queueUrl
const noQueueUrl: QueueProviderConfig = { type: 'sqs', region: 'us-east-1' }
// @ts-expect-error worker.mode is 'in-process' | 'standalone'
const badMode: QueueWorkerConfig = { mode: 'cluster' }
// @ts-expect-error delay is a number of milliseconds
const badDelay: EnqueueOptions = { delay: '1 minute' }
registerJobHandler<{ to: string }, string>('typed', async (job) => {
  // @ts-expect-error the payload type has no `subject`
  const subject: string = job.payload.subject
  return job.payload.to + subject
})
// @ts-expect-error the handler must return the declared result type
registerJobHandler<{ n: number }, number>('typed:result', async (job) => String(job.payload.n))
// @ts-expect-error scheduler.enabled is required
const noEnabled: QueueSchedulerConfig = { pollInterval: 1000 }

// The durable providers and enqueue inside a transaction (issue 12).
const durable: QueueConfig = {
  enabled: true,
  providerConfig: { type: 'postgres', schema: 'jobs', visibilityTimeout: 60, retention: { completed: 3_600_000 } },
}
const embedded: QueueProviderConfig = { type: 'sqlite', databaseUrl: 'sqlite:./jobs.db', autoMigrate: false }
async function inTransaction(provider: queuePackage.AdminQueueProvider, client: { query(text: string, values?: any[]): Promise<unknown> }) {
  const job: Job<{ orderId: number }> = await provider.enqueue('order:confirm', { orderId: 1 }, { tx: client, priority: 1 })
  await provider.enqueueBulk([{ type: 'order:mail', payload: { orderId: job.payload.orderId } }], { tx: client })
}
// @ts-expect-error schema is a string
const badSchema: QueueProviderConfig = { type: 'postgres', schema: 1 }

// The admin API (issue 13 §4) on any provider.
async function adminApi(provider: queuePackage.AdminQueueProvider): Promise<void> {
  const options: queuePackage.ListJobsOptions = { status: 'dead', type: 'email:send', limit: 100, cursor: null }
  const page: queuePackage.JobPage<{ to: string }> = await provider.listJobs<{ to: string }>(options)
  const to: string = page.jobs[0].payload.to
  const next: string | null = page.nextCursor
  await provider.listJobs({ cursor: next })
  const retried: boolean = await provider.retryJob(page.jobs[0].id)
  const cancelled: boolean = await provider.cancelJob(page.jobs[0].id)
  await provider.pause('email:send')
  await provider.pause()
  await provider.resume('email:send')
  await provider.resume()
  const paused: Array<string | null> = await provider.paused()
  const moved: number = await provider.redriveDeadLetters()
  const status: JobStatus = 'cancelled'
  const counted: number = (await provider.getStats()).cancelled
  // @ts-expect-error 'done' is not a JobStatus
  await provider.listJobs({ status: 'done' })
  void [to, retried, cancelled, paused, moved, status, counted]
}

void [
  adminApi,
  durable,
  embedded,
  inTransaction,
  badSchema,
  quickStartEnqueue,
  fullMemory,
  development,
  production,
  memoryProvider,
  sqsProvider,
  sqsCompatible,
  configureRetries,
  schedulerSpec,
  inProcess,
  standalone,
  providerApi,
  contextShape,
  additions,
  surface,
  badProvider,
  noQueueUrl,
  badMode,
  badDelay,
  noEnabled,
  scheduleRuns,
  dashboardMount,
]

// ---- The old ChaasKit server, unchanged (issue 20) ----------------------------------------------
// Handlers typed as the server types them, its `if (!getScheduler())` check, and a provider and a
// stats object written against the old seven-member interface.
interface ExecutePayload {
  scheduledPromptId: string
}
registerJobHandler<ExecutePayload>('scheduled-prompt:execute', async (job: ReceivedJob<ExecutePayload>, ctx: JobContext) => {
  const id: string = job.payload.scheduledPromptId
  const handle: string = job.receiptHandle
  ctx.log(`Executing scheduled prompt: ${id} (${handle.length})`)
})
// @ts-expect-error the payload type is checked: this handler's job has no `other`
registerJobHandler<ExecutePayload>('typed:wrong', async (job: ReceivedJob<ExecutePayload>) => job.payload.other)

async function oldServerChecks(): Promise<void> {
  const scheduler: Scheduler | null = getScheduler()
  // @ts-expect-error it may be null: the server checks it first
  await getScheduler().listRecurring()
  if (!scheduler) throw new Error('Scheduler not enabled')
  await scheduler.listRecurring()
  const worker: Worker | null = getWorker()
  // @ts-expect-error it may be null until a worker was made
  getWorker().isRunning()
  void worker
  const made: Worker = getWorker({ provider: getQueueProvider() })
  void made
}

class OldStyleProvider implements QueueProvider {
  readonly name = 'old-style'
  async enqueue<T>(type: string, payload: T, _options?: EnqueueOptions): Promise<Job<T>> {
    return { id: '1', type, payload, options: { maxRetries: 3, timeout: 30000, priority: 0 }, status: 'pending', attempts: 0, createdAt: new Date() }
  }
  async receive(_maxMessages?: number, _waitTimeSeconds?: number): Promise<ReceivedJob[]> {
    return []
  }
  async acknowledge(_receiptHandle: string): Promise<void> {}
  async fail(_receiptHandle: string, _error: Error): Promise<void> {}
  async getJob(_jobId: string): Promise<Job | null> {
    return null
  }
  async getStats(): Promise<QueueStats> {
    // The old six counts, without `cancelled`.
    return { pending: 0, processing: 0, completed: 0, failed: 0, dead: 0, scheduled: 0 }
  }
  async close(): Promise<void> {}
}
const oldStyle: QueueProvider = new OldStyleProvider()
// @ts-expect-error the old interface has no admin API: that is on AdminQueueProvider
void oldStyle.listJobs()
async function adminOnOurs(): Promise<void> {
  const ours = getQueueProvider()
  const stats = await ours.getStats()
  const cancelled: number = stats.cancelled
  const asOld: QueueProvider = ours
  void [cancelled, asOld, await ours.listJobs({ limit: 1 })]
}
void [oldServerChecks, adminOnOurs]
