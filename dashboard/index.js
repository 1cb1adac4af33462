'use strict'
// createDashboard: the queue's web page (counts, throughput, job list and detail, retry,
// cancel, pause, resume, recurring jobs) as a Node `(req, res)` handler. It only translates
// HTTP to the provider's admin API and the scheduler's recurring-job calls; the page itself
// is the static files next to this one (no build step, nothing loaded from elsewhere).
//
// Security model (README "Dashboard"): nothing, not even a static file, is served before
// `authorize(req)` resolves to true; state-changing calls are POST only, need the page's
// token in a custom header, a JSON body, and a same-origin Sec-Fetch-Site/Origin when the
// browser sends them; every response carries a strict Content-Security-Policy; the page
// renders data with textContent only.

const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const util = require('node:util')
const binding = require('../binding.js')

const STATIC = {
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
}

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
}

/** The header a state-changing request carries the page's token in. */
const TOKEN_HEADER = 'x-queue-dashboard-token'
/** Largest JSON body of a POST. */
const MAX_BODY = 16 * 1024
/** Throughput: a sample of the completed count at most this often (ms)… */
const SAMPLE_MS = 5000
/** …summed into bars of this width (ms)… */
const BUCKET_MS = 10000
/** …over this window (ms). */
const WINDOW_MS = 10 * 60 * 1000
/** Stats younger than this (ms) are reused by the next overview. */
const STATS_TTL_MS = 1000
/** Longest `lastError` in a job list row (the detail has it whole). */
const LIST_ERROR_CHARS = 300

const PROVIDER_METHODS = ['getStats', 'listJobs', 'getJob', 'retryJob', 'cancelJob', 'pause', 'resume', 'paused']
const SCHEDULER_METHODS = ['listRecurring', 'enableRecurring', 'disableRecurring']

/** What the browser gets for a failure that is not its request's fault; the detail is logged. */
const INTERNAL_ERROR = 'internal error: the queue backend failed (the server log has the detail)'

/** A database URL inside an error's text: kept out of the server log as well. */
const URL_IN_TEXT = /\b(?:[a-z][a-z0-9+.-]*:\/\/|sqlite:)\S+/gi

const describe = (v) => (typeof v === 'string' ? JSON.stringify(v) : util.inspect(v, { depth: 0, breakLength: Infinity }))

class HttpError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

