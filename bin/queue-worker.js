#!/usr/bin/env node
'use strict'
// queue-worker (also installed as chaaskit-worker, the old queue's name): the standalone worker
// of @chaaskit/queue. Run it in the app's root directory (or set CHAASKIT_CONFIG_PATH):
// it loads `.env`, the app config (`config/app.config.ts|js`, TypeScript through tsx), the
// job handlers (`extensions/jobs/*`), then runs the worker and, when enabled, the scheduler
// until SIGINT/SIGTERM. `queue-worker migrate` creates the scheduler's tables. See usage().

const fs = require('node:fs')
const path = require('node:path')
const util = require('node:util')
const { pathToFileURL } = require('node:url')

/** The help text; the defaults it shows are the package's own (validateQueueConfig of an empty block). */
const usage = ({ worker: w, scheduler: s } = require('../index.js').validateQueueConfig({})) => `Usage: queue-worker [start] [options]
       queue-worker migrate [options]
       queue-worker dashboard [--port <n>] [--host <addr>] [options]
       queue-worker help

Runs the @chaaskit/queue worker as its own process (worker.mode 'standalone'), in the app's
root directory. Also installed as chaaskit-worker (the old queue's command).

Commands:
  start (default)   Load .env, the app config and the job handlers, then run the worker (always)
                    and the scheduler (when queue.scheduler.enabled) until SIGINT/SIGTERM.
  migrate           Create the scheduler's tables (ScheduledJob, RecurringJob) if missing, in
                    queue.scheduler.databaseUrl, else DATABASE_URL, else sqlite:.chaaskit/queue.db,
                    and the QueueJob table of a 'postgres' or 'sqlite' providerConfig;
                    then exit. The config file is optional for this command.
  dashboard         Serve the dashboard (createDashboard) of the config's provider, and of its
                    scheduler's recurring jobs when queue.scheduler.enabled, until
                    SIGINT/SIGTERM. It runs no worker and no scheduler polls.
  help              Show this help.

Options:
  --config <path>   App config exporting \`config\` with a \`queue\` block (default:
                    CHAASKIT_CONFIG_PATH, else config/app.config.ts, .mts, .cts, .js, .mjs
                    or .cjs in the working directory or the nearest directory above it).
  --jobs <dir>      Directory of job handler files, each calling registerJobHandler
                    (default: extensions/jobs here, else beside the config's config/ folder;
                    every *.ts/*.js except index.*). None registered: a warning.
  --metrics-port <n>
                    Serve Prometheus /metrics on 127.0.0.1:<n> while the worker runs
                    (worker.metricsPort; 0 picks a free port).
  --port <n>        dashboard: the port (default ${DASHBOARD_PORT}; 0 picks a free port).
  --host <addr>     dashboard: the address to listen on (default 127.0.0.1). Any address other
                    than a loopback one needs QUEUE_DASHBOARD_PASSWORD.
  -h, --help        Show this help.

Environment (a .env file in the working directory is loaded first; variables already set win;
an empty value counts as unset):
  QUEUE_CONCURRENCY=${w.concurrency}           worker.concurrency: jobs run at once
  QUEUE_POLL_INTERVAL=${w.pollInterval}      worker.pollInterval (ms)
  QUEUE_SHUTDOWN_TIMEOUT=${w.shutdownTimeout}  worker.shutdownTimeout (ms): how long a stop waits for running jobs
  SCHEDULER_ENABLED=${s.enabled}       scheduler.enabled: true, false, 1 or 0
  SCHEDULER_POLL_INTERVAL=${s.pollInterval} scheduler.pollInterval (ms)
  CHAASKIT_CONFIG_PATH          the app config file (absolute or from here; extension optional)
  DATABASE_URL                  scheduler database when queue.scheduler.databaseUrl is not set
                                (a PostgreSQL URL's ?schema= names the schema, as for Prisma)
  CHAASKIT_QUEUE_LOG=info       log level of the queue's own log lines (stderr)
  TSX_TSCONFIG_PATH             tsconfig.json for TypeScript files (default: ./tsconfig.json)
  QUEUE_DASHBOARD_PASSWORD      dashboard: ask for this password (HTTP Basic, any user name; at
                                least ${MIN_DASHBOARD_PASSWORD} characters; blank = unset); without it only
                                requests to a loopback Host are served
  AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_SQS
                                the usual AWS SDK variables, for the SQS provider

Signals: SIGINT/SIGTERM stop the scheduler, then the worker (it takes no new jobs and waits up
to shutdownTimeout for running ones, then returns them to the queue), close the provider and
exit 0. A second SIGINT/SIGTERM exits at once (running jobs are abandoned; with SQS they
reappear after their visibility timeout).

Exit codes:
  0    stopped by a signal after a graceful shutdown; migrate or help done
  1    bad configuration (invalid or disabled queue, bad environment value, no config
       found, unreadable config or handler file) or a runtime failure
  2    usage error (unknown command or option, missing option value)
  130  forced exit by a second SIGINT;  143  forced exit by a second SIGTERM
`

