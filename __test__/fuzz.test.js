// Fuzz from JavaScript (issue 10): every exported function and every method of the memory
// provider, the Worker and the Scheduler (on a temp SQLite file), called with random values of
// every kind for every argument, from a seeded PRNG (FUZZ_SEED, FUZZ_CALLS to change). Each
// call must end in a result, or in a TypeError/RangeError whose message names the argument, or
// in one of the package's documented plain errors; never a crash, a hang, or a "Panic".
'use strict'

process.env.CHAASKIT_QUEUE_LOG = 'off'
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-fuzz-'))
// Relative paths (loadJobHandlers, a default scheduler database) land in the temp directory.
process.chdir(TMP)
process.env.DATABASE_URL = `sqlite:${path.join(TMP, 'default.db')}?mode=rwc`
const q = require('..')

const SEED = Number(process.env.FUZZ_SEED || 20261201)
const CALLS = Number(process.env.FUZZ_CALLS || 4000)
/** A call that must settle (anything but a waiting receive or a running worker) gets this long. */
const SETTLE_MS = 5000

/** mulberry32: a small seeded PRNG. */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = prng(SEED)
const pick = (xs) => xs[Math.floor(rand() * xs.length)]
const chance = (p) => rand() < p

/** Thrown by the fuzz's own traps (getters, Proxies): the caller's exception, passed through. */
class FuzzTrap extends Error {}

const throwingProxy = () =>
  new Proxy(
    {},
    {
      get() {
        throw new FuzzTrap('proxy get')
      },
      has() {
        throw new FuzzTrap('proxy has')
      },
      ownKeys() {
        throw new FuzzTrap('proxy ownKeys')
      },
      getOwnPropertyDescriptor() {
        throw new FuzzTrap('proxy getOwnPropertyDescriptor')
      },
      getPrototypeOf() {
        throw new FuzzTrap('proxy getPrototypeOf')
      },
    },
  )

const LONG = 'x'.repeat(200000)
const NUMBERS = [0, -0, 1, -1, 0.5, 1.5, 5, 100, 1000, 43200, 43201, 1023, 1024, 1048577, NaN, Infinity, -Infinity, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, 8.64e15, 8.64e15 + 1, Number.MIN_VALUE, -(2 ** 31)]
const STRINGS = ['', ' ', 'a', 'email:send', 'ééé 9 * * *', '每天 9 点 * *', '😀😀', '\u0000', '\ud800', LONG, '0 9 * * *', '*/5 * * * *', '1/4294967295 * * * *', 'every 1 hour', 'every 0 seconds', '@daily', 'Europe/Paris', 'Not/AZone', 'memory', 'sqs', 'kafka', 'in-process', 'standalone', 'nope:1', '00000000-0000-8000-8000-000000000000', 'not a url', 'ftp://x', 'http://', 'sqlite:', 'mysql://u:pw@h/db', '2026-01-01T00:00:00Z', 'garbage date', '__proto__', 'constructor', 'true']

let namedFn = function named() {}
/** Any JavaScript value, of every kind. */
function anyValue(depth = 0) {
  switch (Math.floor(rand() * 16)) {
    case 0:
      return undefined
    case 1:
      return null
    case 2:
      return chance(0.5)
    case 3:
    case 4:
      return pick(NUMBERS)
    case 5:
      return chance(0.5) ? pick([0n, 1n, -1n, 2n ** 64n]) : Math.floor(rand() * 1e6) - 1000
    case 6:
    case 7:
      return pick(STRINGS)
    case 8:
      return chance(0.5) ? Symbol('fuzz') : Symbol.iterator
    case 9:
      return pick([() => 1, namedFn, async () => 2, class K {}, Math.max])
    case 10:
      return depth > 2 ? [] : Array.from({ length: Math.floor(rand() * 4) }, () => anyValue(depth + 1))
    case 11:
      return depth > 2 ? {} : randomObject(depth + 1)
    case 12:
      return pick([new Date(), new Date(NaN), new Date(8.64e15), new Date(-1)])
    case 13:
      return throwingProxy()
    case 14: {
      const o = {}
      Object.defineProperty(o, pick(['type', 'enabled', 'delay', 'provider', 'name', 'payload', 'config', 'options']), {
        enumerable: true,
        get() {
          throw new FuzzTrap('getter')
        },
      })
      return o
    }
    default: {
      const cyc = { a: 1 }
      cyc.self = cyc
      return pick([cyc, Object.create(null), new Map([[1, 2]]), new Set([1]), new Uint8Array(3), new Error('e'), Promise.resolve(1)])
    }
  }
}

