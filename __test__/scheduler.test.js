// The scheduler through the public JavaScript API, against the real PostgreSQL on
// 127.0.0.1:5432 (a fresh database per test) and against SQLite files in a temp directory.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync, fork } = require('node:child_process')
const { randomUUID } = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const queue = require('../index.js')
const { startMoto, REGION, sqsClient, createQueue } = require('./moto.js')

const { sleep, until } = require('./wait.js')
const waitFor = (what, fn, ms) => until(what, fn, ms, 25)

// ---- PostgreSQL through psql ---------------------------------------------------------------

function psql(db, sql) {
  return execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-v', 'ON_ERROR_STOP=1', '-Atq', '-c', sql], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim()
}

let pgReady = null
function pgAvailable() {
  if (pgReady === null) {
    try {
      psql('test', 'SELECT 1')
      pgReady = true
    } catch (e) {
      if (process.env.CI === 'true') throw new Error(`PostgreSQL on 127.0.0.1:5432 is required in CI: ${e.message}`)
      console.error(`\n*** SKIPPING PostgreSQL scheduler tests: ${String(e.message).split('\n')[0]} ***\n`)
      pgReady = false
    }
  }
  return pgReady
}

const createdDbs = []
function freshPgDb() {
  const name = `chaaskit_sched_js_${process.pid}_${createdDbs.length}`
  psql('test', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  psql('test', `CREATE DATABASE "${name}"`)
  createdDbs.push(name)
  return { name, url: `postgres://postgres@127.0.0.1:5432/${name}` }
}

// ---- SQLite ---------------------------------------------------------------------------------

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-sched-js-'))
let tmpN = 0
function sqliteUrl() {
  return `sqlite:${path.join(tmpRoot, `q${tmpN++}.db`)}?mode=rwc`
}

test.after(() => {
  for (const name of createdDbs) {
    try {
      psql('test', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    } catch {}
  }
  fs.rmSync(tmpRoot, { recursive: true, force: true })
})

/** Prisma's DDL for the spec's models exactly (no defaults but `createdAt`'s). */
const PRISMA_DDL_STRICT = `
CREATE TABLE "ScheduledJob" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    "scheduledFor" TIMESTAMP(3) NOT NULL,
    "status" TEXT NOT NULL,
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "ScheduledJob_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "RecurringJob" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    "schedule" TEXT NOT NULL,
    "timezone" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL,
    "nextRunAt" TIMESTAMP(3),
    "lastRunAt" TIMESTAMP(3),
    "lastError" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "RecurringJob_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "ScheduledJob_status_scheduledFor_idx" ON "ScheduledJob"("status", "scheduledFor");
CREATE INDEX "ScheduledJob_type_idx" ON "ScheduledJob"("type");
CREATE UNIQUE INDEX "RecurringJob_name_key" ON "RecurringJob"("name");
CREATE INDEX "RecurringJob_enabled_nextRunAt_idx" ON "RecurringJob"("enabled", "nextRunAt");
`

/** Prisma DDL of an app whose models carried `@default`s (as the old app's did). */
const PRISMA_DDL_WITH_DEFAULTS = PRISMA_DDL_STRICT.replace('"status" TEXT NOT NULL,', `"status" TEXT NOT NULL DEFAULT 'scheduled',`)
  .replace('"timezone" TEXT NOT NULL,', `"timezone" TEXT NOT NULL DEFAULT 'UTC',`)
  .replace('"enabled" BOOLEAN NOT NULL,', '"enabled" BOOLEAN NOT NULL DEFAULT true,')

/** The tables and indexes of `public`, but for the migration ledger (not a Prisma model). */
function schemaOf(db) {
  const cols = psql(
    db,
    `SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || COALESCE(datetime_precision::text, '-')
     FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'QueueMigration' ORDER BY table_name, ordinal_position`,
  )
  const idx = psql(db, `SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'QueueMigration' ORDER BY indexname`)
  return { cols, idx }
}

const backends = [
  { name: 'SQLite', url: () => sqliteUrl(), skip: () => false },
  { name: 'PostgreSQL', url: () => freshPgDb().url, skip: () => !pgAvailable() },
]

function newScheduler(url, extra = {}) {
  const provider = queue.createQueueProvider({ type: 'memory' })
  return provider.then((p) => ({ provider: p, scheduler: new queue.Scheduler({ provider: p, config: { databaseUrl: url, pollInterval: 60_000, ...extra } }) }))
}

// ---- tests ------------------------------------------------------------------------------------

test('PostgreSQL: migrate() makes exactly the tables Prisma makes', async (t) => {
  if (!pgAvailable()) return t.skip('PostgreSQL unavailable')
  const prismaDb = freshPgDb()
  psql(prismaDb.name, PRISMA_DDL_STRICT)
  const ours = freshPgDb()
  const { scheduler } = await newScheduler(ours.url)
  await scheduler.migrate()
  await scheduler.migrate() // only what is missing is created
  assert.deepEqual(schemaOf(ours.name), schemaOf(prismaDb.name))
  assert.equal(psql(ours.name, 'SELECT "id" || \' \' || "name" FROM "QueueMigration"'), '1 0001_scheduler')
  assert.match(schemaOf(ours.name).cols, /ScheduledJob\.scheduledFor timestamp without time zone NO 3/)
})

test('PostgreSQL: a Prisma-made database and rows the old scheduler wrote are used untouched', async (t) => {
  if (!pgAvailable()) return t.skip('PostgreSQL unavailable')
  const db = freshPgDb()
  psql(db.name, PRISMA_DDL_WITH_DEFAULTS)
  const before = schemaOf(db.name)
  const utc = `(NOW() AT TIME ZONE 'UTC')`
  const ids = [randomUUID(), randomUUID(), randomUUID()]
  // As the old scheduler wrote them through Prisma.
  psql(
    db.name,
    `INSERT INTO "ScheduledJob" ("id", "type", "payload", "options", "scheduledFor", "status", "createdAt", "updatedAt") VALUES
      ('${ids[0]}', 'email:send', '{"to":"user@example.com"}', '{"maxRetries":5,"timeout":10000}', ${utc} - interval '2 hours', 'scheduled', ${utc}, ${utc}),
      ('${ids[1]}', 'report:send', '{"reportId":"123"}', '{}', ${utc} + interval '1 day', 'scheduled', ${utc}, ${utc}),
      ('${ids[2]}', 'old:cancelled', '{}', '{}', ${utc} - interval '1 hour', 'cancelled', ${utc}, ${utc});
     INSERT INTO "RecurringJob" ("id", "name", "type", "payload", "options", "schedule", "timezone", "enabled", "nextRunAt", "createdAt", "updatedAt") VALUES
      ('${randomUUID()}', 'daily-digest', 'email:digest', '{"digestType":"daily"}', '{"priority":1}', '0 9 * * *', 'America/New_York', true, ${utc} - interval '3 days', ${utc}, ${utc}),
      ('${randomUUID()}', 'cache-cleanup', 'maintenance:cleanup', '{}', '{}', 'every 1 hour', 'UTC', false, ${utc} - interval '3 days', ${utc}, ${utc})`,
  )
  const { provider, scheduler } = await newScheduler(db.url)
  await scheduler.start() // autoMigrate over existing tables, then a poll at once
  try {
    await waitFor('the due rows', async () => (await provider.getStats()).pending === 2)
    const jobs = await provider.receive(10, 0)
    const byType = Object.fromEntries(jobs.map((j) => [j.type, j]))
    assert.deepEqual(byType['email:send'].payload, { to: 'user@example.com' })
    assert.equal(byType['email:send'].options.maxRetries, 5)
    assert.equal(byType['email:send'].options.timeout, 10000)
    assert.deepEqual(byType['email:digest'].payload, { digestType: 'daily' })
    assert.equal(byType['email:digest'].options.priority, 1)
    assert.equal((await scheduler.getScheduledJob(ids[0])).status, 'enqueued')
    assert.equal((await scheduler.getScheduledJob(ids[1])).status, 'scheduled')
    assert.equal(await scheduler.cancelScheduledJob(ids[2]), false)
    const [cleanup, digest] = await scheduler.listRecurring()
    assert.equal(cleanup.name, 'cache-cleanup')
    assert.equal(cleanup.lastRunAt, null, 'a disabled job does not run')
    assert.ok(digest.lastRunAt instanceof Date)
    // Three days missed: one catch-up run, next run in the future at 09:00 New York time.
    assert.ok(digest.nextRunAt > new Date())
    const ny = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' })
    assert.equal(ny.format(digest.nextRunAt), '09:00')
    assert.deepEqual(schemaOf(db.name), before, 'the schema is untouched')
  } finally {
    await scheduler.stop()
  }
})

for (const b of backends) {
  test(`${b.name}: every method`, async (t) => {
    if (b.skip()) return t.skip(`${b.name} unavailable`)
    const { provider, scheduler } = await newScheduler(b.url())
    await scheduler.migrate()
    assert.equal(scheduler.isRunning(), false)

    const at = new Date(Date.now() + 3_600_000)
    const row = await scheduler.schedule('report:send', { reportId: '123', recipients: ['user@example.com'] }, at, { maxRetries: 2 })
    assert.equal(row.status, 'scheduled')
    assert.equal(row.type, 'report:send')
    assert.deepEqual(JSON.parse(row.payload), { reportId: '123', recipients: ['user@example.com'] })
    assert.deepEqual(JSON.parse(row.options), { maxRetries: 2 })
    assert.equal(row.scheduledFor.getTime(), at.getTime())
    assert.ok(row.createdAt instanceof Date)
    assert.equal(row.error, null)
    assert.equal(await scheduler.cancelScheduledJob(row.id), true)
    assert.equal(await scheduler.cancelScheduledJob(row.id), false)
    assert.equal((await scheduler.getScheduledJob(row.id)).status, 'cancelled')
    assert.equal(await scheduler.getScheduledJob(randomUUID()), null)

    // Dates as epoch ms and ISO strings work too; a due job is enqueued by a poll.
    const due = await scheduler.schedule('due:job', [1, 2], Date.now() - 5, { priority: 3 })
    await scheduler.schedule('due:job2', null, new Date(Date.now() - 5).toISOString())
    assert.deepEqual(await scheduler.pollOnce(), { scheduled: 2, recurring: 0, failed: 0 })
    assert.equal(await scheduler.cancelScheduledJob(due.id), false)
    const got = await provider.receive(10, 0)
    assert.deepEqual(got.map((j) => j.type).sort(), ['due:job', 'due:job2'])
    assert.equal(got.find((j) => j.type === 'due:job').options.priority, 3)
    assert.deepEqual(got.find((j) => j.type === 'due:job').payload, [1, 2])

    const digest = await scheduler.registerRecurring({
      name: 'daily-digest',
      type: 'email:digest',
      payload: { digestType: 'daily' },
      schedule: '0 9 * * *',
      timezone: 'America/New_York',
    })
    assert.equal(digest.enabled, true)
    assert.equal(digest.timezone, 'America/New_York')
    assert.ok(digest.nextRunAt > new Date())
    const cleanup = await scheduler.registerRecurring({ name: 'cache-cleanup', type: 'maintenance:cleanup', payload: {}, schedule: 'every 1 hour' })
    assert.equal(cleanup.timezone, 'UTC')
    const inAnHour = cleanup.nextRunAt.getTime() - Date.now()
    assert.ok(inAnHour > 3_590_000 && inAnHour <= 3_600_000, `nextRunAt in ${inAnHour} ms`)
    assert.deepEqual((await scheduler.listRecurring()).map((r) => r.name), ['cache-cleanup', 'daily-digest'])

    await assert.rejects(
      scheduler.registerRecurring({ name: 'bad', type: 't', payload: {}, schedule: '61 * * * *' }),
      { message: 'invalid schedule "61 * * * *": minute field "61": number out of bounds (0-59)' },
    )
    // Multi-byte text and an overflowing step are refused with the value, not a panic.
    for (const schedule of ['ééé 9 * * *', '每天 9 点 * *', '1/4294967295 * * * *']) {
      await assert.rejects(scheduler.registerRecurring({ name: 'bad', type: 't', payload: {}, schedule }), { message: new RegExp(`^invalid schedule ${JSON.stringify(schedule).replace(/[*/]/g, '\\$&')}: minute field`) })
    }
    // cron-parser's grammar: seconds first in six fields, L, #; nextRunAt is what nextRuns says.
    for (const schedule of ['0 30 2 * * *', '*/10 * * * * *', '0 0 L * *', '0 18 * * 5L', '0 9 * * 1#2']) {
      const before = Date.now()
      const row = await scheduler.registerRecurring({ name: `grammar-${schedule}`, type: 't', payload: {}, schedule, timezone: 'Europe/London' })
      const [expected] = queue.nextRuns(schedule, { timezone: 'Europe/London', from: before })
      const [latest] = queue.nextRuns(schedule, { timezone: 'Europe/London', from: Date.now() })
      assert.ok(row.nextRunAt >= expected && row.nextRunAt <= latest, `${schedule}: ${row.nextRunAt.toISOString()}`)
      assert.equal(await scheduler.deleteRecurring(row.name), true)
    }
    await assert.rejects(
      scheduler.registerRecurring({ name: 'bad', type: 't', payload: {}, schedule: '0 9 * * *', timezone: 'Mars/Base' }),
      { message: 'unknown time zone "Mars/Base"' },
    )
    await assert.rejects(
      scheduler.registerRecurring({ name: 'bad', type: 't', payload: {}, schedule: 'every 1 fortnight' }),
      /invalid schedule "every 1 fortnight": unknown interval unit "fortnight"/,
    )

    assert.equal(await scheduler.disableRecurring('daily-digest'), true)
    assert.equal((await scheduler.listRecurring())[1].enabled, false)
    assert.equal(await scheduler.enableRecurring('daily-digest'), true)
    const enabled = (await scheduler.listRecurring())[1]
    assert.equal(enabled.enabled, true)
    assert.ok(enabled.nextRunAt > new Date())
    // Re-registering upserts by name and re-enables.
    await scheduler.disableRecurring('cache-cleanup')
    const again = await scheduler.registerRecurring({ name: 'cache-cleanup', type: 'maintenance:vacuum', payload: { deep: true }, schedule: 'every 30 minutes', options: { maxRetries: 0 } })
    assert.equal(again.id, cleanup.id)
    assert.equal(again.enabled, true)
    assert.equal(again.type, 'maintenance:vacuum')
    assert.deepEqual(JSON.parse(again.options), { maxRetries: 0 })
    assert.equal(await scheduler.disableRecurring('nope'), false)
    assert.equal(await scheduler.enableRecurring('nope'), false)
    assert.equal(await scheduler.deleteRecurring('daily-digest'), true)
    assert.equal(await scheduler.deleteRecurring('daily-digest'), false)
    assert.deepEqual((await scheduler.listRecurring()).map((r) => r.name), ['cache-cleanup'])
  })
}

test('bad arguments are refused with errors naming the argument and value', async () => {
  const { scheduler } = await newScheduler(sqliteUrl())
  await assert.rejects(scheduler.schedule('x', {}, new Date('nope')), { name: 'RangeError', message: 'date must be a valid Date, got Date(Invalid Date)' })
  await assert.rejects(scheduler.schedule('x', {}, 'tomorrow-ish'), { name: 'RangeError', message: 'date must be a valid Date, got "tomorrow-ish"' })
  await assert.rejects(scheduler.schedule('x', {}, undefined), { name: 'RangeError', message: 'date must be a valid Date, got undefined' })
  await assert.rejects(scheduler.schedule('', {}, new Date()), { name: 'TypeError', message: 'type must be a non-empty string, got ""' })
  await assert.rejects(scheduler.schedule('x', {}, new Date(), { maxRetries: -1 }), { name: 'RangeError', message: /options\.maxRetries/ })
  await assert.rejects(scheduler.cancelScheduledJob(42), { name: 'TypeError', message: 'id must be a non-empty string, got 42' })
  await assert.rejects(scheduler.registerRecurring(null), { name: 'TypeError', message: 'input must be an object, got null' })
  await assert.rejects(scheduler.registerRecurring({ type: 't', schedule: '* * * * *' }), { name: 'TypeError', message: 'input.name must be a non-empty string, got undefined' })
  await assert.rejects(scheduler.registerRecurring({ name: 'n', type: 't', schedule: 5 }), { name: 'TypeError', message: /input\.schedule .* got 5/ })
  await assert.rejects(scheduler.registerRecurring({ name: 'n', type: 't', schedule: '* * * * *', timezone: 3 }), { name: 'TypeError', message: /input\.timezone .* got 3/ })
  await assert.rejects(scheduler.enableRecurring(undefined), { name: 'TypeError', message: 'name must be a non-empty string, got undefined' })
  const provider = await queue.createQueueProvider({ type: 'memory' })
  assert.throws(() => new queue.Scheduler({ provider: {}, config: {} }), { name: 'TypeError', message: /Scheduler needs a provider made by createQueueProvider/ })
  assert.throws(() => new queue.Scheduler({ provider, config: { pollInterval: 0 } }), { name: 'RangeError', message: 'scheduler.pollInterval must be at least 1 ms, got 0' })
  assert.throws(() => new queue.Scheduler({ provider, config: { pollInterval: 'soon' } }), { name: 'RangeError', message: /scheduler\.pollInterval .* got "soon"/ })
  assert.throws(() => new queue.Scheduler({ provider, config: { databaseUrl: 'mysql://u:secret@h/db' } }), {
    name: 'TypeError',
    message: 'scheduler.databaseUrl must be a postgres://, postgresql:// or sqlite: URL, got "mysql://u:***@h/db"',
  })
  assert.throws(() => new queue.Scheduler({ provider, config: { autoMigrate: 'yes' } }), { name: 'TypeError', message: 'scheduler.autoMigrate must be a boolean, got "yes"' })
})

test('start() polls at once and then every pollInterval; stop() ends the polling', async () => {
  const { provider, scheduler } = await newScheduler(sqliteUrl(), { pollInterval: 60_000 })
  await scheduler.migrate()
  await scheduler.schedule('early', 1, Date.now() - 1)
  await scheduler.start()
  assert.equal(scheduler.isRunning(), true)
  await waitFor('the poll at start', async () => (await provider.getStats()).pending === 1, 5000)
  await scheduler.schedule('later', 2, Date.now() - 1)
  await sleep(300)
  assert.equal((await provider.getStats()).pending, 1, 'the next poll is a minute away')
  await scheduler.stop()
  assert.equal(scheduler.isRunning(), false)

  const fast = new queue.Scheduler({ provider, config: { databaseUrl: scheduler.config.databaseUrl, pollInterval: 50 } })
  await fast.start()
  await waitFor('a later poll', async () => (await provider.getStats()).pending === 2, 5000)
  const row = await fast.schedule('soon', 3, Date.now() + 200)
  await waitFor('the job once due', async () => (await provider.getStats()).pending === 3, 5000)
  assert.equal((await fast.getScheduledJob(row.id)).status, 'enqueued')
  await fast.stop()
  await fast.schedule('after-stop', 4, Date.now() - 1)
  await sleep(200)
  assert.equal((await provider.getStats()).pending, 3)
})

test('singletons: getScheduler, startScheduler, stopScheduler, resetScheduler, DATABASE_URL and the default file', async () => {
  const cwd = process.cwd()
  const savedUrl = process.env.DATABASE_URL
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'cwd-'))
  try {
    process.chdir(dir)
    delete process.env.DATABASE_URL
    queue.resetScheduler()
    queue.resetQueueProvider()
    // Not started: null, as the old queue had it (the server checks `if (!getScheduler())`).
    assert.equal(queue.getScheduler(), null)
    // Options without a provider or config: the queue provider and the embedded SQLite file
    // under the working directory.
    const s = queue.getScheduler({})
    assert.equal(queue.getScheduler(), s)
    assert.equal(s.provider, queue.getQueueProvider())
    assert.equal(s.config.pollInterval, 60000)
    // autoMigrate: the tables are made on first use, even before start().
    const row = await s.schedule('report:send', { reportId: '1' }, new Date(Date.now() + 60_000))
    assert.equal(row.status, 'scheduled')
    assert.ok(fs.existsSync(path.join(dir, '.chaaskit', 'queue.db')), 'the default database file')
    const started = await queue.startScheduler()
    assert.equal(started, s)
    assert.equal((await s.getScheduledJob(row.id)).status, 'scheduled')
    assert.equal(s.isRunning(), true)
    await queue.stopScheduler()
    assert.equal(s.isRunning(), false)
    assert.equal(queue.getScheduler(), null, 'stopScheduler forgets it, as the old queue did')
    queue.resetScheduler()
    assert.notEqual(queue.getScheduler({ provider: await queue.createQueueProvider({ type: 'memory' }) }), s)

    // DATABASE_URL comes before the default file.
    const envDb = path.join(dir, 'from-env.db')
    process.env.DATABASE_URL = `sqlite:${envDb}?mode=rwc`
    queue.resetScheduler()
    await queue.startScheduler({ provider: queue.getQueueProvider(), config: { pollInterval: 1000 } })
    assert.ok(fs.existsSync(envDb), 'DATABASE_URL used')
    queue.resetScheduler() // stops it in the background
    await sleep(100)

    // initializeQueue starts the scheduler when enabled; shutdownQueue stops it.
    queue.resetQueueProvider()
    const cfgUrl = `sqlite:${path.join(dir, 'from-config.db')}?mode=rwc`
    const { scheduler } = await queue.initializeQueue({
      enabled: true,
      providerConfig: { type: 'memory' },
      worker: { mode: 'standalone' },
      scheduler: { enabled: true, pollInterval: 1000, databaseUrl: cfgUrl },
    })
    assert.ok(scheduler && scheduler.isRunning())
    assert.ok(fs.existsSync(path.join(dir, 'from-config.db')), 'scheduler.databaseUrl comes first')
    await queue.shutdownQueue()
    assert.equal(scheduler.isRunning(), false)
  } finally {
    process.chdir(cwd)
    if (savedUrl === undefined) delete process.env.DATABASE_URL
    else process.env.DATABASE_URL = savedUrl
    queue.resetScheduler()
    queue.resetQueueProvider()
  }
})

