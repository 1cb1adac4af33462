// Enqueue inside the caller's transaction (postgres provider, `options.tx`): with a
// node-postgres client after BEGIN, and with a real Prisma 7 interactive-transaction client
// (the Rust-free client over @prisma/adapter-pg, generated here from __test__/prisma). A
// rollback leaves no job; a commit wakes an idle worker.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { randomUUID } = require('node:crypto')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { Client, Pool } = require('pg')
const queue = require('../index.js')

const { PG_URL, pgReachable, dropSchemas } = require('./pg.js')
const schemas = []
let pgUp = false

test.before(async () => {
  pgUp = await pgReachable('postgres tests')
})

test.after(async () => {
  if (pgUp) await dropSchemas(schemas)
})

async function pgProvider() {
  const schema = `tx_${randomUUID().slice(0, 8)}`
  schemas.push(schema)
  return queue.createQueueProvider({ type: 'postgres', databaseUrl: PG_URL, schema })
}

function pgTest(name, fn) {
  test(name, { timeout: 30_000 }, async (t) => {
    if (!pgUp) return t.skip('PostgreSQL unavailable')
    const p = await pgProvider()
    const c = new Client({ connectionString: PG_URL })
    await c.connect()
    try {
      await fn(p, c)
    } finally {
      await c.end()
      await p.close()
    }
  })
}

pgTest('node-postgres: a rolled-back transaction leaves no job', async (p, c) => {
  await c.query('BEGIN')
  const job = await p.enqueue('email', { to: 'a@b.c' }, { tx: c, priority: 2 })
  assert.equal(job.type, 'email')
  assert.equal(job.status, 'pending')
  assert.deepEqual(job.payload, { to: 'a@b.c' })
  assert.deepEqual(job.options, { maxRetries: 3, timeout: 30000, priority: 2 })
  assert.ok(job.createdAt instanceof Date)
  assert.equal(await p.getJob(job.id), null, 'invisible before the commit')
  await c.query('ROLLBACK')
  assert.equal(await p.getJob(job.id), null)
  assert.equal((await p.getStats()).pending, 0)
})

pgTest('node-postgres: a committed transaction queues its jobs, in order, and wakes an idle receiver', async (p, c) => {
  const waiting = p.receive(10, 10)
  await new Promise((r) => setTimeout(r, 200))
  await c.query('BEGIN')
  await c.query('CREATE TEMP TABLE orders (id int)')
  await c.query('INSERT INTO orders VALUES (1)')
  const jobs = await p.enqueueBulk(
    [
      { type: 'ship', payload: { order: 1 } },
      { type: 'mail', payload: { order: 1 }, options: { delay: 60_000 } },
    ],
    { tx: c },
  )
  assert.deepEqual(jobs.map((j) => j.type), ['ship', 'mail'])
  assert.equal(jobs[1].status, 'scheduled')
  assert.ok(jobs[1].scheduledFor instanceof Date)
  assert.equal(jobs[0].scheduledFor, undefined)
  const t0 = Date.now()
  await c.query('COMMIT')
  const got = await waiting
  assert.ok(Date.now() - t0 < 500, `woke ${Date.now() - t0} ms after the commit`)
  assert.deepEqual(got.map((j) => j.id), [jobs[0].id])
  assert.equal((await p.getJob(jobs[1].id)).status, 'scheduled')
})

pgTest('node-postgres: a deduplicationKey inside a transaction returns the unfinished job holding it', async (p, c) => {
  const existing = await p.enqueue('t', 1, { deduplicationKey: 'k' })
  await c.query('BEGIN')
  const again = await p.enqueue('t', 2, { deduplicationKey: 'k', tx: c })
  await c.query('COMMIT')
  assert.equal(again.id, existing.id)
  assert.deepEqual(again.payload, 1)
})