function checkOptions(options) {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
  const { provider, scheduler, authorize, basePath = '', refreshInterval = 2000, csrfToken } = options
  if (provider === null || typeof provider !== 'object' || PROVIDER_METHODS.some((m) => typeof provider[m] !== 'function')) {
    throw new TypeError(`options.provider must be a queue provider (createQueueProvider), got ${describe(provider)}`)
  }
  if (scheduler !== undefined && scheduler !== null && (typeof scheduler !== 'object' || SCHEDULER_METHODS.some((m) => typeof scheduler[m] !== 'function'))) {
    throw new TypeError(`options.scheduler must be a Scheduler, got ${describe(scheduler)}`)
  }
  if (typeof authorize !== 'function') {
    throw new TypeError(`options.authorize must be a function (req, res) => boolean | Promise<boolean>, got ${describe(authorize)}`)
  }
  if (typeof basePath !== 'string') throw new TypeError(`options.basePath must be a string, got ${describe(basePath)}`)
  const base = basePath.replace(/\/+$/, '')
  if (base !== '' && (!base.startsWith('/') || /[?#\s]/.test(base))) {
    throw new RangeError(`options.basePath must be '' or a path starting with '/', got ${describe(basePath)}`)
  }
  if (typeof refreshInterval !== 'number' || !Number.isInteger(refreshInterval) || refreshInterval < 250 || refreshInterval > 3600000) {
    throw new RangeError(`options.refreshInterval must be an integer from 250 to 3600000 (ms), got ${describe(refreshInterval)}`)
  }
  if (csrfToken !== undefined && (typeof csrfToken !== 'string' || !/^[A-Za-z0-9_-]{16,256}$/.test(csrfToken))) {
    throw new RangeError(`options.csrfToken must be 16 to 256 characters of A-Z, a-z, 0-9, '_' or '-', got ${describe(csrfToken)}`)
  }
  return { provider, scheduler: scheduler ?? null, authorize, base, refreshInterval, token: csrfToken ?? crypto.randomBytes(24).toString('base64url') }
}

/**
 * The dashboard as a `(req, res, next?)` handler. Requests outside `basePath` call `next()`
 * when given (Express, Connect), else get a 404. `handler.close()` stops the throughput sampler.
 */
function createDashboard(options) {
  const o = checkOptions(options)
  const { provider, scheduler, base } = o
  const assets = {}
  for (const [route, { file, type }] of Object.entries(STATIC)) assets[route] = { type, body: fs.readFileSync(path.join(__dirname, file)) }
  const html = fs
    .readFileSync(path.join(__dirname, 'index.html'), 'utf8')
    .replaceAll('%TOKEN%', o.token)
    .replaceAll('%REFRESH%', String(o.refreshInterval))
    .replaceAll('%PROVIDER%', String(provider.name).replace(/[^A-Za-z0-9_#.-]/g, ''))
  const page = Buffer.from(html)
  const tokenBuf = Buffer.from(o.token)

  // ---- counts and throughput -------------------------------------------------------------
  let stats = null // { at, value } of the last getStats
  let statsInFlight = null
  const samples = [] // [{ t, completed }], oldest first, within the window
  let timer = null

  function record(t, s) {
    samples.push({ t, completed: s.completed })
    while (samples.length > 2 && samples[1].t < t - WINDOW_MS - BUCKET_MS) samples.shift()
  }

  function currentStats() {
    const now = Date.now()
    if (stats && now - stats.at < STATS_TTL_MS) return Promise.resolve(stats.value)
    if (!statsInFlight) {
      statsInFlight = provider
        .getStats()
        .then((value) => {
          const at = Date.now()
          stats = { at, value }
          if (samples.length === 0 || at - samples[samples.length - 1].t >= SAMPLE_MS) record(at, value)
          return value
        })
        .finally(() => {
          statsInFlight = null
        })
    }
    return statsInFlight
  }

  /** Jobs completed per bar of the window, oldest first (a falling count, e.g. a purge, counts 0). */
  function throughput(now) {
    const bars = Math.round(WINDOW_MS / BUCKET_MS)
    const end = Math.ceil(now / BUCKET_MS) * BUCKET_MS
    const start = end - bars * BUCKET_MS
    const counts = new Array(bars).fill(0)
    for (let i = 1; i < samples.length; i++) {
      const t = samples[i].t
      if (t <= start) continue
      counts[Math.min(bars - 1, Math.floor((t - start) / BUCKET_MS))] += Math.max(0, samples[i].completed - samples[i - 1].completed)
    }
    const since = samples.length > 0 ? samples[0].t : now
    return { start, bucketMs: BUCKET_MS, counts, since }
  }

  function startSampler() {
    if (timer) return
    timer = setInterval(() => currentStats().catch(() => {}), SAMPLE_MS)
    timer.unref()
  }

  // ---- API -------------------------------------------------------------------------------
  const summary = (j) => ({
    id: j.id,
    type: j.type,
    status: j.status,
    attempts: j.attempts,
    maxRetries: j.options && j.options.maxRetries,
    createdAt: j.createdAt,
    progress: j.progress,
    lastError: typeof j.lastError === 'string' && j.lastError.length > LIST_ERROR_CHARS ? `${j.lastError.slice(0, LIST_ERROR_CHARS)}…` : j.lastError,
  })

  /**
   * The one rule of every action body: a JSON object whose own fields are among `fields`
   * (`{}` when the action takes none). Anything else (an array, null, a string, a field of
   * another name, `__proto__`) is a 400 naming what is wrong.
   */
  const actionBody = (body, fields = []) => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError(400, `body must be a JSON object${fields.length ? ` with only ${fields.join(', ')}` : ' with no fields ({})'}, got ${describe(body)}`)
    }
    for (const k of Object.keys(body)) {
      if (!fields.includes(k)) throw new HttpError(400, `body field ${JSON.stringify(k)} is not one of this action's (${fields.length ? fields.join(', ') : 'it takes none: send {}'})`)
    }
    return body
  }

  const jobId = (m) => {
    try {
      return decodeURIComponent(m)
    } catch {
      throw new HttpError(400, 'malformed job id')
    }
  }

  /** The job's `ctx.log` lines, or null where the provider keeps none (SQS). */
  async function jobLogs(id) {
    if (typeof provider.getJobLogs !== 'function') return null
    try {
      return await provider.getJobLogs(id)
    } catch (e) {
      if (e && e.code === 'ERR_QUEUE_NOT_SUPPORTED') return null
      throw e
    }
  }

  /** [method, pattern, handler(match, url, body)], first match wins. */
  const routes = [
    ['GET', /^\/api\/overview$/, async () => {
      const [s, paused] = await Promise.all([currentStats(), provider.paused()])
      const now = Date.now()
      return { provider: provider.name, now, stats: s, paused, throughput: throughput(now), scheduler: scheduler !== null }
    }],
    ['GET', /^\/api\/jobs$/, async (m, url) => {
      const q = url.searchParams
      const opts = {}
      for (const k of ['status', 'type', 'cursor']) if (q.get(k)) opts[k] = q.get(k)
      if (q.get('limit')) {
        const n = Number(q.get('limit'))
        if (!Number.isInteger(n)) throw new HttpError(400, `limit must be an integer, got ${JSON.stringify(q.get('limit'))}`)
        opts.limit = n
      }
      const p = await provider.listJobs(opts)
      return { jobs: p.jobs.map(summary), nextCursor: p.nextCursor }
    }],
    ['GET', /^\/api\/jobs\/([^/]+)$/, async (m) => {
      const id = jobId(m[1])
      const job = await provider.getJob(id)
      if (!job) throw new HttpError(404, 'no such job')
      return { job, logs: await jobLogs(id) }
    }],
    ['POST', /^\/api\/jobs\/([^/]+)\/(retry|cancel)$/, async (m, url, body) => {
      actionBody(body)
      const id = jobId(m[1])
      const ok = m[2] === 'retry' ? await provider.retryJob(id) : await provider.cancelJob(id)
      return { ok }
    }],
    ['POST', /^\/api\/(pause|resume)$/, async (m, url, body) => {
      // Every type only when asked for explicitly: `{}` or `{ "type": null }`.
      const type = Object.hasOwn(actionBody(body, ['type']), 'type') ? body.type : null
      if (type !== null && (typeof type !== 'string' || type === '')) {
        throw new HttpError(400, `type must be a non-empty string, or null (or absent) for every type, got ${describe(type)}`)
      }
      await provider[m[1]](type ?? undefined)
      return { ok: true, paused: await provider.paused() }
    }],
    ['GET', /^\/api\/recurring$/, async () => ({ recurring: scheduler === null ? null : await scheduler.listRecurring() })],
    ['POST', /^\/api\/recurring\/([^/]+)\/(enable|disable)$/, async (m, url, body) => {
      actionBody(body)
      if (scheduler === null) throw new HttpError(404, 'no scheduler given to createDashboard')
      const name = jobId(m[1])
      return { ok: m[2] === 'enable' ? await scheduler.enableRecurring(name) : await scheduler.disableRecurring(name) }
    }],
  ]

  /** A state-changing request must come from the page: its token, JSON, same origin. */
  function checkCsrf(req) {
    const site = req.headers['sec-fetch-site']
    if (site !== undefined && site !== 'same-origin') throw new HttpError(403, `cross-site request refused (Sec-Fetch-Site: ${site})`)
    const origin = req.headers.origin
    if (origin !== undefined && !sameOrigin(origin, req)) {
      throw new HttpError(403, 'cross-origin request refused (Origin does not match the scheme, Host and port of the request)')
    }
    const given = req.headers[TOKEN_HEADER]
    const buf = typeof given === 'string' ? Buffer.from(given) : Buffer.alloc(0)
    if (buf.length !== tokenBuf.length || !crypto.timingSafeEqual(buf, tokenBuf)) throw new HttpError(403, `missing or wrong ${TOKEN_HEADER} header`)
    const ct = String(req.headers['content-type'] || '')
    if (!/^application\/json\b/i.test(ct)) throw new HttpError(415, 'Content-Type must be application/json')
  }

  /**
   * Whether `origin` is this request's own: same scheme, host and port (default ports
   * normalised). The scheme is Express's `req.protocol` when there is one (it follows the
   * app's `trust proxy`), else `X-Forwarded-Proto` when a proxy set it, else the socket's.
   */
  function sameOrigin(origin, req) {
    const forwarded = String(req.headers['x-forwarded-proto'] || '').split(',')[0].trim().toLowerCase()
    const scheme = typeof req.protocol === 'string' ? req.protocol : forwarded === 'https' || forwarded === 'http' ? forwarded : req.socket && req.socket.encrypted ? 'https' : 'http'
    try {
      return new URL(origin).origin === new URL(`${scheme}://${req.headers.host}`).origin
    } catch {
      return false
    }
  }

  async function readBody(req) {
    // A framework's body parser ran first (Express `express.json()`, Fastify's `request.body`).
    if (req.body !== undefined && req.body !== null && typeof req.body === 'object' && !Buffer.isBuffer(req.body)) return req.body
    let text
    if (req.body !== undefined && req.body !== null) text = String(req.body)
    else text = await readText(req)
    if (text.trim() === '') return {}
    try {
      return JSON.parse(text)
    } catch {
      throw new HttpError(400, 'body is not JSON')
    }
  }

  async function readText(req) {
    let size = 0
    const chunks = []
    for await (const c of req) {
      size += c.length
      if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`)
      chunks.push(c)
    }
    return Buffer.concat(chunks).toString('utf8')
  }

  function send(res, status, type, body, extra) {
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra })
    res.end(body)
  }

  const sendJson = (res, status, value) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(value))

  /**
   * A thrown error as [status, message for the browser], by its `code`. The caller's own
   * mistakes (an HttpError, a TypeError/RangeError of an argument check, ERR_QUEUE_INVALID)
   * are 400 with their message, an operation the provider cannot do (ERR_QUEUE_NOT_SUPPORTED)
   * 501; anything else (a database failure, whose text names the database) is a 500 with a
   * generic message, and the detail goes to the server log.
   */
  function failure(e, req, rel) {
    const message = e && e.message ? String(e.message) : String(e)
    if (e instanceof HttpError) return [e.status, message]
    const code = e && e.code
    if (e instanceof TypeError || e instanceof RangeError || code === 'ERR_QUEUE_INVALID') return [400, message]
    if (code === 'ERR_QUEUE_NOT_SUPPORTED') return [501, message]
    binding.log('error', `dashboard: ${req.method} ${base}${rel} failed: ${message.replace(URL_IN_TEXT, '<database URL>')}`)
    return [500, INTERNAL_ERROR]
  }

  async function serve(req, res, rel, url) {
    // Set before authorize runs, so a response it writes itself (a 401) carries them too.
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v)
    let allowed
    try {
      allowed = (await o.authorize(req, res)) === true
    } catch {
      allowed = false
    }
    if (res.headersSent || res.writableEnded) return // authorize answered itself (e.g. a 401 asking for credentials)
    if (!allowed) return send(res, 403, 'text/plain; charset=utf-8', 'Forbidden\n')
    startSampler()
    const method = req.method === 'HEAD' ? 'GET' : req.method
    if (rel === '') return send(res, 308, 'text/plain; charset=utf-8', '', { Location: `${base}/${url.search}` })
    if (rel === '/' || rel === '/index.html') {
      if (method !== 'GET') return send(res, 405, 'text/plain; charset=utf-8', 'Method Not Allowed\n', { Allow: 'GET, HEAD' })
      return send(res, 200, 'text/html; charset=utf-8', page)
    }
    const asset = assets[rel]
    if (asset) {
      if (method !== 'GET') return send(res, 405, 'text/plain; charset=utf-8', 'Method Not Allowed\n', { Allow: 'GET, HEAD' })
      return send(res, 200, asset.type, asset.body)
    }
    const matching = routes.filter(([, re]) => re.test(rel))
    if (matching.length === 0) return sendJson(res, 404, { error: 'not found' })
    const route = matching.find(([m]) => m === method)
    if (!route) return send(res, 405, 'application/json; charset=utf-8', JSON.stringify({ error: 'method not allowed' }), { Allow: matching.map(([m]) => m).join(', ') })
    try {
      let body
      if (method === 'POST') {
        checkCsrf(req)
        body = await readBody(req)
      }
      const value = await route[2](route[1].exec(rel), url, body)
      sendJson(res, 200, value)
    } catch (e) {
      const [status, error] = failure(e, req, rel)
      sendJson(res, status, { error })
    }
  }

  function handler(req, res, next) {
    // Express keeps the full path in originalUrl (req.url is relative to the mount point).
    const raw = req.originalUrl || req.url || '/'
    let url
    try {
      url = new URL(raw, 'http://dashboard.invalid')
    } catch {
      return send(res, 400, 'text/plain; charset=utf-8', 'Bad Request\n')
    }
    const p = url.pathname
    const inside = base === '' || p === base || p.startsWith(`${base}/`)
    if (!inside) {
      if (typeof next === 'function') return next()
      return send(res, 404, 'text/plain; charset=utf-8', 'Not Found\n')
    }
    serve(req, res, p.slice(base.length), url).catch((e) => {
      if (res.headersSent) return res.destroy()
      const [status, error] = failure(e, req, p.slice(base.length))
      sendJson(res, status, { error })
    })
  }

  handler.close = () => {
    if (timer) clearInterval(timer)
    timer = null
  }
  handler.basePath = base
  return handler
}

module.exports = { createDashboard, TOKEN_HEADER }
