// The standalone worker CLI (bin/queue-worker.js) as a child process on the example app
// (examples/app: TypeScript config and handlers). Jobs reach a worker process through the
// scheduler's SQLite database (scheduled from this process) or through SQS (moto_server).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { startMoto, sqsClient, createQueue, REGION } = require('./moto.js')
const { CliProcess, killAll } = require('./cli-process.js')
const queue = require('../index.js')

const ROOT = path.join(__dirname, '..')
const BIN = path.join(ROOT, 'bin', 'queue-worker.js')
const APP = path.join(ROOT, 'examples', 'app')
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-cli-'))
let tmpN = 0
const tmpDir = () => fs.mkdtempSync(path.join(tmpRoot, `t${tmpN++}-`))
const sqliteUrl = () => `sqlite:${path.join(tmpDir(), 'queue.db')}?mode=rwc`

/** The environment of a worker: this one without the variables the CLI reads, plus `extra`. */
function cliEnv(extra = {}) {
  const env = { ...process.env }
  for (const k of Object.keys(env)) {
    if (/^(QUEUE_|SCHEDULER_|SQS_)/.test(k) || k === 'DATABASE_URL' || k === 'CLEANUP_SCHEDULE') delete env[k]
  }
  return { ...env, QUEUE_PROVIDER: 'memory', CHAASKIT_QUEUE_LOG: 'warn', ...extra }
}

/** A `queue-worker` of the example app (its working directory by default), in the test's environment. */
class Cli extends CliProcess {
  constructor(args = [], { env = {}, cwd = APP } = {}) {
    super(BIN, args, { cwd, env: cliEnv(env) })
  }
}

/** Run the CLI to completion: `{ code, signal, stdout, stderr }`. */
async function run(args, opts) {
  const cli = new Cli(args, opts)
  const { code, signal } = await cli.exit(30_000)
  return { code, signal, stdout: cli.stdout, stderr: cli.stderr }
}

const { sleep } = require('./wait.js')
const count = (text, re) => (text.match(new RegExp(re.source, `${re.flags.replace('g', '')}g`)) || []).length

/** A Scheduler in this process on the worker's database, to feed it jobs. */
async function feeder(databaseUrl) {
  const provider = await queue.createQueueProvider({ type: 'memory' })
  const scheduler = new queue.Scheduler({ provider, config: { databaseUrl, autoMigrate: false } })
  await scheduler.migrate()
  return { scheduler, close: () => provider.close() }
}

test.after(async () => {
  killAll()
  fs.rmSync(tmpRoot, { recursive: true, force: true })
})

// ---- usage, configuration errors ---------------------------------------------------------------

test('--help documents every command, option, environment variable and exit code', async () => {
  const r = await run(['--help'])
  assert.equal(r.code, 0, r.stderr)
  for (const word of ['migrate', 'start', '--config', '--jobs', '--help', '.env', 'QUEUE_CONCURRENCY', 'QUEUE_POLL_INTERVAL',
    'QUEUE_SHUTDOWN_TIMEOUT', 'SCHEDULER_ENABLED', 'SCHEDULER_POLL_INTERVAL', 'DATABASE_URL', 'CHAASKIT_CONFIG_PATH', 'chaaskit-worker', 'SIGTERM', 'Exit codes', '130', '143']) {
    assert.ok(r.stdout.includes(word), `--help mentions ${word}`)
  }
  assert.equal((await run(['help'])).stdout, r.stdout)

  for (const [args, re] of [
    [['--bogus'], /unknown option --bogus/],
    [['--config'], /--config needs a value/],
    [['frob'], /unknown command frob/],
  ]) {
    const u = await run(args)
    assert.equal(u.code, 2, `${args.join(' ')}: exit code 2 for a usage error`)
    assert.match(u.stderr, re)
  }
})