const KEYS = ['type', 'payload', 'options', 'delay', 'scheduledFor', 'maxRetries', 'timeout', 'priority', 'deduplicationKey', 'enabled', 'providerConfig', 'worker', 'scheduler', 'maxHistorySize', 'region', 'queueUrl', 'visibilityTimeout', 'maxMessageBytes', 'mode', 'concurrency', 'pollInterval', 'shutdownTimeout', 'databaseUrl', 'autoMigrate', 'name', 'schedule', 'timezone', 'provider', 'config', 'unknownKey']
function randomObject(depth) {
  const o = {}
  for (let i = Math.floor(rand() * 5); i > 0; i--) o[pick(KEYS)] = chance(0.6) ? plausible(depth) : anyValue(depth + 1)
  return o
}

/** A value of a kind the argument might take, so calls reach past the first check. */
function plausible(depth = 0) {
  return pick([
    () => pick(STRINGS.filter((s) => s !== LONG)),
    () => pick(NUMBERS),
    () => chance(0.5),
    () => (depth > 2 ? {} : randomObject(depth + 1)),
    () => ({ type: 'memory', maxHistorySize: pick(NUMBERS) }),
    () => ({ type: 'sqs', region: pick(STRINGS), queueUrl: pick(['not a url', 'ftp://x', 'http://', undefined]) }),
    () => ({ enabled: pick([true, false, 'yes']), providerConfig: { type: pick(['memory', 'kafka', 5]) }, worker: { mode: pick(['standalone', 'cluster']), concurrency: pick(NUMBERS) } }),
    () => ({ delay: pick(NUMBERS), priority: pick(NUMBERS), maxRetries: pick(NUMBERS), timeout: pick(NUMBERS), scheduledFor: pick([new Date(Date.now() + 1000), new Date(NaN), 8.64e15 + 1, 'garbage date']) }),
    () => [{ type: pick(['a', '', 5]), payload: anyValue(depth + 1), options: chance(0.5) ? { priority: pick(NUMBERS), deduplicationKey: pick(['k', '']) } : undefined }],
    () => new Date(Date.now() + Math.floor(rand() * 5000)),
  ])()
}

const arg = () => (chance(0.5) ? plausible() : anyValue())

// ---- what counts as a good ending ----------------------------------------------------------

/** Plain errors the package documents (everything else must be a TypeError/RangeError). */
const DOCUMENTED = [
  /^Unknown queue provider type: /,
  /^Unknown receipt handle: /,
  /^Queue provider is closed$/,
  /^No handler registered for job type: /,
  /^Worker not initialized: /,
  /^invalid schedule /i,
  /schedule/i, // the scheduler's own messages for a bad cron, interval or time zone name it
  /time ?zone/i,
]

const calls = { total: 0, ok: 0, rejected: 0, waiting: 0 }
const failures = []

function judge(name, argNames, args, outcome) {
  if (outcome.ok) return
  const e = outcome.error
  const shown = `${name}(${args.map((a) => describeArg(a)).join(', ')})`
  if (e instanceof FuzzTrap) return // the caller's own exception, passed through
  if (!(e instanceof Error)) return failures.push(`${shown}: threw a non-Error ${String(e)}`)
  if (/panic|internal error/i.test(e.message)) return failures.push(`${shown}: ${e.constructor.name}: ${e.message}`)
  if (e instanceof TypeError || e instanceof RangeError) {
    if (argNames.some((n) => e.message.includes(n))) return
    return failures.push(`${shown}: ${e.constructor.name} not naming an argument (${argNames.join(', ')}): ${e.message}`)
  }
  if (e.constructor === Error && DOCUMENTED.some((re) => re.test(e.message))) return
  failures.push(`${shown}: undocumented ${e.constructor.name}: ${e.message}`)
}

function describeArg(a) {
  try {
    if (typeof a === 'string') return JSON.stringify(a.length > 40 ? `${a.slice(0, 40)}…(${a.length})` : a)
    if (typeof a === 'bigint') return `${a}n`
    if (typeof a === 'symbol' || typeof a === 'function') return String(a).slice(0, 40)
    return require('node:util').inspect(a, { depth: 1, breakLength: Infinity }).slice(0, 120)
  } catch {
    return '[uninspectable]'
  }
}

