// Enqueue inside the caller's transaction (postgres provider, `options.tx`): with a
// node-postgres client after BEGIN, and with Prisma's interactive-transaction client when
// Prisma is installed. A rollback leaves no job; a commit wakes an idle worker.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { randomUUID } = require('node:crypto')
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
  await assert.rejects(p.enqueueBulk([{ type: 't', payload: 1 }], { tx: { $queryRawUnsafe() {}, $transaction() {} } }), /not the PrismaClient itself/)
  const mem = await queue.createQueueProvider({ type: 'memory' })
  const c = new Client({ connectionString: PG_URL })
  try {
    await assert.rejects(mem.enqueue('t', 1, { tx: c }), (e) => e instanceof TypeError && /needs the postgres provider; this provider is memory/.test(e.message))
  } finally {
    await mem.close()
  }
  assert.equal((await p.getStats()).pending, 0, 'nothing queued')
})

// Prisma itself cannot be installed on this machine (its CLI downloads engine binaries from a
// host outside the package registries), so this runs the Prisma path — `$queryRawUnsafe(sql,
// ...values)` on the interactive-transaction client, rows as objects — on an object with that
// method over a real PostgreSQL transaction.
pgTest('Prisma-shaped interactive-transaction client: rollback leaves no job, commit keeps it', async (p, c) => {
  const prismaTx = { $queryRawUnsafe: async (sql, ...values) => (await c.query(sql, values)).rows }
  await c.query('BEGIN')
  const rolled = await p.enqueue('t', { n: 1 }, { tx: prismaTx })
  await c.query('ROLLBACK')
  assert.equal(await p.getJob(rolled.id), null)
  await c.query('BEGIN')
  const [kept] = await p.enqueueBulk([{ type: 't', payload: { n: 2 } }], { tx: prismaTx })
  await c.query('COMMIT')
  assert.deepEqual((await p.getJob(kept.id)).payload, { n: 2 })
})