test('a bad environment value is an error naming the variable and the value (exit 1)', async () => {
  const cases = [
    ['QUEUE_CONCURRENCY', 'abc', /QUEUE_CONCURRENCY must be a number, got "abc"/],
    ['QUEUE_POLL_INTERVAL', '1s', /QUEUE_POLL_INTERVAL must be a number, got "1s"/],
    ['QUEUE_SHUTDOWN_TIMEOUT', 'soon', /QUEUE_SHUTDOWN_TIMEOUT must be a number, got "soon"/],
    ['SCHEDULER_ENABLED', 'maybe', /SCHEDULER_ENABLED must be true, false, 1 or 0, got "maybe"/],
    ['SCHEDULER_POLL_INTERVAL', 'fast', /SCHEDULER_POLL_INTERVAL must be a number, got "fast"/],
    // A number out of range: the config path at fault and the variable that set it.
    ['QUEUE_CONCURRENCY', '0', /queue\.worker\.concurrency must be at least 1, got 0 \(from QUEUE_CONCURRENCY=0\)/],
    ['SCHEDULER_POLL_INTERVAL', '0', /queue\.scheduler\.pollInterval .* \(from SCHEDULER_POLL_INTERVAL=0\)/],
  ]
  const results = await Promise.all(cases.map(([name, value]) => run([], { env: { [name]: value } })))
  results.forEach((r, i) => {
    const [name, value, re] = cases[i]
    assert.equal(r.code, 1, `${name}=${value}: exit 1\n${r.stderr}`)
    assert.match(r.stderr, re)
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
    assert.doesNotMatch(r.stdout, /started:/)
  })
})

test('a disabled or invalid queue config exits 1 with a clear message', async () => {
  const dir = tmpDir()
  fs.writeFileSync(path.join(dir, 'noqueue.config.ts'), 'export const config = { name: "app" }\n')
  const [disabled, missing, sqs] = await Promise.all([
    run([], { env: { QUEUE_ENABLED: 'false' } }),
    run(['--config', path.join(dir, 'noqueue.config.ts')]),
    run([], { env: { QUEUE_PROVIDER: 'sqs' } }), // no SQS_QUEUE_URL
  ])
  assert.equal(disabled.code, 1)
  assert.match(disabled.stderr, /the queue is disabled: queue\.enabled is false in config\/app\.config\.ts/)
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /the queue is disabled: .*noqueue\.config\.ts has no `queue` block/)
  assert.equal(sqs.code, 1)
  assert.match(sqs.stderr, /invalid queue config in config\/app\.config\.ts: queue\.providerConfig\.queueUrl is required when type is 'sqs'/)
  for (const r of [disabled, missing, sqs]) assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
})

test('--jobs: a missing directory exits 1; one registering no handler is a warning, and the worker runs (as the old one did)', async () => {
  const empty = tmpDir()
  const missing = await run(['--jobs', path.join(empty, 'nope')])
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /--jobs .*nope: no such directory/)
  const none = new Cli(['--jobs', empty], { env: { SCHEDULER_ENABLED: 'false' } })
  await none.waitFor(/started: provider=memory .*handlers=0 \[\]/)
  assert.match(none.stderr, /warning: no job handlers registered/)
  none.kill('SIGTERM')
  assert.deepEqual(await none.exit(), { code: 0, signal: null })
})

test('chaaskit-worker (the old command) finds the config through CHAASKIT_CONFIG_PATH, with or without its extension, from another directory', async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  assert.equal(pkg.bin['chaaskit-worker'], pkg.bin['queue-worker'], 'chaaskit-worker is the same program')
  const elsewhere = tmpDir() // a monorepo root: no config/ here
  const bare = path.relative(elsewhere, path.join(APP, 'config', 'app.config')) // relative, no extension
  const w = new Cli([], { cwd: elsewhere, env: { CHAASKIT_CONFIG_PATH: bare, SCHEDULER_ENABLED: 'false', TSX_TSCONFIG_PATH: path.join(APP, 'tsconfig.json') } })
  // The handlers are the app's (extensions/jobs beside the config's folder), not the cwd's.
  await w.waitFor(/started: provider=memory .*handlers=[1-9]/)
  w.kill('SIGTERM')
  assert.deepEqual(await w.exit(), { code: 0, signal: null })
  const wrong = await run([], { cwd: elsewhere, env: { CHAASKIT_CONFIG_PATH: 'nowhere/app.config' } })
  assert.equal(wrong.code, 1)
  assert.match(wrong.stderr, /CHAASKIT_CONFIG_PATH=nowhere\/app\.config: no such config file/)
})

// ---- migrate -------------------------------------------------------------------------------------

