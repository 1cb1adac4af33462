'use strict'
// Database-backed queues side by side (issue #12), in one run on this machine's PostgreSQL, the
// same shape for every system: N no-op jobs bulk-enqueued in batches of 1,000 (timed in this
// process), then ONE worker process (bench/worker-process.js) at concurrency 24 until the
// database shows every job finished. Systems: graphile-worker, pg-boss and ours (postgres
// provider), each in a fresh schema; then the machine's cap (a bare COPY of N rows into a table
// shaped like our jobs table), enqueue→handler-start latency at 500 jobs/s offered, the same
// drain on our sqlite provider, an idle worker's CPU, claim throughput with 1M vs 10k jobs queued,
// and the size of our table under a sustained load with a short retention.
//
// `node --expose-gc bench/index.js postgres` (or `node bench/postgres.js`). Environment:
// BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), BENCH_PG_N (20000),
// BENCH_PG_RUNS (1, median), BENCH_SQLITE_RUNS (3, median), BENCH_PG_ENQ_ROUNDS (5 timed bulk
// enqueues per run, each in a fresh schema, median; the COPY cap as often), BENCH_PG_BIG
// (1000000: the claim figure's big queue), BENCH_PG_LATENCY_MS (5000), BENCH_PG_RETENTION_S
// (180), BENCH_PG_ONLY (sections: drain, copy, latency, idle, sqlite, claim, retention),
// BENCH_PG_SYSTEMS (the drain's systems by key, default all; `ours-postgres` alone for an A/B
// of our builds). Our rows are skipped, saying why, while the build lacks the provider.

const { fork } = require('node:child_process')
const { performance } = require('node:perf_hooks')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { pipeline } = require('node:stream/promises')
const { Readable } = require('node:stream')
const { hostNow, pace, percentile } = require('./timing.js')

const DATABASE_URL = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
const N = Number(process.env.BENCH_PG_N || 20000)
const RUNS = Number(process.env.BENCH_PG_RUNS || 1)
const SQLITE_RUNS = Number(process.env.BENCH_SQLITE_RUNS || 3)
const ENQ_ROUNDS = Number(process.env.BENCH_PG_ENQ_ROUNDS || 5)
const SETTLE_MS = 500
const BIG = Number(process.env.BENCH_PG_BIG || 1000000)
const SMALL = 10000
const CLAIM_BATCH = 100
const CLAIM_ROUND = 1000
const CLAIM_ROUNDS = 15
const BATCH = 1000
const CONCURRENCY = 24
const LATENCY_RATE = 500
const LATENCY_MS = Number(process.env.BENCH_PG_LATENCY_MS || 5000)
const ONLY = process.env.BENCH_PG_ONLY ? process.env.BENCH_PG_ONLY.split(',') : null
const DRAIN_TIMEOUT_MS = 600_000
const RETENTION_RATE = 1000 // jobs/s offered while the table size is sampled
const RETENTION_S = Number(process.env.BENCH_PG_RETENTION_S || 180) // three purge cycles
const RETENTION_KEEP_MS = 5000 // completed jobs kept 5 s (the purge itself runs every minute)
const RETENTION_SAMPLE_S = 10

const fmt = (n) => Math.round(n).toLocaleString('en-US')
const ratio = (a, b) => (a / b).toFixed(2) + '×'
const section = (s) => !ONLY || ONLY.includes(s)
const median = (xs) => xs.slice().sort((a, b) => a - b)[(xs.length - 1) >> 1]
let schemaN = 0
const pkgVersion = (name) => JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'node_modules', name, 'package.json'), 'utf8')).version
// A temp dir gone, retried: SQLite may still drop its -wal/-shm files as close() resolves.
const rmTemp = (dir) => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10 })
const freshSchema = (sys) => `chaaskit_bench_${sys}_${process.pid}_${schemaN++}`

// ---- PostgreSQL helpers ----------------------------------------------------------------------

async function pgClient() {
  const { Client } = require('pg')
  const c = new Client({ connectionString: DATABASE_URL })
  await c.connect()
  return c
}

async function dropSchema(schema) {
  const c = await pgClient()
  try {
    await c.query(`drop schema if exists "${schema}" cascade`)
  } finally {
    await c.end()
  }
}

// ---- the worker process -------------------------------------------------------------------------