const pending = []

/** Run one call; a promise must settle in SETTLE_MS unless `mayWait`. */
async function call(name, argNames, fn, args, { mayWait = false } = {}) {
  calls.total++
  if (process.env.FUZZ_TRACE) process.stdout.write(`# ${calls.total} ${name}\n`)
  if (typeof argNames === 'function') argNames = argNames(...args)
  let r
  try {
    r = fn(...args)
  } catch (error) {
    calls.rejected++
    return judge(name, argNames, args, { ok: false, error })
  }
  if (!(r instanceof Promise)) return calls.ok++
  const settled = r.then(
    () => ({ ok: true }),
    (error) => ({ ok: false, error }),
  )
  if (mayWait) {
    calls.waiting++
    pending.push(settled.then((o) => judge(name, argNames, args, o)))
    // Let a started worker take its first poll before the next call: a stop() that comes
    // before it is the start/stop race of issue 10 §3 (its own tests are on the sqs branch).
    await new Promise((r) => setTimeout(r, 2))
    return
  }
  let timer
  const o = await Promise.race([settled, new Promise((res) => (timer = setTimeout(() => res({ hung: true }), SETTLE_MS)))])
  clearTimeout(timer)
  if (o.hung) return failures.push(`#${calls.total} ${name}(${args.map(describeArg).join(', ')}): did not settle in ${SETTLE_MS} ms`)
  if (o.ok) calls.ok++
  else calls.rejected++
  judge(name, argNames, args, o)
}

