'use strict'
// `npm run demo`: runs the example app (server.ts, its config and extensions/jobs handlers) on
// the embedded defaults — memory provider, in-process worker, SQLite scheduler in a temp dir —
// and drives it over HTTP: a long report job with progress, a webhook that fails its first
// attempt and is retried, and a recurring cleanup firing. Exits by itself within ~15 s.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const DEADLINE_MS = 15_000
const started = Date.now()
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`
const log = (msg) => console.log(`demo ${elapsed()} | ${msg}`)

async function main() {
  // tsx takes tsconfig.json (and its `paths` entry for '@chaaskit/server') from the cwd.
  process.chdir(__dirname)
  require('tsx/cjs/api').register()
  ;(await import('tsx/esm/api')).register()
  const { startServer } = require('./server.ts')
  const { config } = require('./config/app.config.ts')

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-demo-'))
  const guard = setTimeout(() => {
    console.error(`demo: did not finish within ${DEADLINE_MS / 1000} s`)
    process.exit(1)
  }, DEADLINE_MS)
  guard.unref()

  const server = await startServer({
    port: 0,
    cleanupSchedule: 'every 1 second',
    queue: {
      ...config.queue,
      enabled: true,
      providerConfig: { type: 'memory', maxHistorySize: 1000 },
      worker: { mode: 'in-process', concurrency: 2 },
      scheduler: { enabled: true, pollInterval: 250, databaseUrl: `sqlite:${path.join(dir, 'queue.db')}` },
    },
  })
  log(`server on ${server.url}: memory provider, in-process worker, SQLite scheduler in ${dir}`)

  const http = async (method, route, body) => {
    const res = await fetch(server.url + route, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    })
    return res.status === 204 ? null : res.json()
  }

  const report = await http('POST', '/jobs', { type: 'report:generate', payload: { reportId: 'q3-sales', pages: 8, msPerPage: 250 } })
  log(`POST /jobs report:generate -> ${report.id} (${report.status})`)
  const hook = await http('POST', '/jobs', {
    type: 'webhook:send',
    payload: { event: 'order.paid', url: `${server.url}/hooks/echo`, failAttempts: 1 },
    options: { maxRetries: 3 },
  })
  log(`POST /jobs webhook:send -> ${hook.id} (${hook.status})`)

  let lastReport = ''
  let lastHook = ''
  for (;;) {
    const r = await http('GET', `/jobs/${report.id}`)
    const h = await http('GET', `/jobs/${hook.id}`)
    const stats = await http('GET', '/stats')
    const cleanup = stats.recurring.find((x) => x.name === 'cache-cleanup')
    const rs = `${r.status} ${r.progress ?? 0}%`
    if (rs !== lastReport) log(`GET /jobs/${report.id} -> report ${(lastReport = rs)}`)
    const hs = `${h.status}, attempts ${h.attempts}${h.lastError ? `, last error "${h.lastError}"` : ''}`
    if (hs !== lastHook) log(`GET /jobs/${hook.id} -> webhook ${(lastHook = hs)}`)
    const cleanupRuns = stats.queue.completed - (r.status === 'completed') - (h.status === 'completed')
    if (r.status === 'completed' && h.status === 'completed' && cleanup && cleanup.lastRunAt && cleanupRuns >= 2) {
      log(`report result ${JSON.stringify(r.result)}; webhook result ${JSON.stringify(h.result)}`)
      log(`GET /stats -> ${JSON.stringify({ queue: stats.queue, hooksReceived: stats.hooksReceived, recurring: stats.recurring })}`)
      break
    }
    await sleep(100)
  }
  await server.close()
  fs.rmSync(dir, { recursive: true, force: true })
  log('done: server closed and queue shut down')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
