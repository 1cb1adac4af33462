// Types of @chaaskit/queue: the public API, compatible with the old JavaScript queue.

import type { IncomingMessage, ServerResponse } from 'node:http'

export type JobStatus = 'pending' | 'scheduled' | 'processing' | 'completed' | 'failed' | 'dead' | 'cancelled'

/**
 * The `code` of an error the queue raises (README "Error codes"): one per kind of error of the
 * Rust core, set by the addon. Match on it rather than on the message.
 */
export type QueueErrorCode =
  | 'ERR_QUEUE_INVALID'
  | 'ERR_QUEUE_CLOSED'
  | 'ERR_QUEUE_UNKNOWN_RECEIPT'
  | 'ERR_QUEUE_NOT_SUPPORTED'
  | 'ERR_QUEUE_BACKEND'
  | 'ERR_QUEUE_STORE'
  | 'ERR_QUEUE_INTERNAL'

/** An error the queue raised: an `Error`, `TypeError` or `RangeError` with its `code`. */
export interface QueueError extends Error {
  code: QueueErrorCode
}

/** Options stored with a job. */
export interface JobOptions {
  /** Retries after the first attempt (default 3): a job runs at most 1 + maxRetries times. */
  maxRetries: number
  /** Milliseconds an attempt may run (default 30000). */
  timeout: number
  /** Lower runs first (default 0). */
  priority: number
  deduplicationKey?: string
  /** W3C trace context of the enqueue, set when OpenTelemetry is on (see README, OpenTelemetry). */
  traceparent?: string
  /** W3C `tracestate` that came with `traceparent`, when there was one. */
  tracestate?: string
}

export interface EnqueueOptions {
  /** Delay in ms. */
  delay?: number
  /** Specific execution time (a Date, epoch ms or a date string `Date.parse` reads); wins over `delay`. */
  scheduledFor?: Date | number | string
  /** Retries after the first attempt (default: 3). */
  maxRetries?: number
  /** Job timeout in ms, at least 1 (default: 30000). */
  timeout?: number
  /** Prevent duplicate jobs while one with this key is unfinished. */
  deduplicationKey?: string
  /** Lower = higher priority (default: 0). */
  priority?: number
  /**
   * postgres provider: enqueue inside this transaction, so a rollback leaves no job and the
   * commit wakes the workers. A Prisma interactive-transaction client
   * (`prisma.$transaction(async (tx) => …)`) or a node-postgres client after `BEGIN`.
   */
  tx?: QueueTransaction
}

/** A transaction `enqueue`/`enqueueBulk` can join: Prisma's interactive-transaction client or a node-postgres client. */
export type QueueTransaction =
  | { $queryRawUnsafe(query: string, ...values: any[]): Promise<unknown> }
  | { query(text: string, values?: any[]): Promise<unknown> }

export interface EnqueueBulkOptions {
  /** postgres provider: enqueue every item inside this transaction (see `EnqueueOptions.tx`). */
  tx?: QueueTransaction
}

export interface Job<T = unknown> {
  id: string
  type: string
  payload: T
  options: JobOptions
  status: JobStatus
  /** Attempts so far (the running attempt included). */
  attempts: number
  createdAt: Date
  scheduledFor?: Date
  startedAt?: Date
  completedAt?: Date
  lastError?: string
  /** Last value passed to `ctx.progress`. */
  progress?: number
  /** What the handler returned (memory, postgres and sqlite providers). */
  result?: unknown
}

export interface ReceivedJob<T = unknown> extends Job<T> {
  receiptHandle: string
}

export interface QueueStats {
  pending: number
  processing: number
  completed: number
  failed: number
  dead: number
  scheduled: number
  /** Cancelled jobs (`cancelJob`); optional, so a stats object of the old interface still fits. */
  cancelled?: number
}

/** What `listJobs` lists. */
export interface ListJobsOptions {
  status?: JobStatus
  type?: string
  /** Jobs per page, 1 to 1000 (default 50). */
  limit?: number
  /** The `nextCursor` of the page before; absent or null for the first page. */
  cursor?: string | null
}