test('migrate creates the scheduler tables in DATABASE_URL and exits', async () => {
  const url = sqliteUrl()
  const provider = await queue.createQueueProvider({ type: 'memory' })
  const probe = new queue.Scheduler({ provider, config: { databaseUrl: url, autoMigrate: false } })
  try {
    await assert.rejects(probe.listRecurring(), /RecurringJob/, 'no tables before migrate')
    const r = await run(['migrate'], { env: { DATABASE_URL: url } })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /scheduler tables ready in sqlite:/)
    assert.deepEqual(await probe.listRecurring(), [])
    const job = await probe.schedule('report:generate', { reportId: 'x' }, new Date(Date.now() + 60_000))
    assert.equal((await probe.getScheduledJob(job.id)).status, 'scheduled')
    const again = await run(['migrate'], { env: { DATABASE_URL: url } })
    assert.equal(again.code, 0, 'migrate is idempotent')
    assert.equal((await probe.getScheduledJob(job.id)).status, 'scheduled', 'rows survive a second migrate')
  } finally {
    await provider.close()
  }
})

test('migrate makes the directory of a sqlite: DATABASE_URL that is not there yet', async () => {
  const cwd = tmpDir()
  const r = await run(['migrate'], { cwd, env: { DATABASE_URL: 'sqlite:.chaaskit/nested/queue.db' } })
  assert.equal(r.code, 0, r.stderr)
  assert.ok(fs.existsSync(path.join(cwd, '.chaaskit', 'nested', 'queue.db')), 'the file in its new directory')
})

// ---- running workers (memory provider, fed through the SQLite scheduler) ------------------------

test('loads .env, --config and --jobs; variables already set win over .env', async () => {
  const dir = tmpDir()
  // tsx maps '@chaaskit/server' with the cwd's tsconfig.json, as in the example app.
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, paths: { '@chaaskit/server': [ROOT] } } }))
  fs.writeFileSync(path.join(dir, '.env'), 'QUEUE_CONCURRENCY=7\nQUEUE_POLL_INTERVAL=111 # a comment\nQUEUE_SHUTDOWN_TIMEOUT=\n')
  fs.mkdirSync(path.join(dir, 'cfg'))
  fs.writeFileSync(
    path.join(dir, 'cfg', 'custom.config.ts'),
    "import type { QueueConfig } from '@chaaskit/server'\n" +
      "const queue: QueueConfig = { enabled: true, providerConfig: { type: 'memory' } }\n" +
      'export default { queue }\n',
  )
  const w = new Cli(['--config', 'cfg/custom.config.ts', `--jobs=${path.join(APP, 'extensions', 'jobs')}`], {
    cwd: dir,
    env: { QUEUE_POLL_INTERVAL: '222' },
  })
  const [line] = await w.waitFor(/^queue-worker: started:.*$/m)
  assert.match(line, /provider=memory concurrency=7 pollInterval=222ms shutdownTimeout=30000ms /)
  assert.match(line, /handlers=3 \[maintenance:cleanup, report:generate, webhook:send\] scheduler=off$/)
  w.kill('SIGINT')
  assert.deepEqual(await w.exit(), { code: 0, signal: null })
})