/** An error whose message is the whole story: printed without a stack trace. */
class CliError extends Error {
  constructor(message, exitCode = 1) {
    super(message)
    this.exitCode = exitCode
  }
}

const say = (msg) => process.stdout.write(`queue-worker: ${msg}\n`)

// ---- arguments ---------------------------------------------------------------------------

const COMMANDS = ['start', 'migrate', 'dashboard', 'help']
const DASHBOARD_PORT = 3030

/** The command line, parsed by Node's `util.parseArgs`; usage errors exit 2. */
function parseArgs(argv) {
  let parsed
  try {
    parsed = util.parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string' },
        jobs: { type: 'string' },
        'metrics-port': { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (e) {
    // Node's messages: "Unknown option '--bogus'", "Option '--config <value>' argument missing".
    const unknown = /Unknown option '([^']+)'/.exec(e.message)
    if (unknown) throw new CliError(`unknown option ${unknown[1]}`, 2)
    const missing = /Option '(--[a-z-]+)/.exec(e.message)
    if (missing) throw new CliError(`${missing[1]} needs a value`, 2)
    throw new CliError(e.message, 2)
  }
  const { values, positionals } = parsed
  for (const name of ['config', 'jobs', 'metrics-port', 'port', 'host']) {
    if (values[name] !== undefined && (values[name] === '' || values[name].startsWith('-'))) throw new CliError(`--${name} needs a value`, 2)
  }
  const [command = 'start', ...extra] = positionals
  if (!COMMANDS.includes(command)) throw new CliError(`unknown command ${command}`, 2)
  if (extra.length > 0 && !values.help && command !== 'help') throw new CliError(`unexpected argument ${extra[0]}`, 2)
  // The port's range is checked with the rest of the worker config (worker.metricsPort).
  const port = values['metrics-port']
  if (port !== undefined && !/^\d+$/.test(port)) throw new CliError(`--metrics-port must be a port number, got '${port}'`, 2)
  const metricsPort = port === undefined ? null : Number(port)
  const dash = values.port
  if (dash !== undefined && (!/^\d+$/.test(dash) || Number(dash) > 65535)) throw new CliError(`--port must be a port number from 0 to 65535, got '${dash}'`, 2)
  if ((dash !== undefined || values.host !== undefined) && command !== 'dashboard' && !values.help) {
    throw new CliError(`--${dash !== undefined ? 'port' : 'host'} is an option of the dashboard command`, 2)
  }
  const dashboardPort = dash === undefined ? DASHBOARD_PORT : Number(dash)
  return { command: values.help ? 'help' : command, config: values.config ?? null, jobs: values.jobs ?? null, metricsPort, dashboardPort, host: values.host ?? '127.0.0.1' }
}

// ---- .env ----------------------------------------------------------------------------------

/** Load `file` into process.env (Node's own parser) without overriding variables already set. */
function loadDotEnv(file) {
  if (!fs.existsSync(file)) return false
  process.loadEnvFile(file)
  return true
}