test(`fuzz: every export and method with random arguments (seed ${SEED})`, { timeout: 600_000 }, async () => {
  let provider = await q.createQueueProvider({ type: 'memory' })
  const schedulers = []
  const newScheduler = (config) =>
    new q.Scheduler({ provider, config: { databaseUrl: `sqlite:${path.join(TMP, `s${schedulers.length}.db`)}?mode=rwc`, pollInterval: 50, ...config } })
  let scheduler = newScheduler({})
  schedulers.push(scheduler)
  await scheduler.migrate()
  const workers = []
  const startedSingletons = []
  let worker = new q.Worker({ provider, config: { concurrency: 2, shutdownTimeout: 200 } })
  workers.push(worker)
  const jobIds = []
  const receipts = []
  const remember = async (p) => {
    try {
      const j = await p
      if (j && j.id) jobIds.push(j.id)
      if (Array.isArray(j)) for (const r of j) if (r && r.receiptHandle) receipts.push(r.receiptHandle)
    } catch {}
  }
  const idOr = (v) => (chance(0.5) && jobIds.length ? pick(jobIds) : v)
  const receiptOr = (v) => (chance(0.5) && receipts.length ? pick(receipts) : v)

  const targets = [
    // exported functions
    ['createQueueProvider', ['providerConfig'], () => [arg()], (c) => q.createQueueProvider(c)],
    ['initializeQueueProvider', ['queue'], () => [arg()], (c) => q.initializeQueueProvider(c)],
    ['getQueueProvider', [], () => [], () => q.getQueueProvider()],
    ['closeQueueProvider', [], () => [], () => q.closeQueueProvider()],
    ['resetQueueProvider', [], () => [], () => q.resetQueueProvider()],
    ['getDefaultProviderConfig', [], () => [], () => q.getDefaultProviderConfig()],
    ['registerJobHandler', ['type', 'handler', 'description'], () => [arg(), chance(0.7) ? pick([() => 1, async () => ({ ok: 1 }), () => { throw new FuzzTrap('handler') }]) : anyValue(), arg()], (...a) => q.registerJobHandler(...a)],
    ['getJobHandler', ['type'], () => [arg()], (t) => q.getJobHandler(t)],
    ['hasJobHandler', ['type'], () => [arg()], (t) => q.hasJobHandler(t)],
    ['getRegisteredJobTypes', [], () => [], () => q.getRegisteredJobTypes()],
    ['unregisterJobHandler', ['type'], () => [arg()], (t) => q.unregisterJobHandler(t)],
    ['clearJobHandlers', [], () => [], () => q.clearJobHandlers()],
    ['executeJob', ['job', 'ctx'], () => [arg(), arg()], (j, c) => q.executeJob(j, c)],
    // The message names the path the caller gave (`name`, default `queue`).
    // The name is the errors' path; a NUL in it is written \u0000 (napi throws C strings).
    ['validateQueueConfig', (c, n) => ['queue', 'name', typeof n === 'string' ? n.toWellFormed().replaceAll('\0', '\\u0000') : 'queue'], () => [arg(), chance(0.8) ? undefined : arg()], (c, n) => q.validateQueueConfig(c, n)],
    ['redactUrl', ['url'], () => [arg()], (u) => q.redactUrl(u)],
    ['getWorker', ['options', 'provider', 'worker'], () => [chance(0.5) ? { provider, config: arg() } : arg()], (o) => q.getWorker(o)],
    ['resetWorker', [], () => [], () => q.resetWorker()],
    ['startWorker', ['options', 'provider', 'worker'], () => [chance(0.5) ? { config: { shutdownTimeout: 100, ...randomObject(1) } } : arg()], (o) => startedSingletons.push(q.startWorker(o))],
    ['stopWorker', [], () => [], () => q.stopWorker(), { mayWait: true }],
    ['startScheduler', ['options', 'provider', 'scheduler'], () => [chance(0.5) ? { provider, config: { databaseUrl: process.env.DATABASE_URL, pollInterval: 50 } } : arg()], (o) => q.startScheduler(o)],
    ['stopScheduler', [], () => [], () => q.stopScheduler()],
    ['initializeQueue', ['queue'], () => [chance(0.5) ? { enabled: true, providerConfig: { type: 'memory' }, worker: { mode: pick(['in-process', 'standalone']), shutdownTimeout: 100 }, scheduler: { enabled: chance(0.5), pollInterval: 50 } } : arg()], async (c) => { const r = await q.initializeQueue(c); if (r.worker) startedSingletons.push(r.worker); return r }],
    ['shutdownQueue', [], () => [], () => q.shutdownQueue(), { mayWait: true }],
    ['logger.warn', [], () => [anyValue(), anyValue()], (a, b) => q.logger.warn(a, b)],
    ['getScheduler', ['options', 'provider', 'scheduler'], () => [chance(0.5) ? { provider, config: { databaseUrl: process.env.DATABASE_URL, ...randomObject(1) } } : arg()], (o) => q.getScheduler(o)],
    ['resetScheduler', [], () => [], () => q.resetScheduler()],
    ['loadJobHandlers', ['dir'], () => [arg()], (d) => q.loadJobHandlers(d)],
    ['new Worker', ['options', 'provider', 'worker'], () => [chance(0.7) ? { provider, config: arg() } : arg()], (o) => workers.push(new q.Worker(o))],
    ['new Scheduler', ['options', 'provider', 'scheduler'], () => [chance(0.7) ? { provider, config: { databaseUrl: `sqlite:${path.join(TMP, 'fuzz.db')}?mode=rwc`, ...randomObject(1) } } : arg()], (o) => schedulers.push(new q.Scheduler(o))],
    // the memory provider
    ['provider.enqueue', ['type', 'payload', 'options'], () => [chance(0.6) ? 'a' : arg(), anyValue(), chance(0.3) ? undefined : arg()], (...a) => { const p = provider.enqueue(...a); remember(p); return p }],
    ['provider.enqueueBulk', ['items'], () => [chance(0.5) ? plausible() : arg()], (i) => provider.enqueueBulk(i)],
    ['provider.receive', ['maxMessages', 'waitTimeSeconds'], () => [arg(), chance(0.3) ? 0 : arg()], (m, w) => { const p = provider.receive(m, w); remember(p); return p }, { mayWait: true }],
    ['provider.acknowledge', ['receiptHandle', 'result'], () => [receiptOr(arg()), anyValue()], (r, x) => provider.acknowledge(r, x)],
    ['provider.fail', ['receiptHandle', 'error'], () => [receiptOr(arg()), anyValue()], (r, x) => provider.fail(r, x)],
    ['provider.getJob', ['jobId'], () => [idOr(arg())], (id) => provider.getJob(id)],
    ['provider.getStats', [], () => [], () => provider.getStats()],
    // the worker
    ['worker.start', [], () => [], () => worker.start(), { mayWait: true }],
    // A stop that outlasts SETTLE_MS is judged at the end, when everything must have ended.
    ['worker.stop', [], () => [], () => worker.stop(), { mayWait: true }],
    ['worker.isRunning', [], () => [], () => worker.isRunning()],
    ['worker.getStats', [], () => [], () => worker.getStats()],
    // the scheduler
    ['scheduler.start', [], () => [], () => scheduler.start()],
    ['scheduler.stop', [], () => [], () => scheduler.stop()],
    ['scheduler.isRunning', [], () => [], () => scheduler.isRunning()],
    ['scheduler.migrate', [], () => [], () => scheduler.migrate()],
    ['scheduler.pollOnce', [], () => [], () => scheduler.pollOnce()],
    ['scheduler.schedule', ['type', 'payload', 'date', 'options'], () => [chance(0.6) ? 'a' : arg(), anyValue(), chance(0.5) ? new Date(Date.now() + 100) : arg(), chance(0.5) ? undefined : arg()], (...a) => scheduler.schedule(...a)],
    ['scheduler.getScheduledJob', ['id'], () => [arg()], (id) => scheduler.getScheduledJob(id)],
    ['scheduler.cancelScheduledJob', ['id'], () => [arg()], (id) => scheduler.cancelScheduledJob(id)],
    ['scheduler.registerRecurring', ['input'], () => [chance(0.7) ? { name: pick(['r1', 'r2', '', 5]), type: pick(['a', '', null]), payload: anyValue(), schedule: chance(0.7) ? pick(STRINGS) : anyValue(), timezone: chance(0.5) ? undefined : pick(['UTC', 'Europe/Paris', 'Not/AZone', '每天', 5]), options: chance(0.5) ? undefined : arg() } : arg()], (i) => scheduler.registerRecurring(i)],
    ['scheduler.enableRecurring', ['name'], () => [chance(0.5) ? pick(['r1', 'r2']) : arg()], (n) => scheduler.enableRecurring(n)],
    ['scheduler.disableRecurring', ['name'], () => [chance(0.5) ? pick(['r1', 'r2']) : arg()], (n) => scheduler.disableRecurring(n)],
    ['scheduler.deleteRecurring', ['name'], () => [chance(0.5) ? pick(['r1', 'r2']) : arg()], (n) => scheduler.deleteRecurring(n)],
    ['scheduler.listRecurring', [], () => [], () => scheduler.listRecurring()],
  ]

  for (let i = 0; i < CALLS; i++) {
    const [name, argNames, makeArgs, fn, opts] = targets[i < targets.length ? i : Math.floor(rand() * targets.length)]
    await call(name, argNames, fn, makeArgs(), opts)
    // Now and then: a fresh provider, worker and scheduler (the old ones closed or stopped).
    if (i % 500 === 499) {
      for (const w of workers) await w.stop().catch(() => {})
      await provider.close()
      provider = await q.createQueueProvider({ type: 'memory', maxHistorySize: Math.floor(rand() * 100) })
      worker = new q.Worker({ provider, config: { concurrency: 1 + Math.floor(rand() * 10), shutdownTimeout: 200 } })
      workers.push(worker)
      await scheduler.stop()
      scheduler = newScheduler({})
      schedulers.push(scheduler)
    }
  }

  // Wind down: every waiting receive ends once its provider is closed, every worker once stopped.
  await q.shutdownQueue()
  q.resetWorker()
  for (const w of workers) await w.stop().catch(() => {})
  for (const s of schedulers) await s.stop().catch(() => {})
  q.resetScheduler()
  await provider.close()
  await q.closeQueueProvider()
  // A worker still running once its stop() resolved would keep the process alive: count them,
  // then stop them again so the process can exit and the assertion below can report them.
  await new Promise((r) => setTimeout(r, 200))
  const stillRunning = [...workers, ...startedSingletons].filter((w) => w.isRunning())
  for (const w of stillRunning) await w.stop()
  const leftover = await Promise.race([Promise.all(pending).then(() => 'settled'), new Promise((r) => setTimeout(() => r('hung'), 30_000))])
  console.log(`fuzz: ${calls.total} calls (seed ${SEED}): ${calls.ok} results, ${calls.rejected} refusals, ${calls.waiting} waiting calls (${leftover})`)
  assert.equal(leftover, 'settled', 'waiting receives and workers ended once closed or stopped')
  assert.equal(stillRunning.length, 0, 'every worker whose stop() resolved has stopped (start() then stop() before its first poll)')
  assert.deepEqual(failures.slice(0, 30), [], `${failures.length} bad endings`)
  assert.ok(calls.total >= CALLS)
})