test('runs the TypeScript handlers on jobs from the scheduler; env overrides in the summary; SIGTERM waits for the running job', async () => {
  const url = sqliteUrl()
  const feed = await feeder(url)
  try {
    const w = new Cli([], {
      env: {
        DATABASE_URL: url,
        QUEUE_CONCURRENCY: '3',
        QUEUE_POLL_INTERVAL: '250',
        QUEUE_SHUTDOWN_TIMEOUT: '20000',
        SCHEDULER_ENABLED: '1',
        SCHEDULER_POLL_INTERVAL: '100',
      },
    })
    const [summary] = await w.waitFor(/^queue-worker: started:.*$/m)
    assert.match(summary, /provider=memory concurrency=3 pollInterval=250ms shutdownTimeout=20000ms /)
    assert.match(summary, /handlers=3 \[maintenance:cleanup, report:generate, webhook:send\] /)
    assert.match(summary, /scheduler=on \(pollInterval=100ms, sqlite:/)
    assert.equal(count(w.stdout, /started:/), 1, 'the summary is one line')

    const now = new Date()
    await feed.scheduler.schedule('report:generate', { reportId: 'r1', pages: 4, msPerPage: 50 }, now)
    await feed.scheduler.schedule('webhook:send', { event: 'e1', failAttempts: 1 }, now, { maxRetries: 2 })
    await feed.scheduler.registerRecurring({ name: 'cache-cleanup', type: 'maintenance:cleanup', payload: {}, schedule: 'every 1 second' })

    await w.waitFor(/^\[report r1\] 50%$/m)
    await w.waitFor(/^\[report r1\] done$/m)
    await w.waitFor(/^\[webhook e1\] attempt 1 failed/m)
    await w.waitFor(/^\[webhook e1\] delivered on attempt 2 /m, 20_000) // after the retry backoff
    await w.waitFor(/^\[cleanup\] run 2 /m)

    // SIGTERM while a job runs: the job finishes, then the worker exits 0.
    await feed.scheduler.schedule('report:generate', { reportId: 'long', pages: 8, msPerPage: 250 }, new Date())
    await w.waitFor(/^\[report long\] 13%$/m)
    w.kill('SIGTERM')
    await w.waitFor(/SIGTERM received; stopping \(waiting up to 20000 ms for 1 running job;/)
    const exit = await w.exit()
    assert.deepEqual(exit, { code: 0, signal: null }, w.stderr)
    assert.match(w.stdout, /^\[report long\] 100%$/m)
    assert.ok(w.stdout.indexOf('[report long] done') < w.stdout.indexOf('queue-worker: stopped:'), 'the job finished before the worker stopped')
    assert.match(w.stdout, /queue-worker: stopped: \d+ processed/)
    assert.equal(count(w.stdout, /^\[report r1\] done$/m), 1)
  } finally {
    await feed.close()
  }
})

test('a second signal forces the exit without waiting for the running job', async () => {
  const url = sqliteUrl()
  const feed = await feeder(url)
  try {
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
      const w = new Cli([], { env: { DATABASE_URL: url, SCHEDULER_POLL_INTERVAL: '100' } })
      await w.waitFor(/started:/)
      const id = `slow-${signal}`
      await feed.scheduler.schedule('report:generate', { reportId: id, pages: 40, msPerPage: 250 }, new Date())
      await w.waitFor(new RegExp(`^\\[report ${id}\\] started`, 'm'))
      w.kill(signal)
      await w.waitFor(new RegExp(`${signal} received; stopping`))
      const t0 = Date.now()
      w.kill(signal)
      assert.deepEqual(await w.exit(5000), { code, signal: null })
      assert.ok(Date.now() - t0 < 3000, 'exited at once')
      assert.match(w.stderr, new RegExp(`${signal} again; exiting without waiting`))
      assert.doesNotMatch(w.stdout, new RegExp(`\\[report ${id}\\] done`))
    }
  } finally {
    await feed.close()
  }
})

// ---- SQS (moto_server): several worker processes on one queue ----------------------------------

let moto
let motoTried = false
async function motoOrSkip(t) {
  if (!motoTried) {
    motoTried = true
    moto = await startMoto() // null (after a loud message) when unavailable; throws in CI
  }
  if (!moto) t.skip('moto_server unavailable')
  return moto
}
test.after(async () => {
  await moto?.stop()
})

function sqsEnv(queueUrl, extra = {}) {
  return {
    QUEUE_PROVIDER: 'sqs',
    SQS_QUEUE_URL: queueUrl,
    SQS_ENDPOINT: moto.endpoint,
    AWS_REGION: REGION,
    SCHEDULER_ENABLED: 'false',
    // A stop waits for the long poll in flight, which lasts at most shutdownTimeout.
    QUEUE_SHUTDOWN_TIMEOUT: '3000',
    ...extra,
  }
}

test('SQS: two worker processes share a queue and each job runs (moto duplicates counted)', { timeout: 60_000 }, async (t) => {
  if (!(await motoOrSkip(t))) return
  const sqs = sqsClient(moto.endpoint)
  const url = await createQueue(sqs, 'cli-share')
  sqs.destroy()
  const a = new Cli([], { env: sqsEnv(url, { QUEUE_CONCURRENCY: '2' }) })
  const b = new Cli([], { env: sqsEnv(url, { QUEUE_CONCURRENCY: '2' }) })
  await Promise.all([a.waitFor(/started: provider=sqs concurrency=2 /), b.waitFor(/started: provider=sqs concurrency=2 /)])

  const provider = await queue.createQueueProvider({ type: 'sqs', region: REGION, queueUrl: url, endpoint: moto.endpoint })
  const N = 24
  try {
    await provider.enqueueBulk(Array.from({ length: N }, (_, i) => ({ type: 'report:generate', payload: { reportId: `s${i}`, pages: 2, msPerPage: 100 } })))
  } finally {
    await provider.close()
  }
  const doneIn = (w) => [...w.stdout.matchAll(/^\[report (s\d+)\] done$/gm)].map((m) => m[1])
  const deadline = performance.now() + 30_000
  while (doneIn(a).length + doneIn(b).length < N) {
    if (performance.now() > deadline) throw new Error(`not all jobs ran: ${doneIn(a).length} + ${doneIn(b).length} of ${N}\n${a.stderr}\n${b.stderr}`)
    await sleep(50)
  }
  await sleep(500) // a duplicate delivery would show up here
  const all = [...doneIn(a), ...doneIn(b)]
  const distinct = [...new Set(all)].sort()
  assert.deepEqual(distinct, Array.from({ length: N }, (_, i) => `s${i}`).sort(), 'every job ran')
  // moto re-delivers messages that were already deleted when consumers poll concurrently (a
  // plain SDK consumer sees it too), so on moto duplicates are counted, not failed on; a handful
  // is moto, many would be ours (a lost delete or an expired visibility timeout). "Never two
  // attempts at once" is judged on PostgreSQL and SQLite, where the claim is ours.
  const duplicates = all.length - distinct.length
  if (duplicates > 0) t.diagnostic(`${duplicates} duplicate deliveries by moto`)
  assert.ok(duplicates <= 3, `${duplicates} duplicate runs of ${N} jobs`)
  assert.ok(doneIn(a).length > 0 && doneIn(b).length > 0, `both workers took jobs (${doneIn(a).length} / ${doneIn(b).length})`)
  assert.ok(count(a.stdout + b.stdout, /started \(attempt [2-9]\)/) <= duplicates, 'no job was retried but for a duplicate delivery')
  a.kill('SIGTERM')
  b.kill('SIGTERM')
  assert.deepEqual(await a.exit(), { code: 0, signal: null })
  assert.deepEqual(await b.exit(), { code: 0, signal: null })
})

test('SQS: an idle worker with the default config exits 0 soon after SIGTERM (inside docker stop\'s 10 s), holding no message', { timeout: 60_000 }, async (t) => {
  if (!(await motoOrSkip(t))) return
  const sqs = sqsClient(moto.endpoint)
  const url = await createQueue(sqs, 'cli-sigterm')
  sqs.destroy()
  // The default shutdownTimeout (30 s) and waitTimeSeconds (1 s).
  const env = sqsEnv(url)
  delete env.QUEUE_SHUTDOWN_TIMEOUT
  const w = new Cli([], { env })
  await w.waitFor(/started: provider=sqs .*shutdownTimeout=30000ms/)
  await sleep(1500) // idle: a long poll is at the server
  const t0 = performance.now()
  w.kill('SIGTERM')
  assert.deepEqual(await w.exit(), { code: 0, signal: null })
  const ms = performance.now() - t0
  t.diagnostic(`exited ${Math.round(ms)} ms after SIGTERM`)
  assert.ok(ms < 2000, `an idle worker exits within 2 s of SIGTERM, took ${Math.round(ms)} ms`)
  // Nothing is held by a poll the stopped worker left behind: a job sent now is received at once.
  const provider = await queue.createQueueProvider({ type: 'sqs', region: REGION, queueUrl: url, endpoint: moto.endpoint })
  try {
    const job = await provider.enqueue('report:generate', { reportId: 'after-stop' })
    const got = await provider.receive(1, 5)
    assert.equal(got.length, 1)
    assert.equal(got[0].id, job.id)
    await provider.acknowledge(got[0].receiptHandle)
  } finally {
    await provider.close()
  }
})

test('SQS: a job of a worker killed with SIGKILL is finished by another after the visibility timeout', { timeout: 60_000 }, async (t) => {
  if (!(await motoOrSkip(t))) return
  const sqs = sqsClient(moto.endpoint)
  const url = await createQueue(sqs, 'cli-kill')
  sqs.destroy()
  const env = sqsEnv(url, { SQS_VISIBILITY_TIMEOUT: '2', QUEUE_CONCURRENCY: '1' })
  const a = new Cli([], { env })
  await a.waitFor(/started: provider=sqs /)
  const provider = await queue.createQueueProvider({ type: 'sqs', region: REGION, queueUrl: url, endpoint: moto.endpoint })
  try {
    await provider.enqueue('report:generate', { reportId: 'k1', pages: 10, msPerPage: 300 })
  } finally {
    await provider.close()
  }
  await a.waitFor(/^\[report k1\] 20%$/m)
  a.kill('SIGKILL')
  assert.equal((await a.exit()).signal, 'SIGKILL')
  const killedAt = Date.now()
  const b = new Cli([], { env })
  // Attempt 2, or 3 when the dead worker's pending long poll took the message once more (the
  // server still answers a poll whose client is gone; that delivery waits out the timeout too).
  const [, attempt] = await b.waitFor(/^\[report k1\] started \(attempt (\d+)\)$/m, 20_000).catch((e) => {
    throw new Error(`${e.message}\n--- stdout of the killed worker:\n${a.stdout}`)
  })
  const waited = Date.now() - killedAt
  assert.ok(Number(attempt) >= 2, `a redelivery (attempt ${attempt})`)
  await b.waitFor(/^\[report k1\] done$/m, 20_000)
  assert.doesNotMatch(a.stdout, /\[report k1\] done/)
  assert.ok(waited >= 500 && waited < 15_000, `redelivered after the visibility timeout (${waited} ms after the kill)`)
  b.kill('SIGTERM')
  assert.deepEqual(await b.exit(), { code: 0, signal: null })
})

// ---- the durable providers ----------------------------------------------------------------------

test('postgres: migrate creates the QueueJob table; two worker processes share the queue and each job runs exactly once', { timeout: 60_000 }, async (t) => {
  const PG = 'postgres://postgres@127.0.0.1:5432/test'
  const { Client } = require('pg')
  const admin = new Client({ connectionString: PG })
  try {
    await admin.connect()
  } catch (e) {
    if (process.env.CI === 'true') throw e
    console.error(`SKIPPED: PostgreSQL not reachable at ${PG}: ${e.message}`)
    return t.skip('PostgreSQL unavailable')
  }
  const schema = `cli_${process.pid}_${Date.now()}`
  // The scheduler's tables (migrate makes them too) go to the same schema, through search_path.
  const url = `${PG}?options=${encodeURIComponent(`-c search_path=${schema}`)}`
  const env = { QUEUE_PROVIDER: 'postgres', DATABASE_URL: url, QUEUE_PG_SCHEMA: schema, QUEUE_CONCURRENCY: '2', SCHEDULER_ENABLED: 'false' }
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`)
    const m = await run(['migrate'], { env })
    assert.equal(m.code, 0, m.stderr)
    assert.match(m.stdout, /postgres queue table ready/)
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM "${schema}"."QueueJob"`)
    assert.equal(rows[0].n, 0)
    await admin.query(`SELECT 1 FROM "${schema}"."RecurringJob"`)
    const a = new Cli([], { env })
    const b = new Cli([], { env })
    await Promise.all([a.waitFor(/started: provider=postgres concurrency=2 /), b.waitFor(/started: provider=postgres concurrency=2 /)])
    const provider = await queue.createQueueProvider({ type: 'postgres', databaseUrl: PG, schema })
    const N = 24
    try {
      await provider.enqueueBulk(Array.from({ length: N }, (_, i) => ({ type: 'report:generate', payload: { reportId: `p${i}`, pages: 2, msPerPage: 50 } })))
    } finally {
      await provider.close()
    }
    const doneIn = (w) => [...w.stdout.matchAll(/^\[report (p\d+)\] done$/gm)].map((m) => m[1])
    const deadline = performance.now() + 30_000
    while (doneIn(a).length + doneIn(b).length < N) {
      if (performance.now() > deadline) throw new Error(`not all jobs ran: ${doneIn(a).length} + ${doneIn(b).length} of ${N}\n${a.stderr}\n${b.stderr}`)
      await sleep(50)
    }
    await sleep(500)
    const all = [...doneIn(a), ...doneIn(b)].sort()
    assert.deepEqual(all, Array.from({ length: N }, (_, i) => `p${i}`).sort(), 'every job ran exactly once')
    assert.ok(doneIn(a).length > 0 && doneIn(b).length > 0, `both workers took jobs (${doneIn(a).length} / ${doneIn(b).length})`)
    a.kill('SIGTERM')
    b.kill('SIGTERM')
    assert.deepEqual(await a.exit(), { code: 0, signal: null })
    assert.deepEqual(await b.exit(), { code: 0, signal: null })
    const done = await admin.query(`SELECT count(*)::int AS n FROM "${schema}"."QueueJob" WHERE status = 'completed'`)
    assert.equal(done.rows[0].n, N)
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await admin.end()
  }
})