/** One page of `listJobs`, newest first. */
export interface JobPage<T = unknown> {
  jobs: Job<T>[]
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null
}

export interface BulkItem<T = unknown> {
  type: string
  payload: T
  options?: EnqueueOptions
}

/** One line a handler logged with `ctx.log`: when, by which attempt (1 for the first). */
export interface JobLogLine {
  at: Date
  attempt: number
  line: string
}

/** A job's kept log lines, and how many older ones the cap dropped. */
export interface JobLogs {
  lines: JobLogLine[]
  dropped: number
}

/**
 * The provider interface of the old queue: what a provider must have for the worker and the
 * scheduler. A class written against the old queue (`implements QueueProvider` with these
 * members) still compiles. The providers of this package are `AdminQueueProvider`s.
 */
export interface QueueProvider {
  readonly name: string
  enqueue<T>(type: string, payload: T, options?: EnqueueOptions): Promise<Job<T>>
  receive(maxMessages?: number, waitTimeSeconds?: number): Promise<ReceivedJob[]>
  acknowledge(receiptHandle: string, result?: unknown): Promise<void>
  fail(receiptHandle: string, error: Error | string): Promise<void>
  getJob(jobId: string): Promise<Job | null>
  getStats(): Promise<QueueStats>
  close(): Promise<void>
}

/** What `createQueueProvider` makes: the old interface plus bulk enqueue and the admin API. */
export interface AdminQueueProvider extends QueueProvider {
  /** Many jobs in one call; all are validated before any is queued. */
  enqueueBulk<T>(items: BulkItem<T>[], options?: EnqueueBulkOptions): Promise<Job<T>[]>
  /** Every status counted, `cancelled` included. */
  getStats(): Promise<Required<QueueStats>>
  /**
   * The job's `ctx.log` lines, oldest first, at most 100 lines / 32 KiB (older ones dropped and
   * counted in `dropped`); null when there is no such job. SQS stores none: it rejects.
   */
  getJobLogs(jobId: string): Promise<JobLogs | null>
  /**
   * Admin API. A provider that cannot do one (SQS: list, retry, cancel, pause) rejects with an
   * error naming itself and the operation.
   */
  listJobs<T = unknown>(options?: ListJobsOptions): Promise<JobPage<T>>
  /** A dead or failed job back to pending, visible now, its attempts kept; false when it is neither. */
  retryJob(jobId: string): Promise<boolean>
  /**
   * A pending, scheduled, failed or running job becomes `cancelled`; false when it is none of
   * these. A running job's `ctx.signal` aborts (`CancelledError`), in any process on postgres.
   */
  cancelJob(jobId: string): Promise<boolean>
  /** Workers stop taking jobs of `type` (of every type without one); running jobs finish. */
  pause(type?: string): Promise<void>
  /** Undo `pause(type)`; without a type, undo every pause. */
  resume(type?: string): Promise<void>
  /** What is paused: type names, and `null` when everything is. */
  paused(): Promise<Array<string | null>>
  /**
   * SQS: move every message of the dead-letter queue (`deadLetterQueueUrl`) back to the queue;
   * resolves to how many moved. Other providers reject, naming themselves.
   */
  redriveDeadLetters(): Promise<number>
}

export interface JobContext {
  jobId: string
  /** 1-based attempt number. */
  attempt: number
  /** A log line (util.format): to stderr, and kept on the job (getJobLogs; not on SQS). */
  log: (msg: string, ...args: unknown[]) => void
  /** Report progress 0-100. */
  progress: (percent: number) => void
  /**
   * Aborts at the attempt's `timeout` ("Job timed out after N ms"), at a `stop()` that runs out
   * of `shutdownTimeout`, and when `cancelJob` cancels the running job (reason: an Error named
   * `CancelledError`, "Job <id> was cancelled (cancelJob)"; the outcome is then discarded).
   */
  signal: AbortSignal
}