// ---- environment overrides -----------------------------------------------------------------

const NUMBER_VARS = [
  ['QUEUE_CONCURRENCY', 'worker', 'concurrency'],
  ['QUEUE_POLL_INTERVAL', 'worker', 'pollInterval'],
  ['QUEUE_SHUTDOWN_TIMEOUT', 'worker', 'shutdownTimeout'],
  ['SCHEDULER_POLL_INTERVAL', 'scheduler', 'pollInterval'],
]

/** The override variables that are set, parsed: [{ name, raw, block, key, value }]. */
function envOverrides() {
  const out = []
  const get = (name) => {
    const raw = process.env[name]
    return raw === undefined || raw.trim() === '' ? undefined : raw
  }
  for (const [name, block, key] of NUMBER_VARS) {
    const raw = get(name)
    if (raw === undefined) continue
    if (!/^\s*-?\d+(\.\d+)?\s*$/.test(raw)) throw new CliError(`${name} must be a number, got ${JSON.stringify(raw)}`)
    out.push({ name, raw, block, key, value: Number(raw) })
  }
  const raw = get('SCHEDULER_ENABLED')
  if (raw !== undefined) {
    const v = raw.trim().toLowerCase()
    if (!['true', 'false', '1', '0'].includes(v)) {
      throw new CliError(`SCHEDULER_ENABLED must be true, false, 1 or 0, got ${JSON.stringify(raw)}`)
    }
    out.push({ name: 'SCHEDULER_ENABLED', raw, block: 'scheduler', key: 'enabled', value: v === 'true' || v === '1' })
  }
  return out
}

// ---- config and handlers ---------------------------------------------------------------------

const CONFIG_NAMES = ['ts', 'mts', 'cts', 'js', 'mjs', 'cjs'].map((ext) => path.join('config', `app.config.${ext}`))

/** Let `import()`/`require()` load TypeScript (tsx; tsconfig.json of the cwd, for `paths`). tsx is
 * an optional peer: without it JavaScript configs load as before and a TypeScript one fails
 * in loadQueueConfig, which then says to install tsx. */
let tsxMissing = false
async function registerTypeScript() {
  try {
    require.resolve('tsx/cjs/api')
  } catch {
    tsxMissing = true
    return
  }
  require('tsx/cjs/api').register()
  const esm = await import('tsx/esm/api')
  esm.register()
}

/** `file`, else `file` + one of the config extensions (CHAASKIT_CONFIG_PATH may leave it off, as the old loader allowed). */
function withExtension(file) {
  if (fs.statSync(file, { throwIfNoEntry: false })?.isFile()) return file
  for (const ext of ['ts', 'js', 'mts', 'mjs', 'cts', 'cjs']) if (fs.existsSync(`${file}.${ext}`)) return `${file}.${ext}`
  return null
}

/**
 * The app config, in the old server's order: `--config`, then CHAASKIT_CONFIG_PATH (absolute or
 * from the working directory), then config/app.config.* in the working directory, then in each
 * directory above it (a monorepo's root, when run from a package inside it).
 */
function findConfig(flag, required) {
  if (flag) {
    const file = path.resolve(flag)
    if (!fs.existsSync(file)) throw new CliError(`config file not found: ${file}`)
    return file
  }
  const fromEnv = (process.env.CHAASKIT_CONFIG_PATH || '').trim()
  if (fromEnv) {
    const file = withExtension(path.resolve(fromEnv))
    if (!file) throw new CliError(`CHAASKIT_CONFIG_PATH=${fromEnv}: no such config file (${path.resolve(fromEnv)}, with or without .ts/.js)`)
    return file
  }
  for (let dir = process.cwd(); ; dir = path.dirname(dir)) {
    for (const name of CONFIG_NAMES) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name)
    if (path.dirname(dir) === dir) break
  }
  if (!required) return null
  throw new CliError(`no app config found in ${process.cwd()} or above it (looked for config/app.config.ts or .js); run the worker in the app's root directory, set CHAASKIT_CONFIG_PATH or pass --config <path>`)
}

