'use strict'
// The README's dashboard screenshots, taken by the browser the tests use (Debian's chromium,
// headless, through playwright-core): a memory queue with a few job types, a worker, some
// failures and recurring jobs; load runs for SCREENSHOT_SECONDS (default 90) so the throughput
// chart has bars. Writes docs/dashboard.png (desktop), docs/dashboard-job.png (a dead job's
// detail) and docs/dashboard-phone.png (390 px wide).
//   node scripts/screenshot.js

const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const queue = require('..')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const SECONDS = Number(process.env.SCREENSHOT_SECONDS || 90)
const OUT = path.join(__dirname, '..', 'docs')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function main() {
  const { chromium } = require('playwright-core')
  fs.mkdirSync(OUT, { recursive: true })
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-screenshot-'))
  const provider = await queue.createQueueProvider({ type: 'memory', maxHistorySize: 20000 })
  const scheduler = new queue.Scheduler({ provider, config: { enabled: true, databaseUrl: `sqlite:${path.join(tmp, 's.db')}?mode=rwc` } })
  await scheduler.migrate()
  await scheduler.registerRecurring({ name: 'nightly-report', type: 'report', payload: { period: 'day' }, schedule: '0 3 * * *' })
  await scheduler.registerRecurring({ name: 'digest-emails', type: 'email', payload: { digest: true }, schedule: '0 9 * * MON', timezone: 'Europe/Paris' })
  await scheduler.registerRecurring({ name: 'cleanup-uploads', type: 'cleanup', payload: {}, schedule: 'every 15 minutes' })
  await scheduler.disableRecurring('cleanup-uploads')

  let n = 0
  queue.registerJobHandler('email', async (job) => {
    await sleep(20 + Math.random() * 80)
    if (n++ % 17 === 0) throw new Error(`SMTP 550 5.1.1 <${job.payload.to}>: mailbox unavailable`)
    return { messageId: `<${job.id.slice(0, 8)}@mail.example.com>` }
  })
  queue.registerJobHandler('report', async (job, ctx) => {
    for (let i = 1; i <= 4; i++) {
      await sleep(400 + Math.random() * 400)
      ctx.progress(i * 25)
    }
    return { rows: 1200 + Math.floor(Math.random() * 800), url: `s3://reports/${job.payload.period}.csv` }
  })
  queue.registerJobHandler('resize-image', async (job) => {
    await sleep(50)
    if (job.payload.width > 4000) throw new Error(`image too large: ${job.payload.width}x${job.payload.width} exceeds 4000 px`)
    return { thumbnails: 3 }
  })
  const worker = new queue.Worker({ provider, config: { concurrency: 4, pollInterval: 100 } })
  const running = worker.start()

  const dashboard = queue.createDashboard({ provider, scheduler, authorize: () => true, basePath: '/admin/queue', refreshInterval: 1000 })
  const server = http.createServer(dashboard)
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${server.address().port}/admin/queue/`
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, colorScheme: 'light' })
    await page.goto(url)
    await provider.pause('sms')
    for (let i = 0; i < 6; i++) await provider.enqueue('sms', { to: `+3361234${1000 + i}`, text: 'Your code is 4821' })
    await provider.enqueue('report', { period: 'month' }, { delay: 3600000 })
    await provider.enqueue('email', { to: 'later@example.com' }, { delay: 7200000 })
    const cancelled = await provider.enqueue('email', { to: 'oops@example.com' }, { delay: 60000 })
    await provider.cancelJob(cancelled.id)

    const end = Date.now() + SECONDS * 1000
    for (let s = 0; Date.now() < end; s++) {
      const rate = Math.round(12 + 10 * Math.sin(s / 9))
      const items = []
      for (let i = 0; i < rate; i++) items.push({ type: 'email', payload: { to: `user${s * 100 + i}@example.com`, template: 'welcome' }, options: { maxRetries: 1 } })
      if (s % 5 === 0) items.push({ type: 'report', payload: { period: 'week', team: `team-${s % 3}` } })
      if (s % 7 === 0) items.push({ type: 'resize-image', payload: { key: `uploads/${s}.jpg`, width: s % 14 === 0 ? 6000 : 1200 }, options: { maxRetries: 0 } })
      await provider.enqueueBulk(items)
      await sleep(1000)
    }
    await sleep(1500)
    await page.screenshot({ path: path.join(OUT, 'dashboard.png'), fullPage: true })

    await page.selectOption('#filter-status', 'dead')
    await page.locator('#jobs tr[data-id]').first().click()
    await page.waitForFunction(() => document.getElementById('detail').getAttribute('data-status') === 'dead')
    await sleep(300)
    await page.screenshot({ path: path.join(OUT, 'dashboard-job.png') })
    await page.click('#detail-close')
    await page.selectOption('#filter-status', '')

    await page.setViewportSize({ width: 390, height: 844 })
    await sleep(1500)
    await page.screenshot({ path: path.join(OUT, 'dashboard-phone.png') })
    console.log(`wrote ${['dashboard.png', 'dashboard-job.png', 'dashboard-phone.png'].map((f) => path.join('docs', f)).join(', ')}`)
  } finally {
    await browser.close()
    server.close()
    dashboard.close()
    await worker.stop()
    await running
    await provider.close()
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