pgTest('a tx of the wrong kind, or with a provider that cannot join it, is a TypeError', async (p) => {
  await assert.rejects(p.enqueue('t', 1, { tx: {} }), (e) => e instanceof TypeError && /options\.tx must be a Prisma/.test(e.message))
  const pool = new Pool({ connectionString: PG_URL })
  try {
    await assert.rejects(p.enqueue('t', 1, { tx: pool }), (e) => e instanceof TypeError && /not a Pool/.test(e.message))
  } finally {
    await pool.end()
  }
  await assert.rejects(p.enqueueBulk([{ type: 't', payload: 1 }], { tx: { $queryRawUnsafe() {}, $connect() {} } }), /not the PrismaClient itself/)
  const mem = await queue.createQueueProvider({ type: 'memory' })
  const c = new Client({ connectionString: PG_URL })
  try {
    await assert.rejects(mem.enqueue('t', 1, { tx: c }), (e) => e instanceof TypeError && /needs the postgres provider; this provider is memory/.test(e.message))
  } finally {
    await mem.close()
  }
  assert.equal((await p.getStats()).pending, 0, 'nothing queued')
})

// ---- Prisma -------------------------------------------------------------------------------

const PRISMA_DIR = path.join(__dirname, 'prisma')

/**
 * The Prisma client of __test__/prisma/schema.prisma, generated once per run. `prisma
 * generate` fetches the schema engine (from binaries.prisma.sh) before it generates, though
 * the Rust-free client never uses it: a stand-in that refuses to run is named instead.
 */
let generated = false
function prismaClient(schema) {
  if (!generated) {
    execFileSync(process.execPath, [require.resolve('prisma/build/index.js'), 'generate', '--schema', path.join(PRISMA_DIR, 'schema.prisma')], {
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: path.join(PRISMA_DIR, 'no-schema-engine.js'), CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      stdio: 'pipe',
    })
    generated = true
  }
  const { PrismaClient } = require('./prisma/client')
  const { PrismaPg } = require('@prisma/adapter-pg')
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: PG_URL }, { schema }) })
}

test('Prisma: an interactive transaction that commits queues the job a worker runs; one that throws leaves neither order nor job', { timeout: 60_000 }, async (t) => {
  if (!pgUp) return t.skip('PostgreSQL unavailable')
  const schema = `tx_${randomUUID().slice(0, 8)}`
  schemas.push(schema)
  const p = await queue.createQueueProvider({ type: 'postgres', databaseUrl: PG_URL, schema })
  const c = new Client({ connectionString: PG_URL })
  await c.connect()
  await c.query(`CREATE TABLE "${schema}".orders (id serial PRIMARY KEY, total int NOT NULL)`)
  const prisma = prismaClient(schema)
  const ran = []
  queue.registerJobHandler('prisma:ship', async (job) => ran.push(job.payload))
  const w = new queue.Worker({ provider: p, config: { concurrency: 1, pollInterval: 50 } })
  t.after(async () => {
    await w.stop()
    queue.unregisterJobHandler('prisma:ship')
    await prisma.$disconnect()
    await c.end()
    await p.close()
  })

  const committed = await prisma.$transaction(async (tx) => {
    const order = await tx.order.create({ data: { total: 42 } })
    const job = await p.enqueue('prisma:ship', { order: order.id }, { tx, priority: 1 })
    assert.equal(await p.getJob(job.id), null, 'invisible outside the transaction before its commit')
    return { order, job }
  })
  assert.equal(committed.job.status, 'pending')
  assert.deepEqual(committed.job.options, { maxRetries: 3, timeout: 30000, priority: 1 })
  assert.deepEqual((await p.getJob(committed.job.id)).payload, { order: committed.order.id })

  await assert.rejects(
    prisma.$transaction(async (tx) => {
      const order = await tx.order.create({ data: { total: 7 } })
      await p.enqueueBulk([{ type: 'prisma:ship', payload: { order: order.id } }], { tx })
      throw new Error('payment declined')
    }),
    /payment declined/,
  )
  assert.equal(await prisma.order.count(), 1, 'the rolled-back order is gone')
  assert.deepEqual(await p.getStats().then((s) => s.pending), 1, 'and so is its job')

  await assert.rejects(p.enqueue('prisma:ship', {}, { tx: prisma }), (e) => e instanceof TypeError && /not the PrismaClient itself/.test(e.message))

  w.start()
  const deadline = performance.now() + 20_000
  while ((await p.getJob(committed.job.id)).status !== 'completed') {
    assert.ok(performance.now() < deadline, 'the committed job ran')
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.deepEqual(ran, [{ order: committed.order.id }])
})