export type JobHandler<P = any, R = unknown> = (job: ReceivedJob<P>, ctx: JobContext) => Promise<R> | R

export interface MemoryProviderConfig {
  type: 'memory'
  /** Finished jobs kept for getJob (default 1000). */
  maxHistorySize?: number
}

export interface SqsProviderConfig {
  type: 'sqs'
  region: string
  queueUrl: string
  deadLetterQueueUrl?: string
  /** Seconds (default 30). */
  visibilityTimeout?: number
  /** SQS-compatible endpoint URL (else AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL). */
  endpoint?: string
  /** Largest message body accepted at enqueue (default 262144). */
  maxMessageBytes?: number
  /** MessageGroupId for .fifo queues (default: the job type). */
  messageGroupId?: string
  /**
   * Longest long poll of a worker's receive, 1 to 20 s (default 1). A stop waits for the poll in
   * flight (cut off, it would hide what it takes for `visibilityTimeout`), so this bounds how
   * long an idle worker takes to stop; 20 makes 20× fewer requests while idle (README, SQS).
   */
  waitTimeSeconds?: number
}

/** How long finished jobs stay readable by getJob before a background purge deletes them. */
export interface RetentionConfig {
  /** Milliseconds a completed job is kept (default 86400000, 1 day). */
  completed?: number
  /** Milliseconds a dead job is kept (default 1209600000, 14 days). */
  dead?: number
  /** Milliseconds a cancelled job is kept (default 1209600000, 14 days). */
  cancelled?: number
}

/** Jobs in a `QueueJob` table of the app's PostgreSQL database. */
export interface PostgresProviderConfig {
  type: 'postgres'
  /** `postgres://…` (default: the DATABASE_URL environment variable). */
  databaseUrl?: string
  /**
   * Schema of the QueueJob table (created when missing). Default: the URL's `?schema=`
   * parameter as Prisma reads it, else 'public'.
   */
  schema?: string
  /** Seconds a claimed job stays leased without its worker's heartbeat (default 30, at most 43200). */
  visibilityTimeout?: number
  /** Create the table at start when missing (default true). */
  autoMigrate?: boolean
  retention?: RetentionConfig
  /** Publish job events for `createQueueEvents` in other processes, one NOTIFY per batch (default true). */
  publishEvents?: boolean
}

/** Jobs in an SQLite file, which several processes on one host may share. */
export interface SqliteProviderConfig {
  type: 'sqlite'
  /** `sqlite:<path>` (default 'sqlite:.chaaskit/queue.db'; the file and directory are created). */
  databaseUrl?: string
  /** Seconds a claimed job stays leased without its worker's heartbeat (default 30, at most 43200). */
  visibilityTimeout?: number
  /** Create the table at start when missing (default true). */
  autoMigrate?: boolean
  retention?: RetentionConfig
}

export type QueueProviderConfig =
  | MemoryProviderConfig
  | SqsProviderConfig
  | PostgresProviderConfig
  | SqliteProviderConfig

export interface QueueWorkerConfig {
  mode: 'in-process' | 'standalone'
  /** Default 5. */
  concurrency?: number
  /** Default 1000 ms. */
  pollInterval?: number
  /** Default 30000 ms. */
  shutdownTimeout?: number
  /** Serve Prometheus `/metrics` on 127.0.0.1 at this port while the worker runs (0: any free port). Default: not served. */
  metricsPort?: number
}

/** A worker config with its defaults filled in (`metricsPort` stays absent unless given). */
export type ResolvedQueueWorkerConfig = Required<Omit<QueueWorkerConfig, 'metricsPort'>> & { metricsPort?: number }

