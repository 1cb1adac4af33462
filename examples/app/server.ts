// A small HTTP server written as a chaaskit app would be. It starts the queue from the config
// (provider, the in-process worker unless worker.mode is 'standalone', the scheduler) and:
//   POST /jobs          {"type", "payload", "options"?}  -> 201 the job
//   GET  /jobs/:id      the job (status, attempts, progress, result, lastError) or 404
//   GET  /stats         queue statistics and the recurring jobs
//   POST /hooks/echo    a webhook receiver for the webhook:send example job
// Run: cd examples/app && node --import tsx server.ts   (PORT, default 3000)
import http from 'node:http'
import path from 'node:path'
import {
  getQueueProvider,
  getScheduler,
  initializeQueue,
  loadJobHandlers,
  shutdownQueue,
  type EnqueueOptions,
  type QueueConfig,
} from '@chaaskit/server'
import { config } from './config/app.config'

export interface ServerOptions {
  port?: number
  /** Replaces `config.queue` (the demo uses this for its embedded defaults). */
  queue?: QueueConfig
  /** Schedule of the recurring 'cache-cleanup' job (default: CLEANUP_SCHEDULE, else 'every 1 hour'). */
  cleanupSchedule?: string
}

export interface RunningServer {
  url: string
  close(): Promise<void>
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > 1_000_000) throw new HttpError(413, 'body too large')
    chunks.push(chunk as Buffer)
  }
  try {
    return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}
  } catch {
    throw new HttpError(400, 'body is not JSON')
  }
}

let hooksReceived = 0

async function route(queueConfig: QueueConfig, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const jobMatch = /^\/jobs\/([^/]+)$/.exec(url.pathname)

  if (req.method === 'POST' && url.pathname === '/jobs') {
    const body = (await readJson(req)) as { type?: unknown; payload?: unknown; options?: EnqueueOptions }
    if (typeof body.type !== 'string') throw new HttpError(400, 'type must be a string')
    try {
      const job = await getQueueProvider().enqueue(body.type, body.payload ?? {}, body.options)
      return send(res, 201, job)
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) throw new HttpError(400, e.message)
      throw e
    }
  }
  if (req.method === 'GET' && jobMatch) {
    const job = await getQueueProvider().getJob(decodeURIComponent(jobMatch[1]))
    return job ? send(res, 200, job) : send(res, 404, { error: 'job not found' })
  }
  if (req.method === 'GET' && url.pathname === '/stats') {
    const scheduler = getScheduler()
    const recurring = scheduler
      ? (await scheduler.listRecurring()).map((r) => ({ name: r.name, schedule: r.schedule, nextRunAt: r.nextRunAt, lastRunAt: r.lastRunAt }))
      : []
    return send(res, 200, { provider: getQueueProvider().name, queue: await getQueueProvider().getStats(), hooksReceived, recurring })
  }
  if (req.method === 'POST' && url.pathname === '/hooks/echo') {
    await readJson(req)
    hooksReceived++
    return send(res, 204)
  }
  throw new HttpError(404, `no route for ${req.method} ${url.pathname}`)
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const queueConfig = options.queue ?? config.queue
  // What the chaaskit server does at start: load extensions/jobs, then start the queue.
  await loadJobHandlers(path.join(__dirname, 'extensions', 'jobs'))
  await initializeQueue(queueConfig)
  const scheduler = getScheduler()
  if (scheduler) {
    await scheduler.registerRecurring({
      name: 'cache-cleanup',
      type: 'maintenance:cleanup',
      payload: {},
      schedule: options.cleanupSchedule ?? process.env.CLEANUP_SCHEDULE ?? 'every 1 hour',
    })
  }

  const server = http.createServer((req, res) => {
    route(queueConfig, req, res).catch((e: unknown) => {
      if (e instanceof HttpError) return send(res, e.status, { error: e.message })
      console.error(e)
      send(res, 500, { error: 'internal error' })
    })
  })
  await new Promise<void>((resolve) => server.listen(options.port ?? Number(process.env.PORT ?? 3000), '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await shutdownQueue()
    },
  }
}

if (require.main === module) {
  startServer().then(
    (s) => {
      const mode = config.queue.worker?.mode ?? 'in-process'
      console.log(`listening on ${s.url} (provider ${config.queue.providerConfig.type}, worker ${mode})`)
      const stop = () => {
        s.close().then(() => process.exit(0))
      }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    },
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
}