/** A forked bench/worker-process.js, set up with `setup` and waiting for 'go'. */
async function workerProcess(setup) {
  const child = fork(path.join(__dirname, 'worker-process.js'), [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const inbox = []
  const waiters = []
  let exit = null
  const deliver = (m) => (waiters.length ? waiters.shift()(m) : inbox.push(m))
  child.on('message', deliver)
  // 'close', not 'exit': messages still in the channel are delivered before it.
  child.on('close', (code, signal) => {
    exit = { code, signal }
    while (waiters.length) waiters.shift()({ error: `worker process exited (${signal || code})` })
  })
  const next = () =>
    new Promise((resolve, reject) => {
      const take = (m) => (m && m.error ? reject(new Error(`${setup.system} worker process: ${m.error}`)) : resolve(m))
      if (inbox.length) take(inbox.shift())
      else if (exit) take({ error: `worker process exited (${exit.signal || exit.code})` })
      else waiters.push(take)
    })
  const exited = new Promise((r) => (exit ? r() : child.once('close', r)))
  child.send({ setup })
  if ((await next()) !== 'ready') throw new Error('worker process: expected ready')
  return {
    next,
    send: (m) => child.send(m),
    async close() {
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(t)
    },
  }
}

/** 'go', then the seconds until `n` jobs are handled and none is left unfinished. */
async function drainInChild(setup) {
  const w = await workerProcess({ mode: 'drain', n: N, concurrency: CONCURRENCY, timeoutMs: DRAIN_TIMEOUT_MS, ...setup })
  try {
    w.send('go')
    const r = await w.next()
    if (!r.drained) throw new Error(`worker process: unexpected ${JSON.stringify(r)}`)
    return r.seconds
  } finally {
    await w.close()
  }
}

// ---- the systems, producer side ------------------------------------------------------------------
// Each: label, async prepare(schema) -> producer { enqueue(n) (batches of BATCH), enqueueOne(payload), close() },
// and workerSetup(schema) for the worker process.

const noopBatch = (n, make) => Array.from({ length: n }, make)

/** Where a PostgreSQL system's extra enqueue rounds go (`sibling`), and how one is dropped. */
const inSchemas = { sibling: (schema, r) => `${schema}_r${r}`, discard: (schema) => dropSchema(schema) }
/** The same for a SQLite file (`sqlite:<path>`). */
const inFiles = {
  sibling: (url, r) => url.replace(/\.db$/, `-r${r}.db`),
  discard: async (url) => {
    for (const ext of ['', '-wal', '-shm']) fs.rmSync(url.slice('sqlite:'.length) + ext, { force: true })
  },
}

const graphile = {
  key: 'graphile',
  label: () => `graphile-worker ${pkgVersion('graphile-worker')}`,
  how: '`addJobs` × 1,000, then `run({ concurrency: 24 })`, logging off',
  async prepare(schema) {
    const { makeWorkerUtils, Logger } = require('graphile-worker')
    const utils = await makeWorkerUtils({ connectionString: DATABASE_URL, schema, logger: new Logger(() => () => {}) })
    await utils.migrate()
    return {
      async enqueue(n) {
        for (let i = 0; i < n; i += BATCH) await utils.addJobs(noopBatch(Math.min(BATCH, n - i), () => ({ identifier: 'noop', payload: {} })))
      },
      enqueueOne: (payload) => utils.addJob('noop', payload),
      close: () => utils.release(),
    }
  },
  oneBy: '`addJob`',
  workerSetup: (schema) => ({ system: 'graphile', databaseUrl: DATABASE_URL, schema }),
  ...inSchemas,
}

const pgboss = {
  key: 'pgboss',
  label: () => `pg-boss ${pkgVersion('pg-boss')}`,
  how: '`insert` × 1,000, then `work` with `batchSize: 24`, `pollingIntervalSeconds: 0.5`',
  async prepare(schema) {
    const m = await import('pg-boss')
    const PgBoss = m.PgBoss || m.default // a named export from 11 on, the default before
    const boss = new PgBoss({ connectionString: DATABASE_URL, schema, supervise: false, schedule: false })
    // insert(name, jobs) from 11 on; insert(jobs with a name each) in 10.
    const insert = Number(pkgVersion('pg-boss').split('.')[0]) >= 11 ? (jobs) => boss.insert('noop', jobs) : (jobs) => boss.insert(jobs.map((j) => ({ name: 'noop', ...j })))
    boss.on('error', (e) => console.error(`*** pg-boss producer: ${e.message}`))
    await boss.start()
    await boss.createQueue('noop')
    return {
      async enqueue(n) {
        for (let i = 0; i < n; i += BATCH) await insert(noopBatch(Math.min(BATCH, n - i), () => ({ data: {} })))
      },
      enqueueOne: (payload) => boss.send('noop', payload),
      close: () => boss.stop({ graceful: false }),
    }
  },
  oneBy: '`send`',
  workerSetup: (schema) => ({ system: 'pgboss', databaseUrl: DATABASE_URL, schema }),
  ...inSchemas,
}

/** Ours on `type` ('postgres' | 'sqlite'): providerConfig for a fresh schema / file. */
function oursOn(type) {
  const config = (where, extra = {}) => ({ ...(type === 'postgres' ? { type, databaseUrl: DATABASE_URL, schema: where } : { type, databaseUrl: where }), ...extra })
  return {
    key: `ours-${type}`,
    label: () => `@chaaskit/queue ${require('../package.json').version} (${type} provider)`,
    how: '`enqueueBulk` × 1,000, then `Worker` at `concurrency: 24`',
    config,
    async prepare(where, extra) {
      const q = require('../index.js')
      const provider = await q.createQueueProvider(config(where, extra))
      return {
        provider,
        async enqueue(n, payload = {}, batch = BATCH) {
          for (let i = 0; i < n; i += batch) await provider.enqueueBulk(noopBatch(Math.min(batch, n - i), () => ({ type: 'noop', payload })))
        },
        enqueueOne: (payload) => provider.enqueue('noop', payload),
        close: () => provider.close(),
      }
    },
    oneBy: '`enqueue`',
    workerSetup: (where, extra) => ({ system: 'ours', provider: config(where, extra) }),
    ...(type === 'postgres' ? inSchemas : inFiles),
  }
}
const oursPg = oursOn('postgres')
const oursSqlite = oursOn('sqlite')

/** null when this build has a `type` provider that reaches its database, else why not. */
async function oursMissing(type) {
  let q
  try {
    q = require('../index.js')
  } catch (e) {
    return `the addon is not built (${e.message.split('\n')[0]}); run npm run build`
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-bench-probe-'))
  const schema = freshSchema('probe')
  try {
    const p = await q.createQueueProvider(type === 'postgres' ? oursPg.config(schema) : oursSqlite.config(`sqlite:${path.join(dir, 'probe.db')}`))
    await p.close()
    return null
  } catch (e) {
    if (/Unknown queue provider type/.test(e.message)) return `this build has no '${type}' provider yet`
    throw e
  } finally {
    if (type === 'postgres') await dropSchema(schema)
    rmTemp(dir)
  }
}

/** Enqueue N jobs (timed) into a fresh schema/file, then drain them in one worker process. */
async function enqueueThenDrain(sys, where, cleanup) {
  try {
    // ENQ_ROUNDS timed enqueues of N, each into a fresh place by a fresh producer; the last
    // round's jobs are the ones drained. One round of 20,000 lasts under a second, so a single
    // one is at the mercy of whatever the machine did in that second.
    const rates = []
    let rows = null
    for (let r = 0; r < ENQ_ROUNDS; r++) {
      const last = r === ENQ_ROUNDS - 1
      const place = last ? where : sys.sibling(where, r)
      try {
        rates.push(await enqueueRound(sys, place))
        if (last && sys === oursPg) rows = await dumpJobsTable(where)
      } finally {
        if (!last) await sys.discard(place)
      }
    }
    await quiesce()
    const drainS = await drainInChild(sys.workerSetup(where))
    return { enqueue: median(rates), rates, processed: N / drainS, rows }
  } finally {
    await cleanup()
  }
}

/**
 * jobs/s of one timed bulk enqueue of N by a fresh producer into `place` (kept), in calls of
 * `batch` jobs (ours only; the peers always take BATCH).
 */
async function enqueueRound(sys, place, batch = BATCH) {
  await quiesce()
  const producer = await sys.prepare(place)
  try {
    // Timed from SETTLE_MS after the producer is made, as in an app that made it at start:
    // each system has made its connections and done its start-up work by then.
    await new Promise((r) => setTimeout(r, SETTLE_MS))
    global.gc?.()
    const t = performance.now()
    await producer.enqueue(N, {}, batch)
    return N / ((performance.now() - t) / 1000)
  } finally {
    await producer.close()
  }
}

/**
 * Let PostgreSQL settle before a timed part: a CHECKPOINT, so that no earlier part's dirty
 * pages are written during it, and no autovacuum worker running (waiting up to 30 s).
 */
async function quiesce() {
  const c = await pgClient()
  try {
    await c.query('checkpoint').catch((e) => console.error(`*** postgres bench: CHECKPOINT failed (${e.message}); timing without it`))
    for (const until = Date.now() + 30_000; Date.now() < until; ) {
      const { n } = (await c.query(`select count(*)::int as n from pg_stat_activity where backend_type = 'autovacuum worker'`)).rows[0]
      if (n === 0) break
      await new Promise((r) => setTimeout(r, 200))
    }
  } finally {
    await c.end()
  }
}

// ---- the machine's cap: a bare COPY ------------------------------------------------------------

/**
 * The table of our schema holding the jobs just enqueued (the one with N rows), and those rows as
 * COPY text, so the cap is measured on exactly our table shape and row contents. (LIKE … INCLUDING
 * ALL copies columns, defaults, identity, constraints and indexes, not triggers: the clone has
 * no NOTIFY trigger, which fires once per statement anyway.)
 */
async function dumpJobsTable(schema) {
  const c = await pgClient()
  try {
    const tables = await c.query(`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('r', 'p')`, [schema])
    for (const { relname } of tables.rows) {
      const count = (await c.query(`select count(*)::int as n from "${schema}"."${relname}"`)).rows[0].n
      if (count !== N) continue
      // Every column but those the database generates (an identity "seq"), as an INSERT gives them.
      const attrs = await c.query(
        `select attname from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped and attidentity = '' and attgenerated = '' order by attnum`,
        [`"${schema}"."${relname}"`],
      )
      const cols = `(${attrs.rows.map((r) => `"${r.attname}"`).join(', ')})`
      const { to } = require('pg-copy-streams')
      const chunks = []
      await pipeline(c.query(to(`copy "${schema}"."${relname}" ${cols} to stdout`)), async function* (src) {
        for await (const chunk of src) chunks.push(chunk)
      })
      return { schema, table: relname, cols, data: Buffer.concat(chunks) }
    }
    throw new Error(`no table in schema ${schema} holds the ${N} jobs just enqueued (tables: ${tables.rows.map((r) => r.relname).join(', ')})`)
  } finally {
    await c.end()
  }
}

/** A stand-in for our jobs table while the provider does not exist: the usual columns and index. */
const STAND_IN = `create table "%s".jobs (
  id uuid primary key, type text not null, payload jsonb not null, options jsonb not null,
  status text not null, priority integer not null, attempts integer not null,
  run_at timestamptz not null default now(), created_at timestamptz not null default now(),
  dedup_key text)`
const STAND_IN_INDEX = `create index on "%s".jobs (priority, run_at) where status = 'pending'`

/**
 * The N rows to load by bare `COPY … FROM STDIN`, as statements of `perStatement` rows each:
 * those our enqueueBulk wrote (`source`, COPY text, one row per line), or stand-in rows.
 */
function copyStatements(source, perStatement) {
  let data
  if (source) data = source.data
  else {
    const line = () => `${crypto.randomUUID()}\tnoop\t{}\t{"maxRetries":3,"timeout":30000,"priority":0}\tpending\t0\t0\n`
    data = Buffer.from(Array.from({ length: N }, line).join(''))
  }
  const statements = []
  for (let at = 0, rows = 0, from = 0; at < data.length; at++) {
    if (data[at] === 0x0a && (++rows === perStatement || at === data.length - 1)) {
      statements.push(data.subarray(from, at + 1))
      from = at + 1
      rows = 0
    }
  }
  return statements
}

/**
 * rows/s of `statements` (each its own transaction) loaded by client `c` into an empty clone of
 * our jobs table (LIKE … INCLUDING ALL: the same columns, defaults, constraints and indexes), or
 * into a stand-in.
 */
async function copyRound(c, source, statements) {
  const { from } = require('pg-copy-streams')
  const cols = source ? ` ${source.cols}` : ' (id, type, payload, options, status, priority, attempts)'
  const schema = freshSchema('copy')
  try {
    await c.query(`create schema "${schema}"`)
    if (source) await c.query(`create table "${schema}".jobs (like "${source.schema}"."${source.table}" including all)`)
    else {
      await c.query(STAND_IN.replace('%s', schema))
      await c.query(STAND_IN_INDEX.replace('%s', schema))
    }
    await quiesce()
    global.gc?.()
    const t = performance.now()
    for (const chunk of statements) await pipeline(Readable.from([chunk]), c.query(from(`copy "${schema}".jobs${cols} from stdin`)))
    const s = (performance.now() - t) / 1000
    const n = (await c.query(`select count(*)::int as n from "${schema}".jobs`)).rows[0].n
    if (n !== N) throw new Error(`COPY loaded ${n} rows, expected ${N}`)
    return N / s
  } finally {
    await c.query(`drop schema if exists "${schema}" cascade`).catch(() => {})
  }
}

// ---- latency ---------------------------------------------------------------------------------------

/**
 * Enqueue one job at a time at LATENCY_RATE/s into a started worker process. Returns, sorted, the
 * ms from the enqueue call to handler start (`lat`) and from the enqueue's promise resolving
 * (the commit acknowledged to the producer) to handler start (`wake`).
 */
async function latency(sys, where, enqueueOne) {
  const w = await workerProcess({ ...sys.workerSetup(where), mode: 'latency', concurrency: CONCURRENCY })
  try {
    // As every timed part: no earlier part's dirty pages written, nor an autovacuum, meanwhile.
    await quiesce()
    w.send('go')
    if ((await w.next()) !== 'started') throw new Error('worker process: expected started')
    const errors = []
    const called = []
    const committed = []
    const r = await pace(LATENCY_RATE, LATENCY_MS, () => {
      const k = called.length
      called.push(hostNow())
      enqueueOne({ t: called[k], k }).then(
        () => (committed[k] = hostNow()),
        (e) => errors.push(e),
      )
    })
    // Let the last jobs land (up to 10 s), then collect.
    for (const give = Date.now() + 10_000; Date.now() < give; ) {
      w.send('count')
      if ((await w.next()).handled >= r.sent) break
      await new Promise((res) => setTimeout(res, 20))
    }
    if (errors.length) throw errors[0]
    w.send('finish')
    const { starts } = await w.next()
    const lat = starts.map(([k, at]) => at - called[k]).sort((a, b) => a - b)
    const wake = starts.filter(([k]) => committed[k] !== undefined).map(([k, at]) => at - committed[k]).sort((a, b) => a - b)
    const enq = []
    committed.forEach((at, k) => enq.push(at - called[k])) // forEach skips the unresolved
    enq.sort((a, b) => a - b)
    return { lat, wake, enq, sent: r.sent, seconds: r.seconds }
  } finally {
    await w.close()
  }
}

/**
 * The machine's floor under any enqueue's latency: single-row INSERTs of a bare table (no index
 * but its key, no trigger), one per call through node-postgres, at the same rate and for as long;
 * each commit waits for the disk as an enqueue's does. Sorted ms from call to resolved.
 */
async function bareInsertLatency() {
  const { Pool } = require('pg')
  const pool = new Pool({ connectionString: DATABASE_URL, max: 10 })
  const table = `"${freshSchema('bare_insert')}"`
  try {
    await pool.query(`CREATE TABLE ${table} (id BIGSERIAL PRIMARY KEY, payload JSON NOT NULL)`)
    await quiesce()
    const took = []
    const pending = []
    await pace(LATENCY_RATE, LATENCY_MS, () => {
      const t = performance.now()
      pending.push(pool.query(`INSERT INTO ${table} (payload) VALUES ($1)`, [JSON.stringify({ t })]).then(() => took.push(performance.now() - t)))
    })
    await Promise.all(pending)
    return took.sort((a, b) => a - b)
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${table}`)
    await pool.end()
  }
}

// ---- claim throughput -------------------------------------------------------------------------------

/**
 * Claims/s of `receive(CLAIM_BATCH, 0)` at each depth in `depths` (a fresh schema each): after
 * one warm-up round, CLAIM_ROUNDS rounds in which every depth takes a timed turn of CLAIM_ROUND
 * claims, one after the other, so each ratio between depths compares figures taken seconds
 * apart. Before each round PostgreSQL is quiesced (no autovacuum worker running: loading 1M rows
 * sets one off, and on 2 cores it takes one of them). Between turns (untimed) the claimed jobs
 * are acknowledged and as many new ones enqueued, so every turn sees the same depth.
 * Returns per depth its rates, in round order.
 */
async function claimRates(depths) {
  const q = require('../index.js')
  const places = []
  try {
    for (const queued of depths) {
      const schema = freshSchema('claim')
      const p = await q.createQueueProvider(oursPg.config(schema))
      places.push({ queued, schema, p, rates: [] })
      const fill = async (n) => {
        for (let i = 0; i < n; i += 10000) await p.enqueueBulk(noopBatch(Math.min(10000, n - i), () => ({ type: 'noop', payload: {} })))
      }
      places.at(-1).fill = fill
      await fill(queued)
    }
    for (let round = 0; round <= CLAIM_ROUNDS; round++) {
      await quiesce()
      for (const place of places) {
        const { p, queued } = place
        global.gc?.()
        const got = []
        const t = performance.now()
        while (got.length < CLAIM_ROUND) {
          const jobs = await p.receive(Math.min(CLAIM_BATCH, CLAIM_ROUND - got.length), 0)
          if (jobs.length === 0) throw new Error(`receive returned nothing after ${got.length} claims with ${queued} queued`)
          got.push(...jobs)
        }
        if (round > 0) place.rates.push(CLAIM_ROUND / ((performance.now() - t) / 1000))
        await Promise.all(got.map((j) => p.acknowledge(j.receiptHandle)))
        await place.fill(CLAIM_ROUND)
      }
    }
    return places.map((x) => x.rates)
  } finally {
    for (const { p, schema } of places) {
      await p.close().catch(() => {})
      await dropSchema(schema)
    }
  }
}

// ---- retention ------------------------------------------------------------------------------------

/**
 * RETENTION_RATE jobs/s (bulks of 100 every 100 ms) for RETENTION_S through one worker process,
 * completed jobs kept RETENTION_KEEP_MS; every RETENTION_SAMPLE_S the jobs table's rows and total
 * size (heap + indexes + TOAST).
 */
async function retention() {
  const schema = freshSchema('retention')
  const extra = { retention: { completed: RETENTION_KEEP_MS } }
  const samples = []
  try {
    const producer = await oursPg.prepare(schema, extra)
    const w = await workerProcess({ ...oursPg.workerSetup(schema, extra), mode: 'latency', concurrency: CONCURRENCY })
    const c = await pgClient()
    try {
      w.send('go')
      if ((await w.next()) !== 'started') throw new Error('worker process: expected started')
      const t0 = performance.now()
      let table = null
      const sample = async () => {
        table ??= (await c.query(`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind = 'r' order by c.relname`, [schema])).rows.map((r) => r.relname).find((t) => /job/i.test(t))
        const rel = `"${schema}"."${table}"`
        const r = await c.query(`select count(*)::int as n, pg_total_relation_size($1::regclass)::int8 as bytes from ${rel}`, [rel])
        const st = await c.query(`select n_dead_tup::int8 as dead, (vacuum_count + autovacuum_count)::int as vacuums from pg_stat_user_tables where relid = $1::regclass`, [rel])
        samples.push({ s: (performance.now() - t0) / 1000, rows: r.rows[0].n, bytes: Number(r.rows[0].bytes), dead: Number(st.rows[0]?.dead ?? NaN), vacuums: st.rows[0]?.vacuums ?? NaN })
      }
      let nextSample = RETENTION_SAMPLE_S
      const bulk = RETENTION_RATE / 10
      for (let i = 0; ; i++) {
        const due = t0 + i * 100
        const now = performance.now()
        if (now < due) await new Promise((r) => setTimeout(r, due - now))
        if ((performance.now() - t0) / 1000 >= RETENTION_S) break
        await producer.enqueue(bulk, { t: hostNow() })
        if ((performance.now() - t0) / 1000 >= nextSample) {
          await sample()
          nextSample += RETENTION_SAMPLE_S
        }
      }
      if (performance.now() - t0 > (nextSample - RETENTION_SAMPLE_S + 1) * 1000) await sample() // the end, unless just sampled
      w.send('finish')
      await w.next()
    } finally {
      await c.end()
      await w.close()
      await producer.close()
    }
    return samples
  } finally {
    await dropSchema(schema)
  }
}

// ---- run ------------------------------------------------------------------------------------------

/** Every section; `later` collects schemas to drop once all are done. */
async function measureAll(later) {
  const rows = []
  const table = []
  const skip = (what, why) => {
    console.error(`*** postgres bench: ${what} skipped: ${why}`)
    rows.push({ name: `${what} (skipped: ${why})`, value: '—', unit: '', target: '' })
  }
  const c = await pgClient().catch((e) => {
    throw new Error(`the postgres bench needs PostgreSQL at ${DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}: ${e.message}`)
  })
  const pgVersion = (await c.query('show server_version')).rows[0].server_version
  await c.end()
  const oursPgWhy = await oursMissing('postgres')
  const oursSqliteWhy = await oursMissing('sqlite')

  let source = null
  const results = new Map()
  if (section('drain')) {
    const only = process.env.BENCH_PG_SYSTEMS ? process.env.BENCH_PG_SYSTEMS.split(',') : null
    const systems = [graphile, pgboss]
    if (oursPgWhy === null) systems.push(oursPg)
    if (only) systems.splice(0, systems.length, ...systems.filter((s) => only.includes(s.key)))
    for (const sys of systems) {
      const runs = []
      for (let i = 0; i < RUNS; i++) {
        const schema = freshSchema(sys.key.replace('-', '_'))
        // Our schema stays until the COPY cap has cloned its jobs table.
        const cleanup = sys === oursPg ? async () => later.push(schema) : () => dropSchema(schema)
        const r = await enqueueThenDrain(sys, schema, cleanup)
        if (r.rows) source = r.rows
        runs.push(r)
        console.error(`  ${sys.label()}: ${fmt(r.enqueue)} enqueued/s (rounds: ${r.rates.map(fmt).join(', ')}), ${fmt(r.processed)} processed/s`)
      }
      const res = { enqueue: median(runs.map((r) => r.enqueue)), processed: median(runs.map((r) => r.processed)) }
      results.set(sys, res)
      const how = RUNS > 1 ? `, median of ${RUNS}` : ''
      const rounds = `, median of ${ENQ_ROUNDS * RUNS} rounds (${runs.flatMap((r) => r.rates).map(fmt).join(', ')})`
      rows.push({ name: `postgres: bulk enqueue, ${fmt(N)} no-op jobs in batches of ${fmt(BATCH)}${rounds}: ${sys.label()} (${sys.how})`, value: fmt(res.enqueue), unit: 'jobs/s', target: '' })
      rows.push({ name: `postgres: one worker process, concurrency ${CONCURRENCY}, end-to-end until all ${fmt(N)} done${how}: ${sys.label()}`, value: fmt(res.processed), unit: 'jobs/s', target: '' })
      table.push([sys.label(), sys.how, fmt(res.enqueue), fmt(res.processed)])
    }
    if (oursPgWhy !== null) skip('postgres: @chaaskit/queue (postgres provider)', oursPgWhy)
    const o = results.get(oursPg)
    if (o && results.has(graphile) && results.has(pgboss)) {
      const gw = results.get(graphile)
      const bestPeer = Math.max(results.get(graphile).enqueue, results.get(pgboss).enqueue)
      rows.push({ name: 'postgres: end-to-end, ours / graphile-worker (same run)', value: ratio(o.processed, gw.processed), unit: '', target: '≥ 3×' })
      rows.push({ name: 'postgres: bulk enqueue, ours / the better peer (same run)', value: ratio(o.enqueue, bestPeer), unit: '', target: '≥ 2×, or within 20% of the COPY cap' })
    }
  }

  if (section('copy')) {
    // Rounds alternating ours (when the drain gave our rows), a one-statement COPY and a COPY in
    // the benchmark's shape, so that each ratio compares figures taken seconds apart: this
    // machine's speed drifts by a third within minutes, more than the ratios' margins.
    const on = source ? `our jobs table (${source.table}, LIKE … INCLUDING ALL, the rows our enqueueBulk wrote)` : 'a stand-in jobs table (our provider is absent)'
    const paired = source !== null && results.has(oursPg)
    const one = copyStatements(source, N)
    const shaped = copyStatements(source, BATCH)
    const r = { ours: [], oursOne: [], one: [], shaped: [] }
    const c = await pgClient()
    try {
      for (let i = 0; i < ENQ_ROUNDS; i++) {
        if (paired) {
          const place = freshSchema('paired')
          try {
            r.ours.push(await enqueueRound(oursPg, place))
          } finally {
            await dropSchema(place)
          }
          const whole = freshSchema('paired')
          try {
            r.oursOne.push(await enqueueRound(oursPg, whole, N))
          } finally {
            await dropSchema(whole)
          }
        }
        r.one.push(await copyRound(c, source, one))
        r.shaped.push(await copyRound(c, source, shaped))
      }
    } finally {
      await c.end()
    }
    const list = (xs) => xs.map(fmt).join(', ')
    rows.push({ name: `postgres: bare COPY of ${fmt(N)} rows in one statement into ${on}, median of ${ENQ_ROUNDS} (${list(r.one)}): the machine's cap`, value: fmt(median(r.one)), unit: 'rows/s', target: '' })
    table.push(['bare `COPY … FROM STDIN` (cap)', `${fmt(N)} rows, one statement`, fmt(median(r.one)), '—'])
    rows.push({ name: `postgres: bare COPY of the same ${fmt(N)} rows, ${fmt(BATCH)} per statement (a commit each), median of ${ENQ_ROUNDS} (${list(r.shaped)})`, value: fmt(median(r.shaped)), unit: 'rows/s', target: '' })
    table.push(['bare `COPY … FROM STDIN`', `${fmt(BATCH)} rows per statement`, fmt(median(r.shaped)), '—'])
    if (paired) {
      const pct = (xs) => `${(median(xs) * 100).toFixed(0)}% (rounds: ${xs.map((x) => `${(x * 100).toFixed(0)}%`).join(', ')})`
      rows.push({ name: `postgres: bulk enqueue, ours, in rounds alternating with those COPYs (${list(r.ours)})`, value: fmt(median(r.ours)), unit: 'jobs/s', target: '' })
      rows.push({ name: 'postgres: bulk enqueue, ours / the COPY cap, median of the rounds\' ratios', value: pct(r.ours.map((x, i) => x / r.one[i])), unit: '', target: '≥ 80% when the cap is below 2× the better peer' })
      rows.push({ name: `postgres: bulk enqueue, ours / bare COPY ${fmt(BATCH)} rows per statement, median of the rounds' ratios`, value: pct(r.ours.map((x, i) => x / r.shaped[i])), unit: '', target: '' })
      // The cap's own shape: all N jobs in one enqueueBulk, which is one COPY and one commit.
      rows.push({ name: `postgres: bulk enqueue, ours, one enqueueBulk of ${fmt(N)} jobs, same rounds (${list(r.oursOne)})`, value: fmt(median(r.oursOne)), unit: 'jobs/s', target: '' })
      table.push([oursPg.label(), `one \`enqueueBulk\` of ${fmt(N)}`, fmt(median(r.oursOne)), '—'])
      rows.push({ name: `postgres: bulk enqueue, ours in one enqueueBulk of ${fmt(N)} / the COPY cap (one statement each), median of the rounds' ratios`, value: pct(r.oursOne.map((x, i) => x / r.one[i])), unit: '', target: '≥ 80% when the cap is below 2× the better peer' })
    }
  }

  if (section('latency')) {
    const targets = [[graphile, null]]
    if (oursPgWhy === null) targets.push([oursPg, '≤ 2 / ≤ 10 / —'])
    else skip('postgres: enqueue → handler-start latency, ours', oursPgWhy)
    for (const [sys, target] of targets) {
      const schema = freshSchema(`lat_${sys.key.replace('-', '_')}`)
      try {
        const producer = await sys.prepare(schema)
        let r
        try {
          r = await latency(sys, schema, producer.enqueueOne)
        } finally {
          await producer.close()
        }
        const pcts = (xs) => (xs.length ? `${percentile(xs, 50).toFixed(2)} / ${percentile(xs, 99).toFixed(2)} / ${xs[xs.length - 1].toFixed(2)}` : 'no job handled')
        const offered = `${fmt(r.sent / r.seconds)} jobs/s offered for ${r.seconds.toFixed(1)} s, one ${sys.oneBy} each, ${fmt(r.lat.length)}/${fmt(r.sent)} handled`
        const tail = `one worker process at concurrency ${CONCURRENCY}, p50 / p99 / max: ${sys.label()}`
        rows.push({ name: `postgres: enqueue call → handler start, ${offered}, ${tail}`, value: pcts(r.lat), unit: 'ms', target: target || '' })
        rows.push({ name: `postgres: of which enqueue call → its promise resolved (the commit, seen by the producer), ${tail}`, value: pcts(r.enq), unit: 'ms', target: '' })
        rows.push({ name: `postgres: of which enqueue resolved → handler start (the wake-up), ${tail}`, value: pcts(r.wake), unit: 'ms', target: '' })
      } finally {
        await dropSchema(schema)
      }
    }
  }

  if (section('latency')) {
    const took = await bareInsertLatency()
    const pcts = `${percentile(took, 50).toFixed(2)} / ${percentile(took, 99).toFixed(2)} / ${took[took.length - 1].toFixed(2)}`
    rows.push({ name: `postgres: the machine's commit floor, a bare single-row INSERT per call (node-postgres, no index but the key, no trigger), ${fmt(LATENCY_RATE)} calls/s for ${(LATENCY_MS / 1000).toFixed(1)} s, call → resolved, p50 / p99 / max`, value: pcts, unit: 'ms', target: '' })
  }

  if (section('idle')) {
    for (const [sys, why] of [[oursPg, oursPgWhy], [oursSqlite, oursSqliteWhy]]) {
      const kind = sys === oursPg ? 'postgres' : 'sqlite'
      if (why !== null) {
        skip(`${kind}: idle worker CPU`, why)
        continue
      }
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-bench-idle-'))
      const where = sys === oursPg ? freshSchema('idle') : `sqlite:${path.join(dir, 'queue.db')}`
      try {
        // Default worker settings, as the memory provider's idle figure (bench/worker.js).
        const w = await workerProcess({ ...sys.workerSetup(where), mode: 'idle' })
        w.send('go')
        const r = await w.next()
        await w.close()
        if (r.handled !== 0) throw new Error(`idle CPU: the worker handled ${r.handled} jobs on an empty queue`)
        rows.push({ name: `${kind}: idle worker CPU, empty queue, default worker settings, 5 s after 1 s settling (whole worker process)`, value: r.cpu.toFixed(3), unit: '% of one core', target: '< 1' })
      } finally {
        if (sys === oursPg) await dropSchema(where)
        rmTemp(dir)
      }
    }
  }

  if (section('sqlite')) {
    if (oursSqliteWhy !== null) skip('sqlite: end-to-end, ours', oursSqliteWhy)
    else {
      // SQLITE_RUNS drains, each of a fresh file: one drain lasts about a second, and single
      // drains of one build spread from 12,000 to 24,000 jobs/s here within minutes.
      const runs = []
      for (let i = 0; i < SQLITE_RUNS; i++) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-bench-sqlite-'))
        const url = `sqlite:${path.join(dir, 'queue.db')}`
        runs.push(await enqueueThenDrain(oursSqlite, url, async () => rmTemp(dir)))
      }
      const r = { enqueue: median(runs.map((x) => x.enqueue)), processed: median(runs.map((x) => x.processed)) }
      const each = (k) => `median of ${SQLITE_RUNS} (${runs.map((x) => fmt(x[k])).join(', ')})`
      rows.push({ name: `sqlite: bulk enqueue, ${fmt(N)} no-op jobs in batches of ${fmt(BATCH)}, ${each('enqueue')}: ${oursSqlite.label()}`, value: fmt(r.enqueue), unit: 'jobs/s', target: '' })
      rows.push({ name: `sqlite: one worker process, concurrency ${CONCURRENCY}, end-to-end until all ${fmt(N)} done, ${each('processed')}: ${oursSqlite.label()}`, value: fmt(r.processed), unit: 'jobs/s', target: '≥ 20,000' })
      table.push([oursSqlite.label(), oursSqlite.how, fmt(r.enqueue), fmt(r.processed)])
    }
  }

  if (section('claim')) {
    if (oursPgWhy !== null) skip('postgres: claim throughput 1M vs 10k queued', oursPgWhy)
    else {
      const [small, big] = await claimRates([SMALL, BIG])
      const how = `rounds of ${fmt(CLAIM_ROUND)} claims by receive(${CLAIM_BATCH}, 0), both depths in each round, autovacuum idle at its start, depth restored between rounds, median of ${CLAIM_ROUNDS}`
      for (const [n, r] of [[SMALL, small], [BIG, big]]) {
        rows.push({ name: `postgres: claim throughput, ${how} (${r.map(fmt).join(', ')}), ${fmt(n)} jobs queued`, value: fmt(median(r)), unit: 'claims/s', target: '' })
      }
      const ratios = big.map((b, i) => b / small[i])
      rows.push({ name: `postgres: claim throughput, ${fmt(BIG)} queued / ${fmt(SMALL)} queued, median of the rounds' ratios (${ratios.map((x) => x.toFixed(2)).join(', ')})`, value: median(ratios).toFixed(2), unit: '', target: '≥ 0.80' })
    }
  }

  if (section('retention')) {
    if (oursPgWhy !== null) skip('postgres: table size under sustained load', oursPgWhy)
    else {
      const samples = await retention()
      const c = await pgClient()
      const autovacuum = (await c.query('show autovacuum')).rows[0].autovacuum
      await c.end()
      const mb = (b) => (b / 1048576).toFixed(1)
      const at = samples.map((x) => `${x.s.toFixed(0)} s: ${fmt(x.rows)} rows, ${mb(x.bytes)} MB, ${fmt(x.dead)} dead, ${x.vacuums} vacuums`).join('; ')
      // Bounded: the last third of the run peaks no higher than the middle third (the first
      // third is the table filling up before the first purge and the first autovacuum).
      const third = (k) => samples.filter((x) => x.s > (k * RETENTION_S) / 3 && x.s <= ((k + 1) * RETENTION_S) / 3 + 1)
      const peak = (xs) => Math.max(...xs.map((x) => x.bytes))
      rows.push({
        name: `postgres: jobs table under ${fmt(RETENTION_RATE)} jobs/s offered for ${RETENTION_S} s, one worker process, completed kept ${RETENTION_KEEP_MS / 1000} s (purged every 60 s), server autovacuum = ${autovacuum}: rows, total size (heap + indexes), dead tuples and vacuums so far, every ${RETENTION_SAMPLE_S} s`,
        value: at,
        unit: '',
        target: 'bounded',
      })
      rows.push({ name: 'postgres: jobs table, peak total size in the last third of that run / peak in the middle third', value: (peak(third(2)) / peak(third(1))).toFixed(2), unit: '', target: '≤ 1.1 (bounded)' })
    }
  }

  if (table.length) console.log(`\nDatabase-backed queues, side by side (PostgreSQL ${pgVersion} on 127.0.0.1, ${os.cpus().length} cores; ${fmt(N)} no-op jobs; one worker process at concurrency ${CONCURRENCY}):\n`)
  if (table.length) {
    console.log('| system | how | enqueue jobs/s | processed jobs/s (end-to-end) |')
    console.log('| --- | --- | --- | --- |')
    for (const r of table) console.log(`| ${r.join(' | ')} |`)
  }
  return rows
}

async function run() {
  const later = [] // schemas kept for a later section, dropped at the end
  try {
    return await measureAll(later)
  } finally {
    for (const schema of later) await dropSchema(schema)
  }
}

module.exports = { run }

if (require.main === module) require('./rows.js').runStandalone(run)