test('autoMigrate: false leaves the schema to the app (db:push), and migrate() makes it', async () => {
  const { scheduler } = await newScheduler(sqliteUrl(), { autoMigrate: false })
  await assert.rejects(scheduler.schedule('x', 1, new Date()), /no such table: ScheduledJob/)
  await scheduler.migrate()
  assert.equal((await scheduler.schedule('x', 1, new Date())).status, 'scheduled')
})

test('PostgreSQL: four scheduler processes enqueue 1,000 jobs and 50 recurring runs exactly once', { timeout: 120_000 }, async (t) => {
  if (!pgAvailable()) return t.skip('PostgreSQL unavailable')
  const db = freshPgDb()
  const { scheduler } = await newScheduler(db.url)
  await scheduler.migrate()
  const utc = `(NOW() AT TIME ZONE 'UTC')`
  psql(
    db.name,
    `INSERT INTO "ScheduledJob" ("id", "type", "payload", "options", "scheduledFor", "status", "updatedAt")
       SELECT gen_random_uuid()::text, 'bulk', '{"s":' || i || '}', '{}', ${utc} - interval '1 minute', 'scheduled', ${utc}
       FROM generate_series(0, 999) AS i;
     INSERT INTO "RecurringJob" ("id", "name", "type", "payload", "options", "schedule", "timezone", "enabled", "nextRunAt", "updatedAt")
       SELECT gen_random_uuid()::text, 'r' || i, 'rec', '{"r":' || i || '}', '{}', 'every 1 day', 'UTC', true, ${utc} - interval '1 minute', ${utc}
       FROM generate_series(0, 49) AS i`,
  )
  const children = []
  for (let i = 0; i < 4; i++) {
    const c = fork(path.join(__dirname, 'scheduler-child.js'), [db.url], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.push(c)
  }
  const messages = children.map((c) => new Promise((resolve, reject) => {
    const got = []
    c.on('message', (m) => {
      got.push(m)
      if (m.payloads) resolve(m.payloads)
    })
    c.once('exit', (code) => (code === 0 ? null : reject(new Error(`child exited with ${code}`))))
  }))
  await waitFor('every row enqueued', async () => psql(db.name, `SELECT COUNT(*) FROM "ScheduledJob" WHERE "status" = 'enqueued'`) === '1000' &&
    psql(db.name, `SELECT COUNT(*) FROM "RecurringJob" WHERE "lastRunAt" IS NOT NULL`) === '50', 60_000)
  await sleep(200)
  for (const c of children) c.send('dump')
  const all = (await Promise.all(messages)).flat()
  const counts = new Map()
  for (const p of all) counts.set(p, (counts.get(p) || 0) + 1)
  const dups = [...counts.values()].reduce((a, n) => a + n - 1, 0)
  let missed = 0
  for (let i = 0; i < 1000; i++) if (!counts.has(`{"s":${i}}`)) missed++
  for (let i = 0; i < 50; i++) if (!counts.has(`{"r":${i}}`)) missed++
  assert.equal(dups, 0, 'duplicates')
  assert.equal(missed, 0, 'missed')
  assert.equal(all.length, 1050)
})

test('SQS: delays over 15 minutes go through a running scheduler', { timeout: 90_000 }, async (t) => {
  const moto = await startMoto()
  if (!moto) return t.skip('moto_server unavailable')
  const sqs = sqsClient(moto.endpoint)
  try {
    const queueUrl = await createQueue(sqs, `sched-${process.pid}-${Date.now()}`)
    const provider = await queue.createQueueProvider({ type: 'sqs', region: REGION, queueUrl, endpoint: moto.endpoint })
    const scheduler = new queue.Scheduler({ provider, config: { databaseUrl: sqliteUrl(), pollInterval: 60_000 } })
    await assert.rejects(provider.enqueue('report:send', { id: 1 }, { delay: 20 * 60_000 }), /15-minute limit/)
    await scheduler.start()
    const before = Date.now()
    const job = await provider.enqueue('report:send', { id: 1 }, { delay: 20 * 60_000, maxRetries: 7 })
    assert.equal(job.status, 'scheduled')
    const row = await scheduler.getScheduledJob(job.id)
    assert.ok(row, 'stored by the scheduler')
    assert.equal(row.type, 'report:send')
    assert.deepEqual(JSON.parse(row.payload), { id: 1 })
    assert.equal(JSON.parse(row.options).maxRetries, 7)
    const wait = row.scheduledFor.getTime() - before
    assert.ok(wait >= 20 * 60_000 && wait < 20 * 60_000 + 5000, `scheduled ${wait} ms ahead`)
    await scheduler.stop()
    await assert.rejects(provider.enqueue('report:send', { id: 2 }, { delay: 20 * 60_000 }), /15-minute limit/)
    await provider.close()
  } finally {
    sqs.destroy()
    await moto.stop()
  }
})

/** Run SQL text on the database `url` names, as another writer would (psql / sqlite3). */
function rawSql(url, sql) {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length).split('?')[0]
    execFileSync('sqlite3', ['-bail', file, sql], { stdio: ['ignore', 'pipe', 'pipe'] })
  } else {
    psql(new URL(url).pathname.slice(1), sql)
  }
}

