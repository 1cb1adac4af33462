'use strict'
// The quick-start demo: memory provider, in-process worker, SQLite scheduler (embedded
// defaults). Shows a long job's progress, a retry, and a recurring job firing; then exits.
const q = require('../..')
const path = require('node:path')
const os = require('node:os')
const fs = require('node:fs')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

q.registerJobHandler('report:generate', async (job, ctx) => {
  for (const p of [25, 50, 75, 100]) {
    await sleep(100)
    ctx.progress(p)
    console.log(`report ${job.payload.reportId}: ${p}%`)
  }
  return { pages: 3 }
})

q.registerJobHandler('webhook:send', async (job, ctx) => {
  console.log(`webhook attempt ${ctx.attempt}`)
  if (ctx.attempt === 1) throw new Error('endpoint returned 503')
  return 'delivered'
})

let ticks = 0
q.registerJobHandler('maintenance:cleanup', async () => {
  ticks++
  console.log(`recurring cleanup ran (${ticks})`)
})

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-demo-'))
  const { provider, scheduler } = await q.initializeQueue({
    enabled: true,
    providerConfig: { type: 'memory', maxHistorySize: 1000 },
    worker: { mode: 'in-process', concurrency: 2 },
    scheduler: { enabled: true, pollInterval: 500, databaseUrl: `sqlite:${path.join(dir, 'queue.db')}` },
  })
  await scheduler.registerRecurring({ name: 'cache-cleanup', type: 'maintenance:cleanup', payload: {}, schedule: 'every 1 second' })
  const report = await provider.enqueue('report:generate', { reportId: '42' })
  const hook = await provider.enqueue('webhook:send', { url: 'http://127.0.0.1/' }, { maxRetries: 2 })
  for (let i = 0; i < 100; i++) {
    const h = await provider.getJob(hook.id)
    if (h.status === 'completed' && ticks >= 2) break
    await sleep(100)
  }
  const r = await provider.getJob(report.id)
  const h = await provider.getJob(hook.id)
  console.log(`report: ${r.status}, progress ${r.progress}, result ${JSON.stringify(r.result)}`)
  console.log(`webhook: ${h.status} after ${h.attempts} attempts (last error: ${h.lastError})`)
  console.log('stats', await provider.getStats())
  await q.shutdownQueue()
  fs.rmSync(dir, { recursive: true, force: true })
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