/** The app's root directory: the one holding the config's `config/` folder (else the config's own folder). */
function appRoot(configFile) {
  const dir = path.dirname(configFile)
  return path.basename(dir) === 'config' ? path.dirname(dir) : dir
}

/** The `queue` block of the app config in `file` (undefined when it has none). */
async function loadQueueConfig(file) {
  let mod
  try {
    mod = await import(pathToFileURL(file).href)
  } catch (e) {
    const tsx = tsxMissing && /\.[cm]?ts$/.test(file) ? ' (a TypeScript config needs tsx, which is not installed: npm install --save-dev tsx, or write the config in JavaScript)' : ''
    throw new CliError(`cannot load the app config ${file}${tsx}:\n${e && e.stack ? e.stack : e}`)
  }
  // `export const config`, `export default config` or `module.exports = { config }`; a TypeScript
  // file compiled to CommonJS shows up under `default` (twice for its own default export).
  let config
  for (let m = mod, depth = 0; m && typeof m === 'object' && depth < 3 && config === undefined; m = m.default, depth++) {
    if (m.config !== undefined) config = m.config
    else if (depth > 0 && 'queue' in m) config = m
  }
  if (config === undefined || config === null || typeof config !== 'object') {
    throw new CliError(`${file} does not export \`config\` (export const config = { queue: { ... } })`)
  }
  return config.queue
}

function databaseUrlOf(schedulerConfig) {
  return require('../index.js').redactUrl(schedulerConfig.databaseUrl || (process.env.DATABASE_URL || '').trim() || 'sqlite:.chaaskit/queue.db')
}

/** `validateQueueConfig`, with its error pointing at the file and at an env override to blame. */
function validate(queue, raw, overrides, file) {
  try {
    return queue.validateQueueConfig(raw)
  } catch (e) {
    const o = overrides.find((o) => e.message.startsWith(`queue.${o.block}.${o.key} `))
    const from = o ? ` (from ${o.name}=${o.raw})` : ''
    throw new CliError(`invalid queue config${file ? ` in ${path.relative(process.cwd(), file) || file}` : ''}: ${e.message}${from}`)
  }
}

// ---- commands -------------------------------------------------------------------------------

async function migrate(args, overrides) {
  const file = findConfig(args.config, false)
  let schedulerBlock = {}
  let providerBlock = null
  if (file) {
    await registerTypeScript()
    const q = await loadQueueConfig(file)
    if (q && typeof q === 'object' && q.scheduler) schedulerBlock = q.scheduler
    if (q && typeof q === 'object' && ['postgres', 'sqlite'].includes(q.providerConfig?.type)) providerBlock = q.providerConfig
  }
  const queue = require('../index.js')
  const raw = { enabled: false, scheduler: { ...schedulerBlock } }
  for (const o of overrides) if (o.block === 'scheduler') raw.scheduler[o.key] = o.value
  const cfg = validate(queue, raw, overrides, file)
  const provider = await queue.createQueueProvider({ type: 'memory', maxHistorySize: 0 })
  try {
    await new queue.Scheduler({ provider, config: cfg.scheduler }).migrate()
  } catch (e) {
    throw new CliError(`migrate failed for ${databaseUrlOf(cfg.scheduler)}: ${e.message}`)
  } finally {
    await provider.close()
  }
  say(`scheduler tables ready in ${databaseUrlOf(cfg.scheduler)}`)
  if (providerBlock) {
    // The durable providers create their QueueJob table as they start.
    try {
      await (await queue.createQueueProvider({ ...providerBlock, autoMigrate: true })).close()
    } catch (e) {
      throw new CliError(`migrate failed for the ${providerBlock.type} queue: ${e.message}`)
    }
    say(`${providerBlock.type} queue table ready`)
  }
}