/** Events of a `Worker`, by name: the arguments each listener gets. */
export interface WorkerEvents {
  /** An attempt started. */
  active: [job: Job]
  /** An attempt's handler returned (memory: after the provider recorded it); `durationMs` from its start. */
  completed: [job: Job, result: unknown, durationMs: number]
  /** An attempt failed (threw, rejected or timed out); `willRetry` false means `dead` follows. */
  failed: [job: Job, error: Error, info: { attempt: number; willRetry: boolean }]
  /** A job is out of retries. */
  dead: [job: Job, error: Error]
  /** A handler called `ctx.progress(percent)`. */
  progress: [job: Job, percent: number]
  /**
   * A lease ran out (the worker holding the job stopped renewing it: crashed, or blocked past
   * `visibilityTimeout`) and the provider took the job back: `pending` again, or `dead` when
   * out of retries. postgres and sqlite; memory has no leases; SQS cannot tell.
   */
  stalled: [job: Job]
}

/**
 * The queue's events from every process (postgres, through LISTEN/NOTIFY), with the names and
 * arguments of `WorkerEvents`. Each `job` is read from the table when the event arrives.
 */
export declare class QueueEvents {
  readonly provider: AdminQueueProvider
  on<K extends keyof WorkerEvents>(event: K, listener: (...args: WorkerEvents[K]) => void): this
  off<K extends keyof WorkerEvents>(event: K, listener: (...args: WorkerEvents[K]) => void): this
  /** Stop listening; closes the provider when `createQueueEvents` opened it from a config. */
  close(): Promise<void>
}

/**
 * Listen to the queue's events from every process. `source`: a provider from
 * `createQueueProvider` (its connections are shared) or a providerConfig (a provider of its own).
 * Resolves once listening. Providers other than postgres reject, naming themselves.
 */
export declare function createQueueEvents(source: QueueProvider | QueueProviderConfig): Promise<QueueEvents>

export interface QueueSchedulerConfig {
  enabled: boolean
  /** Default 60000 ms. */
  pollInterval?: number
  /**
   * `postgres://…` or `sqlite:…`; else DATABASE_URL; else `.chaaskit/queue.db`. A PostgreSQL
   * URL's `?schema=` (Prisma's) puts the tables in that schema, where Prisma reads them.
   */
  databaseUrl?: string
  /** Create missing tables at start (default true). */
  autoMigrate?: boolean
  /** Milliseconds an enqueued or cancelled one-time job is kept after its last change (default 604800000, 7 days). */
  retention?: number
}

export interface QueueConfig {
  enabled: boolean
  providerConfig: QueueProviderConfig
  worker?: QueueWorkerConfig
  scheduler?: QueueSchedulerConfig
}

export type ResolvedQueueSchedulerConfig = QueueSchedulerConfig & { pollInterval: number; autoMigrate: boolean; retention: number }

/** A `QueueConfig` as `validateQueueConfig` returns it: checked, with every default filled in. */
export interface ResolvedQueueConfig extends QueueConfig {
  worker: ResolvedQueueWorkerConfig
  scheduler: ResolvedQueueSchedulerConfig
}

export interface WorkerOptions {
  provider: QueueProvider
  config?: Partial<QueueWorkerConfig>
  /**
   * An OpenTelemetry CONSUMER span per attempt, with the handler running inside it (default
   * true; it applies only when `@opentelemetry/api` is installed and a tracer provider is
   * registered). `false` turns it off for this worker.
   */
  telemetry?: boolean
}

export interface WorkerStats {
  processed: number
  succeeded: number
  failed: number
  active: number
  running: boolean
}

export declare class Worker {
  constructor(options: WorkerOptions)
  readonly provider: AdminQueueProvider
  /** The worker config with its defaults filled in. */
  readonly config: ResolvedQueueWorkerConfig
  /** The port `/metrics` is served on (the bound one once listening), or null without `config.metricsPort`. */
  readonly metricsPort: number | null
  on<K extends keyof WorkerEvents>(event: K, listener: (...args: WorkerEvents[K]) => void): this
  off<K extends keyof WorkerEvents>(event: K, listener: (...args: WorkerEvents[K]) => void): this
  /** Resolves when the worker has stopped. */
  start(): Promise<void>
  stop(): Promise<void>
  getStats(): WorkerStats
  isRunning(): boolean
}

