// The old ChaasKit server's code, unchanged, on this package (issue 20): the app under
// __test__/old-server compiles with `tsc --strict`, its `if (!getScheduler())` sees null until
// the queue starts, its Prisma client on a non-public schema (`DATABASE_URL=…?schema=…`) reads
// the RecurringJob rows the scheduler wrote there, and `chaaskit-worker`, started from another
// directory with CHAASKIT_CONFIG_PATH, runs the recurring job with the app's handler.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { Client } = require('pg')
const { PG_URL, pgReachable, dropSchemas } = require('./pg.js')
const { CliProcess, killAll } = require('./cli-process.js')

const ROOT = path.join(__dirname, '..')
const APP = path.join(__dirname, 'old-server')
const TSX = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs')
const schema = `oldsrv_${process.pid}`
const DATABASE_URL = `${PG_URL}?schema=${schema}`

test.after(async () => {
  killAll()
  await dropSchemas([schema])
})

function generatePrismaClient() {
  execFileSync(process.execPath, [require.resolve('prisma/build/index.js'), 'generate', '--schema', path.join(APP, 'prisma', 'schema.prisma')], {
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: path.join(__dirname, 'prisma', 'no-schema-engine.js'), CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
    stdio: 'pipe',
  })
}

test('the old server: strict types, null before start, Prisma on ?schema= reads what the scheduler wrote, chaaskit-worker runs it', { timeout: 120_000 }, async (t) => {
  if (!(await pgReachable('the old-server app'))) return t.skip('PostgreSQL not reachable')
  generatePrismaClient()

  // 1. It compiles --strict: ReceivedJob-typed handlers, `if (!getScheduler())`, Prisma.
  const tsc = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', APP], { encoding: 'utf8' })
  assert.equal(tsc.status, 0, `${tsc.stdout}${tsc.stderr}`)

  // 2. The server's start and stop (tsx, as the server runs): null until started, rows in the schema.
  const env = { ...process.env, DATABASE_URL, TSX_TSCONFIG_PATH: path.join(APP, 'tsconfig.json'), CHAASKIT_QUEUE_LOG: 'warn' }
  const server = spawnSync(process.execPath, [TSX, path.join(APP, 'src', 'main.ts'), 'p1'], { cwd: ROOT, env, encoding: 'utf8' })
  assert.equal(server.status, 0, `${server.stdout}${server.stderr}`)
  const seen = JSON.parse(server.stdout.trim().split('\n').pop())
  assert.deepEqual(seen, { before: 'scheduler-off', after: 'synced', workerInServer: false, names: ['scheduled-prompt:p1'], afterStop: null })

  // The scheduler and the queue wrote to the URL's schema, not to public.
  const pg = new Client({ connectionString: PG_URL })
  await pg.connect()
  try {
    const tables = await pg.query(`SELECT table_schema, table_name FROM information_schema.tables WHERE table_name IN ('RecurringJob', 'QueueJob') AND table_schema = $1 ORDER BY 2`, [schema])
    assert.deepEqual(tables.rows.map((r) => r.table_name), ['QueueJob', 'RecurringJob'])
    const inPublic = await pg.query(`SELECT to_regclass('public."RecurringJob"') AS t`)
    if (inPublic.rows[0].t !== null) {
      const r = await pg.query(`SELECT count(*)::int AS n FROM public."RecurringJob" WHERE name = 'scheduled-prompt:p1'`)
      assert.equal(r.rows[0].n, 0, 'nothing written to public')
    }

    // 3. chaaskit-worker from the repository's root (no config/ there), the config through
    //    CHAASKIT_CONFIG_PATH (relative, without its extension, as the old loader allowed).
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
    const worker = new CliProcess(path.join(ROOT, pkg.bin['chaaskit-worker']), [], {
      cwd: ROOT,
      env: { ...env, CHAASKIT_CONFIG_PATH: path.relative(ROOT, path.join(APP, 'config', 'app.config')) },
    })
    try {
      await worker.waitFor(/started: provider=postgres .*handlers=1 \[scheduled-prompt:execute\] scheduler=on/, 30_000)
      await worker.waitFor(/^\[scheduled-prompt\] ran p1 attempt=1 receiptHandle=true$/m, 30_000)
      const ran = await pg.query(`SELECT count(*)::int AS n FROM "${schema}"."QueueJob" WHERE type = 'scheduled-prompt:execute' AND status = 'completed'`)
      assert.ok(ran.rows[0].n >= 1, 'the job completed in the schema\'s QueueJob table')
    } finally {
      worker.kill('SIGTERM')
      assert.deepEqual(await worker.exit(), { code: 0, signal: null })
    }
  } finally {
    await pg.end()
  }
})

test('postgres provider: an explicit schema wins over ?schema=; a ?schema= that cannot name a schema is an error naming it', { timeout: 60_000 }, async (t) => {
  if (!(await pgReachable('?schema='))) return t.skip('PostgreSQL not reachable')
  const queue = require('../index.js')
  const explicit = `${schema}_explicit`
  try {
    const p = await queue.createQueueProvider({ type: 'postgres', databaseUrl: `${PG_URL}?schema=${schema}_ignored`, schema: explicit })
    try {
      const job = await p.enqueue('x', 1)
      assert.equal((await p.getJob(job.id)).id, job.id)
    } finally {
      await p.close()
    }
    const pg = new Client({ connectionString: PG_URL })
    await pg.connect()
    try {
      const r = await pg.query(`SELECT nspname FROM pg_namespace WHERE nspname IN ($1, $2) ORDER BY 1`, [explicit, `${schema}_ignored`])
      assert.deepEqual(r.rows.map((x) => x.nspname), [explicit])
    } finally {
      await pg.end()
    }
    await assert.rejects(
      queue.createQueueProvider({ type: 'postgres', databaseUrl: `${PG_URL}?schema=pg_nope` }),
      /the schema parameter of providerConfig\.databaseUrl must be a PostgreSQL schema name .* got "pg_nope"/,
    )
    const provider = await queue.createQueueProvider({ type: 'memory' })
    assert.throws(
      () => new queue.Scheduler({ provider, config: { databaseUrl: `${PG_URL}?schema=` } }),
      /the schema parameter of the scheduler's database URL must be a PostgreSQL schema name .* got ""/,
    )
    await provider.close()
  } finally {
    await dropSchemas([explicit])
  }
})