async function start(args, overrides) {
  const file = findConfig(args.config, true)
  await registerTypeScript()
  const rawQueue = await loadQueueConfig(file)
  const rel = path.relative(process.cwd(), file) || file
  if (rawQueue === undefined || rawQueue === null) {
    throw new CliError(`the queue is disabled: ${rel} has no \`queue\` block (add queue: { enabled: true, providerConfig: { ... } })`)
  }
  if (typeof rawQueue !== 'object') throw new CliError(`invalid queue config in ${rel}: queue must be an object`)
  if (rawQueue.enabled !== true) {
    throw new CliError(`the queue is disabled: queue.enabled is ${rawQueue.enabled === undefined ? 'missing' : JSON.stringify(rawQueue.enabled)} in ${rel}; set queue.enabled: true to run a worker`)
  }
  const raw = { ...rawQueue, worker: { ...rawQueue.worker }, scheduler: { ...rawQueue.scheduler } }
  for (const o of overrides) raw[o.block][o.key] = o.value
  const queue = require('../index.js')
  const cfg = validate(queue, raw, overrides, file)

  // The handlers: --jobs, else extensions/jobs of the working directory, else of the app the config belongs to.
  const jobsDir = args.jobs
    ? path.resolve(args.jobs)
    : [path.resolve('extensions', 'jobs'), path.join(appRoot(file), 'extensions', 'jobs')].find((d) => fs.existsSync(d)) ?? path.resolve('extensions', 'jobs')
  if (args.jobs && !fs.statSync(jobsDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new CliError(`--jobs ${args.jobs}: no such directory (${jobsDir})`)
  }
  try {
    await queue.loadJobHandlers(jobsDir)
  } catch (e) {
    throw new CliError(`cannot load the job handlers in ${jobsDir}:\n${e && e.stack ? e.stack : e}`)
  }
  const types = queue.getRegisteredJobTypes().sort()
  if (types.length === 0) {
    // The old worker started with none too (jobs then fail "No handler registered"): a warning.
    process.stderr.write(`queue-worker: warning: no job handlers registered: none of the files in ${jobsDir} (nor the config) called registerJobHandler${args.jobs ? '' : ' (pass --jobs <dir> if your handlers live elsewhere)'}; if they did, they imported a different copy of @chaaskit/queue than this worker's. Jobs will fail until handlers are registered.\n`)
  }

  let provider
  try {
    provider = await queue.initializeQueueProvider(cfg)
  } catch (e) {
    throw new CliError(`cannot create the ${cfg.providerConfig.type} provider: ${e.message}`)
  }
  let scheduler = null
  if (cfg.scheduler.enabled) {
    try {
      scheduler = await queue.startScheduler({ provider, config: cfg.scheduler })
    } catch (e) {
      await queue.closeQueueProvider()
      throw new CliError(`cannot start the scheduler (${databaseUrlOf(cfg.scheduler)}): ${e.message}`)
    }
  }
  let worker
  try {
    worker = queue.getWorker({ provider, config: args.metricsPort === null ? cfg.worker : { ...cfg.worker, metricsPort: args.metricsPort } })
  } catch (e) {
    await queue.stopScheduler()
    await queue.closeQueueProvider()
    throw new CliError(`--metrics-port: ${e.message}`, 2)
  }
  let stopping = false
  worker.start().then(
    () => {
      if (!stopping) fail(new CliError('the worker stopped unexpectedly'))
    },
    (e) => fail(new CliError(`the worker failed: ${e && e.message}`)),
  )

  const w = cfg.worker
  const onSignal = (signal) => {
    if (stopping) {
      process.stderr.write(`queue-worker: ${signal} again; exiting without waiting for running jobs\n`)
      process.exit(signal === 'SIGINT' ? 130 : 143)
    }
    stopping = true
    const active = worker.getStats().active
    say(`${signal} received; stopping (waiting up to ${w.shutdownTimeout} ms for ${active} running job${active === 1 ? '' : 's'}; send ${signal} again to force)`)
    ;(async () => {
      await queue.stopScheduler()
      await worker.stop()
      await queue.closeQueueProvider()
      const s = worker.getStats()
      say(`stopped: ${s.processed} processed, ${s.succeeded} succeeded, ${s.failed} failed`)
      process.exit(0)
    })().catch((e) => fail(new CliError(`shutdown failed: ${e && e.message}`)))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  // Printed once the signal handlers are in place: a signal sent on seeing this line is handled.
  const sched = scheduler ? `on (pollInterval=${cfg.scheduler.pollInterval}ms, ${databaseUrlOf(cfg.scheduler)})` : 'off'
  say(
    `started: provider=${cfg.providerConfig.type} concurrency=${w.concurrency} pollInterval=${w.pollInterval}ms ` +
      `shutdownTimeout=${w.shutdownTimeout}ms${args.metricsPort === null ? '' : ` metrics=http://127.0.0.1:${worker.metricsPort}/metrics`} handlers=${types.length} [${types.join(', ')}] scheduler=${sched}`,
  )
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])
const isLoopback = (host) => LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host)