export interface SchedulerOptions {
  provider: QueueProvider
  config?: Partial<QueueSchedulerConfig>
}

export interface ScheduledJob {
  id: string
  type: string
  /** JSON text. */
  payload: string
  /** JSON text. */
  options: string
  scheduledFor: Date
  status: 'scheduled' | 'enqueued' | 'cancelled'
  error: string | null
  createdAt: Date
  updatedAt: Date
}

export interface RecurringJobInput<T = unknown> {
  name: string
  type: string
  payload: T
  /** Cron (`0 9 * * *`, `0 30 2 * * *` with seconds, `L`, `W`, `#`, `@daily` …) or interval (`every 1 hour`). */
  schedule: string
  /** IANA time zone (default UTC). */
  timezone?: string
  options?: Partial<JobOptions>
}

export interface RecurringJob {
  id: string
  name: string
  type: string
  payload: string
  options: string
  schedule: string
  timezone: string
  enabled: boolean
  nextRunAt: Date | null
  lastRunAt: Date | null
  lastError: string | null
  createdAt: Date
  updatedAt: Date
}

/** What one scheduler poll enqueued. */
export interface PollOutcome {
  scheduled: number
  recurring: number
  /** Rows whose enqueue failed (kept for the next poll). */
  failed: number
}

export declare class Scheduler {
  constructor(options: SchedulerOptions)
  readonly provider: AdminQueueProvider
  /** The scheduler config with its defaults filled in. */
  readonly config: ResolvedQueueSchedulerConfig
  start(): Promise<void>
  stop(): Promise<void>
  isRunning(): boolean
  /** Create the scheduler tables if missing (the `db:push` step). */
  migrate(): Promise<void>
  /** Enqueue everything due now. */
  pollOnce(): Promise<PollOutcome>
  /** Store a job to be enqueued at `date` (a Date, epoch ms or a date string). */
  schedule<T>(type: string, payload: T, date: Date | number | string, options?: Partial<JobOptions>): Promise<ScheduledJob>
  getScheduledJob(id: string): Promise<ScheduledJob | null>
  cancelScheduledJob(id: string): Promise<boolean>
  registerRecurring<T>(input: RecurringJobInput<T>): Promise<RecurringJob>
  enableRecurring(name: string): Promise<boolean>
  disableRecurring(name: string): Promise<boolean>
  deleteRecurring(name: string): Promise<boolean>
  listRecurring(): Promise<RecurringJob[]>
}

export declare function createQueueProvider(config: QueueProviderConfig): Promise<AdminQueueProvider>
/** The process-wide provider for `config` (a memory provider when the queue is disabled or `config` is absent). */
export declare function initializeQueueProvider(config?: QueueConfig | null): Promise<AdminQueueProvider>
export declare function getQueueProvider(): AdminQueueProvider
export declare function closeQueueProvider(): Promise<void>
export declare function resetQueueProvider(): void
export declare function getDefaultProviderConfig(): { type: 'memory'; maxHistorySize: number }

export declare function registerJobHandler<P = any, R = unknown>(
  type: string,
  handler: JobHandler<P, R>,
  description?: string,
): void
export declare function getJobHandler(type: string): { handler: JobHandler; description?: string } | undefined
export declare function hasJobHandler(type: string): boolean
export declare function getRegisteredJobTypes(): string[]
export declare function unregisterJobHandler(type: string): boolean
export declare function clearJobHandlers(): void
/** Run the handler registered for `job.type` (rejects "No handler registered for job type: X" when none is). */
export declare function executeJob<TPayload = unknown, TResult = unknown>(job: ReceivedJob<TPayload>, ctx: JobContext): Promise<TResult>