for (const b of backends) {
  test(`${b.name}: a poll that meets bad rows records their errors and goes on; isRunning() tells the truth`, async (t) => {
    if (b.skip()) return t.skip(`${b.name} unavailable`)
    const url = b.url()
    const { provider, scheduler } = await newScheduler(url, { pollInterval: 50 })
    await scheduler.migrate()
    const past = b.name === 'SQLite' ? String(Date.now() - 60_000) : `(NOW() AT TIME ZONE 'UTC') - interval '1 minute'`
    const row = (id, name, type, payload, schedule, tz) =>
      `('${id}', '${name}', '${type}', '${payload}', '{}', '${schedule}', '${tz}', TRUE, ${past}, ${past}, ${past})`
    rawSql(
      url,
      `INSERT INTO "RecurringJob" ("id", "name", "type", "payload", "options", "schedule", "timezone", "enabled", "nextRunAt", "createdAt", "updatedAt") VALUES
        ${row('r1', 'multibyte', 't:multibyte', '{}', 'ééé 9 * * *', 'UTC')},
        ${row('r2', 'chinese', 't:chinese', '{}', '每天 9 点 * *', 'UTC')},
        ${row('r3', 'bad-zone', 't:zone', '{}', '0 9 * * *', 'Mars/Base')},
        ${row('r4', 'good', 't:good', '{"g":1}', 'every 1 hour', 'UTC')};
       INSERT INTO "ScheduledJob" ("id", "type", "payload", "options", "scheduledFor", "status", "createdAt", "updatedAt") VALUES
        ('s1', 't:bad-payload', '{not json', '{}', ${past}, 'scheduled', ${past}, ${past}),
        ('s2', 't:ok', '{"s":1}', '{}', ${past}, 'scheduled', ${past}, ${past});`,
    )
    assert.equal(scheduler.isRunning(), false)
    await scheduler.start()
    try {
      await waitFor('the good rows', async () => (await provider.getStats()).pending === 2)
      await sleep(300) // more polls go over the bad rows
      assert.equal(scheduler.isRunning(), true, 'the poll task is alive')
      const byName = Object.fromEntries((await scheduler.listRecurring()).map((r) => [r.name, r]))
      assert.match(byName.multibyte.lastError, /^invalid schedule "ééé 9 \* \* \*"/)
      assert.match(byName.chinese.lastError, /^invalid schedule "每天 9 点 \* \*"/)
      assert.equal(byName['bad-zone'].lastError, 'unknown time zone "Mars/Base"')
      for (const name of ['multibyte', 'chinese', 'bad-zone']) {
        assert.equal(byName[name].nextRunAt, null, `${name} is set aside`)
        assert.equal(byName[name].lastRunAt, null, `${name} did not run`)
      }
      assert.equal(byName.good.lastError, null)
      assert.ok(byName.good.nextRunAt > new Date())
      const bad = await scheduler.getScheduledJob('s1')
      assert.equal(bad.status, 'cancelled', 'a payload that is not JSON can never be enqueued')
      assert.match(bad.error, /^stored payload is not JSON/)
      assert.equal((await scheduler.getScheduledJob('s2')).status, 'enqueued')
      const types = (await provider.receive(10, 0)).map((j) => j.type).sort()
      assert.deepEqual(types, ['t:good', 't:ok'])
    } finally {
      await scheduler.stop()
    }
    assert.equal(scheduler.isRunning(), false)
  })
}
