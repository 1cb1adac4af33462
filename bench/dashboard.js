'use strict'
// The dashboard's list page: GET <basePath>/api/jobs (the request the page makes for its job
// list, 25 a page, and on every refresh) through createDashboard on a loopback HTTP server,
// timed at the client, p50/p95 over BENCH_DASH_N requests each:
// - memory provider with 10k jobs (target p95 ≤ 20 ms);
// - PostgreSQL with 1M jobs in a fresh schema (target p95 ≤ 100 ms), seeded with one
//   INSERT … SELECT generate_series (BENCH_DASH_PG_ROWS to change the size, BENCH_DASH_PG=0 to skip).
// Pages: the newest (no filter), a status, a type, status + type, a type no job has, and page 40 (a cursor deep
// in the list); plus one job's detail and the overview (counts: a full count on PostgreSQL).
//   node bench/dashboard.js

const http = require('node:http')
const queue = require('..')

const N = Number(process.env.BENCH_DASH_N || 300)
const MEM_JOBS = 10000
const PG_ROWS = Number(process.env.BENCH_DASH_PG_ROWS || 1000000)
const PG_URL = process.env.QUEUE_TEST_PG_URL || process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
const TYPES = ['email', 'report', 'sms', 'resize']

function listen(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler)
    server.keepAliveTimeout = 60000
    server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) }))
  })
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
}

/** p50/p95 (ms) of GET `url` `n` times, one at a time, after 10 warm-up requests. */
async function time(url, n = N, gapMs = 0) {
  const get = async () => {
    const r = await fetch(url)
    const body = await r.text()
    if (r.status !== 200) throw new Error(`${url}: ${r.status} ${body}`)
    return body
  }
  for (let i = 0; i < 10; i++) await get()
  const ms = []
  for (let i = 0; i < n; i++) {
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs))
    const t = performance.now()
    await get()
    ms.push(performance.now() - t)
  }
  return { p50: pct(ms, 50), p95: pct(ms, 95) }
}

/** Rows for every page of interest on a provider holding `total` jobs. */
async function measure(label, provider, total, target) {
  const d = queue.createDashboard({ provider, authorize: () => true, basePath: '/q' })
  const s = await listen(d)
  const rows = []
  try {
    const api = `${s.url}/q/api`
    // A cursor 39 pages deep (page 40), walked as the page's "Older" button does.
    let cursor = null
    for (let i = 0; i < 39; i++) cursor = JSON.parse(await (await fetch(`${api}/jobs?limit=25${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)).text()).nextCursor
    const first = JSON.parse(await (await fetch(`${api}/jobs?limit=25`)).text()).jobs[0]
    const pages = [
      ['newest 25, no filter', 'limit=25'],
      ['status=completed', 'status=completed&limit=25'],
      ['status=dead', 'status=dead&limit=25'],
      ['type=email', 'type=email&limit=25'],
      ['status=dead&type=sms', 'status=dead&type=sms&limit=25'],
      ['type=nope (no job has this type)', 'type=nope&limit=25'],
      ['page 40 (cursor), no filter', `limit=25&cursor=${encodeURIComponent(cursor)}`],
    ]
    for (const [name, q] of pages) {
      const r = await time(`${api}/jobs?${q}`)
      rows.push({ name: `dashboard list page, ${label} (${fmt(total)} jobs): ${name}, p50 / p95`, value: `${r.p50.toFixed(2)} / ${r.p95.toFixed(2)}`, unit: 'ms', target: `p95 ≤ ${target} ms` })
    }
    const det = await time(`${api}/jobs/${first.id}`)
    rows.push({ name: `dashboard job detail, ${label}, p50 / p95`, value: `${det.p50.toFixed(2)} / ${det.p95.toFixed(2)}`, unit: 'ms', target: '' })
    // The overview reuses counts younger than 1 s; wait that out each time to time a real count.
    const ov = await time(`${api}/overview`, Math.min(N, 20), 1100)
    rows.push({ name: `dashboard overview (getStats counts by status, not cached), ${label}, p50 / p95`, value: `${ov.p50.toFixed(2)} / ${ov.p95.toFixed(2)}`, unit: 'ms', target: '' })
  } finally {
    await s.close()
    d.close()
  }
  return rows
}

const fmt = (n) => n.toLocaleString('en-US')

async function memoryRows() {
  const p = await queue.createQueueProvider({ type: 'memory', maxHistorySize: MEM_JOBS })
  try {
    const items = []
    for (let i = 0; i < MEM_JOBS; i++) items.push({ type: TYPES[i % 4], payload: { n: i, to: `user${i}@example.com` }, options: { maxRetries: 0 } })
    await p.enqueueBulk(items)
    // 80% completed, 10% dead, 10% left pending.
    let done = 0
    while (done < MEM_JOBS * 0.9) {
      const batch = await p.receive(1000, 0)
      for (const j of batch) {
        if (done++ % 9 === 8) await p.fail(j.receiptHandle, new Error('SMTP 550 mailbox unavailable'))
        else await p.acknowledge(j.receiptHandle, { ok: true })
      }
    }
    return await measure('memory', p, MEM_JOBS, 20)
  } finally {
    await p.close()
  }
}

async function postgresRows() {
  const { Client } = require('pg')
  const schema = `bench_dash_${process.pid}`
  const p = await queue.createQueueProvider({ type: 'postgres', databaseUrl: PG_URL, schema })
  const c = new Client({ connectionString: PG_URL })
  await c.connect()
  try {
    // One real job gives the stored shape of `options`; the rest are copies made by the server.
    const sample = await p.enqueue('email', { n: 0 })
    const t = `"${schema}"."QueueJob"`
    const { rows } = await c.query(`SELECT "options"::text AS o FROM ${t} WHERE "id" = $1`, [sample.id])
    const started = Date.now()
    await c.query(
      `INSERT INTO ${t} ("id", "type", "payload", "options", "status", "maxRetries", "attempts", "runAt", "createdAt", "startedAt", "completedAt", "lastError", "result")
       SELECT gen_random_uuid(), ($2::text[])[1 + i % 4], json_build_object('n', i, 'to', 'user' || i || '@example.com'), $1::json,
              CASE WHEN i % 10 < 8 THEN 'completed' WHEN i % 10 = 8 THEN 'dead' ELSE 'pending' END,
              3, CASE WHEN i % 10 < 9 THEN 1 ELSE 0 END,
              now(), now() - (i * interval '1 millisecond'),
              CASE WHEN i % 10 < 9 THEN now() END, CASE WHEN i % 10 < 9 THEN now() END,
              CASE WHEN i % 10 = 8 THEN 'SMTP 550 mailbox unavailable' END,
              CASE WHEN i % 10 < 8 THEN '{"ok":true}'::json END
       FROM generate_series(1, $3::int) AS i`,
      [rows[0].o, TYPES, PG_ROWS - 1],
    )
    await c.query(`ANALYZE ${t}`)
    console.error(`bench/dashboard: seeded ${fmt(PG_ROWS)} PostgreSQL jobs in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    return await measure('PostgreSQL', p, PG_ROWS, 100)
  } finally {
    await p.close()
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await c.end()
  }
}

async function run() {
  const rows = await memoryRows()
  if (process.env.BENCH_DASH_PG !== '0') rows.push(...(await postgresRows()))
  return rows
}

module.exports = { run }

if (require.main === module) require('./rows.js').runStandalone(run)