/** Shortest QUEUE_DASHBOARD_PASSWORD accepted (characters). */
const MIN_DASHBOARD_PASSWORD = 12
/** Wrong passwords a client may send before it has to wait… */
const FREE_WRONG_PASSWORDS = 3
/** …first this long (ms), doubling with each further wrong one… */
const WRONG_PASSWORD_DELAY_MS = 1000
/** …up to this long (ms); a client's count is forgotten this long after its last wrong one. */
const MAX_WRONG_PASSWORD_DELAY_MS = 60 * 1000
/** Clients whose wrong passwords are remembered at once (the oldest is forgotten first). */
const MAX_TRACKED_CLIENTS = 10000

/** QUEUE_DASHBOARD_PASSWORD: undefined when unset or blank; refused when too short. */
function dashboardPassword(env) {
  const v = env.QUEUE_DASHBOARD_PASSWORD
  if (v === undefined || v.trim() === '') return undefined
  if ([...v].length < MIN_DASHBOARD_PASSWORD) {
    throw new CliError(`QUEUE_DASHBOARD_PASSWORD must be at least ${MIN_DASHBOARD_PASSWORD} characters, got ${[...v].length}`, 2)
  }
  return v
}

/**
 * The dashboard's authorize: HTTP Basic with QUEUE_DASHBOARD_PASSWORD when set; without one,
 * only a loopback Host header (so a page on another site cannot reach it by DNS rebinding).
 * A client (remote address) past FREE_WRONG_PASSWORDS wrong passwords gets 429 until its
 * delay (doubling per wrong one, capped) is over; a right password forgets its count.
 */
function dashboardAuthorize(password) {
  const crypto = require('node:crypto')
  const digest = (s) => crypto.createHash('sha256').update(s).digest()
  const want = password === undefined ? null : digest(password)
  const wrong = new Map() // remote address -> { count, until, last }, oldest first
  return (req, res) => {
    const host = String(req.headers.host || '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')
    if (want === null) return isLoopback(host)
    const client = String(req.socket.remoteAddress)
    const now = Date.now()
    let seen = wrong.get(client)
    if (seen && now - seen.last > MAX_WRONG_PASSWORD_DELAY_MS) {
      wrong.delete(client)
      seen = undefined
    }
    if (seen && now < seen.until) {
      res.writeHead(429, { 'Retry-After': String(Math.ceil((seen.until - now) / 1000)), 'Content-Type': 'text/plain; charset=utf-8' })
      res.end('Too Many Requests: too many wrong passwords; try again later\n')
      return false
    }
    const header = String(req.headers.authorization || '')
    const m = /^basic +([A-Za-z0-9+/=]+) *$/i.exec(header)
    const given = m ? Buffer.from(m[1], 'base64').toString('utf8') : ''
    const colon = given.indexOf(':')
    if (colon >= 0 && crypto.timingSafeEqual(digest(given.slice(colon + 1)), want)) {
      wrong.delete(client)
      return true
    }
    if (header !== '') {
      // A wrong password (a request without one only asks the browser for it).
      const count = (seen ? seen.count : 0) + 1
      const over = count - FREE_WRONG_PASSWORDS
      const until = over > 0 ? now + Math.min(MAX_WRONG_PASSWORD_DELAY_MS, WRONG_PASSWORD_DELAY_MS * 2 ** (over - 1)) : 0
      wrong.delete(client)
      wrong.set(client, { count, until, last: now })
      if (wrong.size > MAX_TRACKED_CLIENTS) wrong.delete(wrong.keys().next().value)
    }
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="queue dashboard", charset="UTF-8"', 'Content-Type': 'text/plain; charset=utf-8' })
    res.end('Unauthorized\n')
    return false
  }
}