/** Prometheus text format of this process: jobs by type and outcome, wait/run histograms, queue depths, worker gauges. */
export declare function getMetrics(): Promise<string>
export declare function startWorker(options?: Partial<WorkerOptions>): Worker
export declare function stopWorker(): Promise<void>
/** The process-wide worker: made from `options` on the first call with them; `null` until then and after `stopWorker()`/`resetWorker()`. */
export declare function getWorker(options: WorkerOptions): Worker
export declare function getWorker(): Worker | null
export declare function resetWorker(): void

export declare function startScheduler(options?: Partial<SchedulerOptions>): Promise<Scheduler>
export declare function stopScheduler(): Promise<void>
/** The process-wide scheduler: made from `options` on the first call with them; `null` until then (the queue's scheduler is off) and after `stopScheduler()`/`resetScheduler()`. */
export declare function getScheduler(options: SchedulerOptions): Scheduler
export declare function getScheduler(): Scheduler | null
export declare function resetScheduler(): void

export interface NextRunsOptions {
  /** IANA time zone the schedule is read in (default UTC). */
  timezone?: string
  /** Runs strictly after this instant (default now). */
  from?: Date | number | string
  /** How many runs, 1 to 1000 (default 1). */
  count?: number
}
/**
 * The next runs of a schedule as the scheduler computes them; fewer than `count` when a cron
 * expression stops matching. TypeError for a wrong argument type, RangeError for an invalid
 * schedule, time zone, date or count.
 */
export declare function nextRuns(schedule: string, options?: NextRunsOptions): Date[]

/**
 * Check a `queue` config block and fill in its defaults. Throws a TypeError/RangeError whose
 * message begins with the path at fault, e.g. `queue.worker.concurrency must be ...`.
 */
export declare function validateQueueConfig(queueConfig: QueueConfig, name?: string): ResolvedQueueConfig

/** `url` with its password, if any, replaced by `***` (for logs and messages). */
export declare function redactUrl(url: string): string

export declare function initializeQueue(
  config?: QueueConfig | null,
): Promise<{ provider: AdminQueueProvider; worker: Worker | null; scheduler: Scheduler | null }>
export declare function shutdownQueue(): Promise<void>
/** Import every `*.ts`/`*.js` file in `dir` (not `index.*`); returns the paths loaded. */
export declare function loadJobHandlers(dir?: string): Promise<string[]>

/** The package's log lines (stderr, through the addon; level from CHAASKIT_QUEUE_LOG). */
export declare const logger: {
  error(...args: unknown[]): void
  warn(...args: unknown[]): void
  info(...args: unknown[]): void
  debug(...args: unknown[]): void
}

/** What `createDashboard` takes. */
export interface DashboardOptions {
  /** The queue to show and act on (its admin API). */
  provider: AdminQueueProvider
  /** Shows its recurring jobs (next run, enable, disable). Default: no recurring-jobs panel. */
  scheduler?: Pick<Scheduler, 'listRecurring' | 'enableRecurring' | 'disableRecurring'> | null
  /**
   * Called for every request, static files included: nothing is served unless it resolves to
   * `true` (a 403 otherwise). It may answer the request itself on `res` (e.g. a 401 asking for
   * credentials) and return false.
   */
  authorize: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>
  /** The path the dashboard is mounted at, e.g. '/admin/queue' (default '': the root). */
  basePath?: string
  /** How often the page refreshes, in ms, 250 to 3600000 (default 2000). */
  refreshInterval?: number
  /**
   * The token state-changing requests must carry in the `X-Queue-Dashboard-Token` header
   * (16 to 256 of A-Z a-z 0-9 _ -). Default: random per dashboard; give the same one to every
   * process behind one load balancer.
   */
  csrfToken?: string
}

/** A Node request handler; with `next` (Express, Connect) a request outside `basePath` goes on to it. */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void
  /** Stop the throughput sampler. */
  close(): void
  /** `basePath` without a trailing slash. */
  readonly basePath: string
}

/** The queue's web page as a request handler: counts, throughput, jobs, retry/cancel/pause/resume, recurring jobs. */
export declare function createDashboard(options: DashboardOptions): DashboardHandler