async function dashboard(args, overrides) {
  const file = findConfig(args.config, true)
  await registerTypeScript()
  const rawQueue = await loadQueueConfig(file)
  const rel = path.relative(process.cwd(), file) || file
  if (rawQueue === undefined || rawQueue === null || typeof rawQueue !== 'object' || rawQueue.enabled !== true) {
    throw new CliError(`the queue is disabled in ${rel}; the dashboard needs queue.enabled: true and its providerConfig`)
  }
  const password = dashboardPassword(process.env)
  if (!isLoopback(args.host) && password === undefined) {
    throw new CliError(`--host ${args.host} is not a loopback address: set QUEUE_DASHBOARD_PASSWORD to serve the dashboard there`, 2)
  }
  const raw = { ...rawQueue, worker: { ...rawQueue.worker }, scheduler: { ...rawQueue.scheduler } }
  for (const o of overrides) raw[o.block][o.key] = o.value
  const queue = require('../index.js')
  const cfg = validate(queue, raw, overrides, file)
  let provider
  try {
    provider = await queue.createQueueProvider(cfg.providerConfig)
  } catch (e) {
    throw new CliError(`cannot create the ${cfg.providerConfig.type} provider: ${e.message}`)
  }
  if (cfg.providerConfig.type === 'memory') process.stderr.write('queue-worker: the memory provider lives in one process: this dashboard shows its own, empty queue\n')
  let scheduler = null
  if (cfg.scheduler.enabled) {
    try {
      scheduler = new queue.Scheduler({ provider, config: cfg.scheduler })
      if (cfg.scheduler.autoMigrate) await scheduler.migrate()
    } catch (e) {
      await provider.close()
      throw new CliError(`cannot open the scheduler (${databaseUrlOf(cfg.scheduler)}): ${e.message}`)
    }
  }
  const handler = queue.createDashboard({ provider, scheduler, authorize: dashboardAuthorize(password) })
  const http = require('node:http')
  const server = http.createServer(handler)
  await new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new CliError(`cannot listen on ${args.host}:${args.dashboardPort}: ${e.message}`)))
    server.listen(args.dashboardPort, args.host, resolve)
  })
  const onSignal = () => {
    handler.close()
    server.close()
    server.closeAllConnections()
    provider.close().finally(() => process.exit(0))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const { port } = server.address()
  const shown = args.host.includes(':') ? `[${args.host}]` : args.host
  say(`dashboard: http://${shown}:${port}/ provider=${cfg.providerConfig.type} scheduler=${scheduler ? 'on' : 'off'}${password === undefined ? '' : ' (password required)'}`)
}

function fail(e) {
  if (e instanceof CliError) process.stderr.write(`queue-worker: ${e.message}\n`)
  else process.stderr.write(`queue-worker: ${e && e.stack ? e.stack : e}\n`)
  process.exit(e instanceof CliError ? e.exitCode : 1)
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  if (args.command === 'help') {
    process.stdout.write(usage())
    return
  }
  loadDotEnv(path.resolve('.env'))
  const overrides = envOverrides()
  if (args.command === 'migrate') {
    await migrate(args, overrides)
    return
  }
  if (args.command === 'dashboard') {
    await dashboard(args, overrides)
    return
  }
  await start(args, overrides)
}

main().catch((e) => {
  if (e instanceof CliError && e.exitCode === 2) process.stderr.write(`queue-worker: ${e.message}\nRun queue-worker --help for usage.\n`)
  else return fail(e)
  process.exit(2)
})
