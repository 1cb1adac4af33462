'use strict'
// The dashboard (dashboard/): its HTTP surface (authorization, CSRF, headers, mounting under
// http, Express and Fastify) and the page itself in a real browser: Debian's chromium driven
// headless by playwright-core, on the memory provider and on PostgreSQL.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const queue = require('..')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const PG_URL = process.env.QUEUE_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test'
const RUN = `${process.pid}_${Date.now().toString(36)}`
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-dashboard-'))
const { sleep } = require('./wait.js')

/** `handler` on a loopback port; resolves to { url, close }. */
function listen(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler)
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}`
      resolve({ url, server, close: () => new Promise((r) => server.close(r)) })
    })
  })
}

const tokenOf = (html) => /<meta name="queue-token" content="([^"]+)">/.exec(html)[1]

test('createDashboard checks its options', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  const ok = { provider: p, authorize: () => true }
  assert.throws(() => queue.createDashboard(), { name: 'TypeError', message: /^options must be an object/ })
  assert.throws(() => queue.createDashboard({ provider: {}, authorize: () => true }), { name: 'TypeError', message: /^options\.provider must be a queue provider/ })
  assert.throws(() => queue.createDashboard({ provider: p }), { name: 'TypeError', message: 'options.authorize must be a function (req, res) => boolean | Promise<boolean>, got undefined' })
  assert.throws(() => queue.createDashboard({ ...ok, scheduler: {} }), { name: 'TypeError', message: 'options.scheduler must be a Scheduler, got {}' })
  assert.throws(() => queue.createDashboard({ ...ok, basePath: 'queue' }), { name: 'RangeError', message: `options.basePath must be '' or a path starting with '/', got "queue"` })
  assert.throws(() => queue.createDashboard({ ...ok, basePath: 5 }), { name: 'TypeError', message: 'options.basePath must be a string, got 5' })
  assert.throws(() => queue.createDashboard({ ...ok, refreshInterval: 10 }), { name: 'RangeError', message: 'options.refreshInterval must be an integer from 250 to 3600000 (ms), got 10' })
  assert.throws(() => queue.createDashboard({ ...ok, csrfToken: 'short' }), { name: 'RangeError', message: /^options\.csrfToken must be 16 to 256 characters/ })
  assert.equal(queue.createDashboard({ ...ok, basePath: '/admin/queue/' }).basePath, '/admin/queue')
  await p.close()
})

test('nothing is served unless authorize(req) resolves to true; it may answer itself', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  let allow = false
  const seen = []
  const d = queue.createDashboard({
    provider: p,
    basePath: '/q',
    authorize: async (req, res) => {
      seen.push(req.url)
      await sleep(1)
      if (req.headers['x-boom']) throw new Error('auth backend down')
      if (req.headers['x-ask']) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="queue"' }).end()
        return false
      }
      return allow
    },
  })
  const s = await listen(d)
  try {
    for (const u of ['/q', '/q/', '/q/app.js', '/q/app.css', '/q/api/overview', '/q/api/jobs', '/q/api/jobs/x', '/q/api/recurring', '/q/nope']) {
      const r = await fetch(s.url + u, { redirect: 'manual' })
      assert.equal(r.status, 403, u)
      assert.equal(await r.text(), 'Forbidden\n', u)
      assert.match(r.headers.get('content-security-policy'), /default-src 'none'/)
    }
    const post = await fetch(`${s.url}/q/api/pause`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    assert.equal(post.status, 403)
    assert.deepEqual(await p.paused(), [])
    assert.equal((await fetch(`${s.url}/q/`, { headers: { 'x-boom': '1' } })).status, 403)
    const ask = await fetch(`${s.url}/q/`, { headers: { 'x-ask': '1' } })
    assert.equal(ask.status, 401)
    assert.equal(ask.headers.get('www-authenticate'), 'Basic realm="queue"')
    assert.ok(seen.includes('/q/app.js'))

    allow = true
    const page = await fetch(`${s.url}/q/`)
    assert.equal(page.status, 200)
    assert.equal(page.headers.get('content-security-policy'), "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    assert.equal(page.headers.get('x-frame-options'), 'DENY')
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff')
    assert.match(await page.text(), /<meta name="viewport"/)
    const redirect = await fetch(`${s.url}/q?x=1`, { redirect: 'manual' })
    assert.equal(redirect.status, 308)
    assert.equal(redirect.headers.get('location'), '/q/?x=1')
    assert.equal((await fetch(`${s.url}/q/app.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8')
    assert.equal((await fetch(`${s.url}/other`)).status, 404)
  } finally {
    await s.close()
    d.close()
    await p.close()
  }
})

test('state changes need POST, the page token, JSON and a same-origin request', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  const d = queue.createDashboard({ provider: p, authorize: () => true })
  const s = await listen(d)
  try {
    const token = tokenOf(await (await fetch(`${s.url}/`)).text())
    const post = (pathname, headers, body = '{"type":"email"}') => fetch(s.url + pathname, { method: 'POST', headers: { 'content-type': 'application/json', 'x-queue-dashboard-token': token, ...headers }, body })
    const cases = [
      [{ 'x-queue-dashboard-token': '' }, 403, /missing or wrong x-queue-dashboard-token/],
      [{ 'x-queue-dashboard-token': `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}` }, 403, /missing or wrong/],
      [{ 'sec-fetch-site': 'cross-site' }, 403, /cross-site request refused/],
      [{ 'sec-fetch-site': 'same-site' }, 403, /cross-site request refused/],
      [{ origin: 'http://evil.example' }, 403, /Origin does not match/],
      // the same host under another scheme or port is another origin (review note)
      [{ origin: s.url.replace('http:', 'https:') }, 403, /Origin does not match the scheme, Host and port/],
      [{ origin: `http://127.0.0.1:${Number(new URL(s.url).port) === 1 ? 2 : 1}` }, 403, /Origin does not match/],
      [{ origin: 'null' }, 403, /Origin does not match/],
      [{ 'content-type': 'text/plain' }, 415, /application\/json/],
    ]
    for (const [headers, status, message] of cases) {
      const r = await post('/api/pause', headers)
      assert.equal(r.status, status, JSON.stringify(headers))
      assert.match((await r.json()).error, message)
    }
    assert.deepEqual(await p.paused(), [])
    const get = await fetch(`${s.url}/api/pause`)
    assert.equal(get.status, 405)
    assert.equal(get.headers.get('allow'), 'POST')
    assert.equal((await post('/api/pause', {}, '{"type":5}')).status, 400)
    assert.equal((await post('/api/pause', {}, 'not json')).status, 400)
    assert.equal((await post('/api/pause', {}, 'x'.repeat(20000))).status, 413)

    const ok = await post('/api/pause', { origin: s.url, 'sec-fetch-site': 'same-origin' })
    assert.equal(ok.status, 200)
    assert.deepEqual(await ok.json(), { ok: true, paused: ['email'] })
    assert.deepEqual(await (await post('/api/resume', {}, '{}')).json(), { ok: true, paused: [] })

    const job = await p.enqueue('email', { to: 'a' })
    const cancel = await post(`/api/jobs/${job.id}/cancel`, {}, '{}')
    assert.deepEqual(await cancel.json(), { ok: true })
    assert.equal((await p.getJob(job.id)).status, 'cancelled')
    assert.deepEqual(await (await post(`/api/jobs/${job.id}/retry`, {}, '{}')).json(), { ok: false })
    assert.equal((await fetch(`${s.url}/api/jobs/nope`)).status, 404)
    const bad = await fetch(`${s.url}/api/jobs?limit=5000`)
    assert.equal(bad.status, 400)
    assert.match((await bad.json()).error, /limit must be an integer from 1 to 1000, got 5000/)
    assert.equal((await fetch(`${s.url}/api/jobs?status=bogus`)).status, 400)
    assert.deepEqual(await (await fetch(`${s.url}/api/recurring`)).json(), { recurring: null })
  } finally {
    await s.close()
    d.close()
    await p.close()
  }
})

/** A dashboard on `p` (and `scheduler`) with a `post(path, body text)` that passes the CSRF checks. */
async function posting(p, scheduler = null) {
  const d = queue.createDashboard({ provider: p, scheduler, authorize: () => true })
  const s = await listen(d)
  const token = tokenOf(await (await fetch(`${s.url}/`)).text())
  const post = async (pathname, body) => {
    const r = await fetch(s.url + pathname, { method: 'POST', headers: { 'content-type': 'application/json', 'x-queue-dashboard-token': token }, body })
    return { status: r.status, body: await r.json() }
  }
  const get = async (pathname) => {
    const r = await fetch(s.url + pathname)
    return { status: r.status, body: await r.json() }
  }
  return { post, get, close: async () => (await s.close(), d.close()) }
}

test('action bodies: every type only by {} or {"type": null}; anything else is a 400 naming the field', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  const scheduler = new queue.Scheduler({ provider: p, config: { enabled: true, databaseUrl: `sqlite:${path.join(tmpRoot, 'bodies.db')}?mode=rwc` } })
  await scheduler.migrate()
  await scheduler.registerRecurring({ name: 'nightly', type: 'email', payload: {}, schedule: '0 3 * * *' })
  const job = await p.enqueue('email', {})
  const d = await posting(p, scheduler)
  try {
    const bad = [
      ['{"Type":"email"}', /body field "Type" is not one of this action's \(type\)/],
      ['[1]', /body must be a JSON object with only type, got \[ 1 \]/],
      ['null', /body must be a JSON object with only type, got null/],
      ['"abc"', /body must be a JSON object with only type, got "abc"/],
      ['{"__proto__":{"type":"pp"}}', /body field "__proto__" is not one of this action's/],
      ['{"type":""}', /^type must be a non-empty string, or null \(or absent\) for every type, got ""$/],
      ['{"type":["email"]}', /^type must be a non-empty string, or null/],
    ]
    for (const action of ['pause', 'resume']) {
      if (action === 'resume') await p.pause('email')
      for (const [body, message] of bad) {
        const r = await d.post(`/api/${action}`, body)
        assert.equal(r.status, 400, `${action} ${body}`)
        assert.match(r.body.error, message, `${action} ${body}`)
      }
      assert.deepEqual(await p.paused(), action === 'pause' ? [] : ['email'], `nothing changed by a bad ${action} body`)
    }
    assert.deepEqual((await d.post('/api/pause', '{}')).body, { ok: true, paused: [null, 'email'] })
    assert.deepEqual((await d.post('/api/resume', '{"type":null}')).body, { ok: true, paused: [] })
    assert.deepEqual((await d.post('/api/pause', '{"type":null}')).body, { ok: true, paused: [null] })
    assert.deepEqual((await d.post('/api/resume', '')).body, { ok: true, paused: [] }) // no body at all reads as {}

    // the same rule on every other action: they take no fields
    for (const route of [`/api/jobs/${job.id}/cancel`, `/api/jobs/${job.id}/retry`, '/api/recurring/nightly/disable', '/api/recurring/nightly/enable']) {
      for (const body of ['{"force":true}', '[]', 'null', '"x"']) {
        const r = await d.post(route, body)
        assert.equal(r.status, 400, `${route} ${body}`)
        assert.match(r.body.error, /^body (field "force" is not one of this action's \(it takes none: send \{\}\)|must be a JSON object with no fields \(\{\}\), got .+)$/, `${route} ${body}`)
      }
    }
    assert.equal((await p.getJob(job.id)).status, 'pending')
    assert.equal((await scheduler.listRecurring())[0].enabled, true)
    assert.deepEqual((await d.post(`/api/jobs/${job.id}/cancel`, '{}')).body, { ok: true })
    assert.deepEqual((await d.post('/api/recurring/nightly/disable', '{}')).body, { ok: true })
  } finally {
    await d.close()
    await p.close()
  }
})

/** The bad-input and database-failure checks of the admin routes on `p`. */
async function badInput(p, scheduler) {
  const d = await posting(p, scheduler)
  try {
    const nul = 'a\u0000b'
    const long = 't'.repeat(9000)
    const rule = /must be at most 1024 bytes \(UTF-8\) with no NUL character/
    for (const [action, type] of [['pause', nul], ['pause', long], ['resume', nul], ['resume', long]]) {
      const r = await d.post(`/api/${action}`, JSON.stringify({ type }))
      assert.equal(r.status, 400, `${action} ${type.length}`)
      assert.match(r.body.error, /^type /)
      assert.match(r.body.error, rule)
    }
    for (const type of [nul, long]) {
      const r = await d.get(`/api/jobs?type=${encodeURIComponent(type)}`)
      assert.equal(r.status, 400)
      assert.match(r.body.error, /^options\.type must be at most 1024 bytes/)
      await assert.rejects(p.enqueue(type, {}), { name: 'RangeError', message: rule })
    }
    assert.deepEqual(await p.paused(), [])
    if (scheduler) {
      for (const name of [nul, long]) {
        for (const action of ['enable', 'disable']) {
          const r = await d.post(`/api/recurring/${encodeURIComponent(name)}/${action}`, '{}')
          assert.equal(r.status, 400, `${action} ${name.length}`)
          assert.match(r.body.error, /^name must be at most 1024 bytes \(UTF-8\) with no NUL character/)
        }
        await assert.rejects(scheduler.registerRecurring({ name, type: 'email', payload: {}, schedule: '0 3 * * *' }), { message: /^name must be at most 1024 bytes/ })
      }
      await assert.rejects(scheduler.registerRecurring({ name: 'x', type: nul, payload: {}, schedule: '0 3 * * *' }), { message: /^input\.type must be at most 1024 bytes/ })
    }
    return d
  } catch (e) {
    await d.close()
    throw e
  }
}

test('bad input: a NUL or an over-long type or name is a 400 on memory, the same rule as every provider', async () => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  const scheduler = new queue.Scheduler({ provider: p, config: { enabled: true, databaseUrl: `sqlite:${path.join(tmpRoot, 'bad.db')}?mode=rwc` } })
  await scheduler.migrate()
  const d = await badInput(p, scheduler)
  await d.close()
  await p.close()
})

test('bad input on PostgreSQL is a 400; a database failure is a 500 that names no database', async (t) => {
  const schema = `dashbad_${RUN}`
  let p
  try {
    p = await queue.createQueueProvider({ type: 'postgres', databaseUrl: PG_URL, schema })
  } catch (e) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL at ${PG_URL} is required in CI: ${e.message}`)
    t.skip(`PostgreSQL not reachable: ${e.message}`)
    return
  }
  const scheduler = new queue.Scheduler({ provider: p, config: { enabled: true, databaseUrl: PG_URL } })
  await scheduler.migrate()
  const { Client } = require('pg')
  const c = new Client({ connectionString: PG_URL })
  await c.connect()
  let d
  try {
    d = await badInput(p, scheduler)
    // the jobs table vanishes under the provider: a real database failure
    await c.query(`DROP SCHEMA "${schema}" CASCADE`)
    const r = await d.get('/api/jobs')
    assert.equal(r.status, 500)
    assert.deepEqual(r.body, { error: 'internal error: the queue backend failed (the server log has the detail)' })
    await assert.rejects(p.listJobs(), (e) => e.message.includes(schema)) // the detail the browser did not get
  } finally {
    if (d) await d.close()
    await p.close()
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await c.end()
  }
})

test('mounts at basePath in Express (next() for other paths) and in Fastify', async () => {
  const express = require('express')
  const p = await queue.createQueueProvider({ type: 'memory' })
  await p.enqueue('email', { n: 1 })
  const d = queue.createDashboard({ provider: p, basePath: '/admin/queue', authorize: (req) => req.headers.cookie === 'session=ok' })
  const app = express()
  app.use(express.json())
  app.use('/admin/queue', d)
  app.use(d) // a request outside basePath goes on to the next handler
  app.get('/hello', (req, res) => res.send('app'))
  const s = await listen(app)
  try {
    const h = { cookie: 'session=ok' }
    assert.equal(await (await fetch(`${s.url}/hello`)).text(), 'app')
    assert.equal((await fetch(`${s.url}/admin/queue/`)).status, 403)
    const html = await (await fetch(`${s.url}/admin/queue/`, { headers: h })).text()
    const stats = await (await fetch(`${s.url}/admin/queue/api/overview`, { headers: h })).json()
    assert.equal(stats.stats.pending, 1)
    const r = await fetch(`${s.url}/admin/queue/api/pause`, { method: 'POST', headers: { ...h, 'content-type': 'application/json', 'x-queue-dashboard-token': tokenOf(html) }, body: '{"type":"email"}' })
    assert.deepEqual(await r.json(), { ok: true, paused: ['email'] }) // the body express.json() parsed
  } finally {
    await s.close()
  }

  const fastify = require('fastify')({ logger: false })
  const mount = (request, reply) => {
    reply.hijack()
    request.raw.body = request.body
    d(request.raw, reply.raw)
  }
  fastify.all('/admin/queue', mount)
  fastify.all('/admin/queue/*', mount)
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  try {
    const url = `http://127.0.0.1:${fastify.server.address().port}`
    const h = { cookie: 'session=ok' }
    const html = await (await fetch(`${url}/admin/queue/`, { headers: h })).text()
    const r = await fetch(`${url}/admin/queue/api/resume`, { method: 'POST', headers: { ...h, 'content-type': 'application/json', 'x-queue-dashboard-token': tokenOf(html) }, body: '{}' })
    assert.deepEqual(await r.json(), { ok: true, paused: [] })
    assert.equal((await fetch(`${url}/admin/queue/app.css`)).status, 403)
    assert.equal((await fetch(`${url}/admin/queue/app.css`, { headers: h })).status, 200)
  } finally {
    await fastify.close()
    d.close()
    await p.close()
  }
})

// ---- in a real browser ------------------------------------------------------------------------

const XSS = '<script>window.__xss = "script"</script><img src=x onerror="window.__xss = \'img\'">'

async function launch(t) {
  if (!fs.existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is required in CI (apt-get install -y chromium; .ci/run does it)`)
    t.skip(`no browser at ${CHROMIUM}`)
    return null
  }
  const { chromium } = require('playwright-core')
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
}

/** The browser scenario of issue 13 on `p`, with a recurring job on `scheduler`. */
async function browserScenario(t, p, scheduler) {
  const browser = await launch(t)
  if (!browser) return
  let failing = true
  const type = `flaky_${RUN}`
  queue.registerJobHandler(type, async (job, ctx) => {
    ctx.progress(50)
    ctx.log('step %d %s', ctx.attempt, XSS)
    if (failing) throw new Error(`boom ${XSS}`)
    return { done: true, echo: XSS }
  })
  const w = new queue.Worker({ provider: p, config: { concurrency: 2, pollInterval: 50 } })
  const running = w.start()
  const d = queue.createDashboard({ provider: p, scheduler, authorize: () => true, basePath: '/queue', refreshInterval: 250 })
  const s = await listen(d)
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const dialogs = []
  const errors = []
  page.on('dialog', (dlg) => {
    dialogs.push(dlg.message())
    dlg.dismiss().catch(() => {})
  })
  page.on('pageerror', (e) => errors.push(e.message))
  try {
    await page.goto(`${s.url}/queue/`)
    const count = async (status) => Number(await page.textContent(`#count-${status}`))
    await page.waitForFunction(() => document.getElementById('count-pending').textContent !== '–')
    await page.waitForSelector('#live-dot.ok')

    // 1. a count changes when a job is enqueued (paused, so it stays pending)
    const pendingBefore = await count('pending')
    await p.pause(type)
    await p.enqueue(type, { note: XSS }, { maxRetries: 0 })
    await page.waitForFunction((n) => Number(document.getElementById('count-pending').textContent) === n, pendingBefore + 1)
    await page.waitForFunction(() => /paused: flaky_/.test(document.getElementById('paused-text').textContent))

    // resume from the page: the job runs, fails with no retries left and is dead
    await page.fill('#pause-type', type)
    await page.click('#resume')
    await page.waitForFunction(() => Number(document.getElementById('count-dead').textContent) >= 1)
    assert.deepEqual(await p.paused(), [])

    // 2. open the dead job from the list (status filter) and retry it
    await page.selectOption('#filter-status', 'dead')
    const row = page.locator(`#jobs tr:has(td:text-is("${type}"))`).first()
    const id = await row.getAttribute('data-id')
    await page.locator(`#jobs tr[data-id="${id}"]`).click()
    await page.waitForFunction(() => document.getElementById('detail').getAttribute('data-status') === 'dead')
    assert.equal(await page.textContent('#detail-error'), `boom ${XSS}`)
    assert.equal(JSON.parse(await page.textContent('#detail-payload')).note, XSS)
    assert.equal(await page.isDisabled('#retry'), false)
    failing = false
    await page.click('#retry')

    // 3. the job completes: the detail shows it, with its result
    await page.waitForFunction(() => document.getElementById('detail').getAttribute('data-status') === 'completed')
    assert.equal((await p.getJob(id)).status, 'completed')
    assert.deepEqual(JSON.parse(await page.textContent('#detail-result')), { done: true, echo: XSS })
    assert.equal(await page.textContent('#detail-progress'), '50%')
    // its log lines, one per attempt, markup shown as text
    await page.waitForFunction(() => document.querySelectorAll('#detail-logs li').length === 2)
    assert.deepEqual(await page.$$eval('#detail-logs li .line', (x) => x.map((e) => e.textContent)), [`step 1 ${XSS}`, `step 2 ${XSS}`])
    assert.deepEqual(await page.$$eval('#detail-logs li .attempt', (x) => x.map((e) => e.textContent)), ['#1', '#2'])
    assert.equal(await page.$$eval('#detail-logs *', (x) => x.filter((e) => !['LI', 'TIME', 'SPAN'].includes(e.tagName)).length), 0)
    assert.equal(await page.isDisabled('#retry'), true)
    await page.click('#detail-close')

    // cancel a pending job from the page
    await p.pause(type)
    const victim = await p.enqueue(type, {})
    await page.selectOption('#filter-status', 'pending')
    await page.locator(`#jobs tr[data-id="${victim.id}"]`).click()
    await page.waitForFunction(() => document.getElementById('detail').getAttribute('data-status') === 'pending')
    await page.click('#cancel')
    await page.waitForFunction(() => document.getElementById('detail').getAttribute('data-status') === 'cancelled')
    assert.equal((await p.getJob(victim.id)).status, 'cancelled')
    await page.click('#detail-close')
    await p.resume(type)

    // recurring jobs: next run shown, disable and enable from the page
    if (scheduler) {
      const name = `nightly <b>${RUN}</b>`
      await scheduler.registerRecurring({ name, type, payload: {}, schedule: '0 3 * * *' })
      const sel = `#recurring tr[data-name="${name}"]`
      await page.waitForSelector(sel)
      assert.match(await page.textContent(`${sel} td:nth-child(4)`), /\(in \d+[smh]\)/)
      await page.click(`${sel} button.toggle`)
      await page.waitForFunction((n) => [...document.querySelectorAll('#recurring tr')].some((tr) => tr.getAttribute('data-name') === n && tr.textContent.includes('disabled')), name)
      assert.equal((await scheduler.listRecurring()).find((r) => r.name === name).enabled, false)
      await page.click(`${sel} button.toggle`)
      await page.waitForFunction((n) => [...document.querySelectorAll('#recurring tr')].some((tr) => tr.getAttribute('data-name') === n && tr.textContent.includes('enabled')), name)
      assert.equal((await scheduler.listRecurring()).find((r) => r.name === name).enabled, true)
      assert.equal(await page.$$eval('#recurring b', (x) => x.length), 0)
    }

    // nothing from the data ran or became markup
    await page.selectOption('#filter-status', '')
    await sleep(600)
    assert.equal(await page.evaluate(() => window.__xss), undefined)
    assert.deepEqual(dialogs, [])
    assert.equal(await page.$$eval('img', (x) => x.length), 0)
    assert.equal(await page.$$eval('main script, #detail script', (x) => x.length), 0)
    assert.deepEqual(errors, [])

    // a phone-sized viewport: nothing wider than the screen
    await page.setViewportSize({ width: 390, height: 844 })
    await sleep(300)
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no horizontal scroll on a phone')
  } finally {
    await browser.close()
    await s.close()
    d.close()
    await w.stop()
    await running
    queue.unregisterJobHandler(type)
  }
}

test('browser: a malformed #job= fragment is ignored with a note; the page still runs', async (t) => {
  const browser = await launch(t)
  if (!browser) return
  const p = await queue.createQueueProvider({ type: 'memory' })
  const job = await p.enqueue('email', {})
  const d = queue.createDashboard({ provider: p, authorize: () => true, basePath: '/admin/queue', refreshInterval: 250 })
  const s = await listen(d)
  const errors = []
  try {
    const page = await browser.newPage()
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(`${s.url}/admin/queue/#job=%E0%A4%A`)
    await page.waitForSelector('#live-dot.ok') // init ran to its end: the page is live
    assert.equal(await page.isVisible('#hash-note'), true)
    assert.match(await page.textContent('#hash-note'), /^Ignored the link's job id: it is not valid percent-encoding \(%E0%A4%A\)\.$/)
    assert.equal(await page.isHidden('#detail'), true)
    assert.equal(await page.textContent('#count-pending'), '1')
    // a good fragment afterwards opens its job and clears the note
    await page.evaluate((id) => (location.hash = `job=${encodeURIComponent(id)}`), job.id)
    await page.waitForFunction(() => document.getElementById('detail').getAttribute('data-status') === 'pending')
    assert.equal(await page.isHidden('#hash-note'), true)
    assert.deepEqual(errors, [])
  } finally {
    await browser.close()
    await s.close()
    d.close()
    await p.close()
  }
})

test('browser: memory provider — counts, a dead job retried to completion, cancel, pause/resume, recurring, nothing in the data runs', async (t) => {
  const p = await queue.createQueueProvider({ type: 'memory' })
  const scheduler = new queue.Scheduler({ provider: p, config: { enabled: true, databaseUrl: `sqlite:${path.join(tmpRoot, 'sched.db')}?mode=rwc` } })
  await scheduler.migrate()
  try {
    await browserScenario(t, p, scheduler)
  } finally {
    await p.close()
  }
})

test('browser: postgres provider', async (t) => {
  const schema = `dashboard_${RUN}`
  let p
  try {
    p = await queue.createQueueProvider({ type: 'postgres', databaseUrl: PG_URL, schema })
  } catch (e) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL at ${PG_URL} is required in CI: ${e.message}`)
    t.skip(`PostgreSQL not reachable: ${e.message}`)
    return
  }
  try {
    await browserScenario(t, p, null)
  } finally {
    await p.close()
    const { Client } = require('pg')
    const c = new Client({ connectionString: PG_URL })
    await c.connect()
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await c.end()
  }
})

// ---- queue-worker dashboard ------------------------------------------------------------------

const { spawn } = require('node:child_process')
const BIN = path.join(__dirname, '..', 'bin', 'queue-worker.js')
const APP = path.join(__dirname, '..', 'examples', 'app')

/** `queue-worker dashboard …` in the example app; resolves once it printed its URL (or exited). */
function cliDashboard(args, env) {
  const base = { ...process.env }
  for (const k of Object.keys(base)) if (/^(QUEUE_|SCHEDULER_|SQS_)/.test(k) || k === 'DATABASE_URL') delete base[k]
  const child = spawn(process.execPath, [BIN, 'dashboard', ...args], { cwd: APP, env: { ...base, CHAASKIT_QUEUE_LOG: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (c) => (out += c))
  child.stderr.on('data', (c) => (err += c))
  return new Promise((resolve) => {
    const done = (code) => resolve({ child, code, out, err, url: null })
    child.on('exit', done)
    const check = setInterval(() => {
      const m = /dashboard: (http:\/\/\S+\/)/.exec(out)
      if (m) {
        clearInterval(check)
        child.off('exit', done)
        resolve({ child, code: null, out, err, url: m[1] })
      }
    }, 20)
    child.on('exit', () => clearInterval(check))
  })
}

/** GET through node:http so the Host header can be set. */
function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
    }).on('error', reject)
  })
}

test('queue-worker dashboard: serves the config provider on loopback; a password for other hosts', async () => {
  const db = path.join(tmpRoot, 'cli.db')
  const env = { QUEUE_PROVIDER: 'sqlite', QUEUE_SQLITE_URL: `sqlite:${db}?mode=rwc`, DATABASE_URL: `sqlite:${path.join(tmpRoot, 'cli-sched.db')}?mode=rwc` }
  const p = await queue.createQueueProvider({ type: 'sqlite', databaseUrl: `sqlite:${db}?mode=rwc` })
  await p.enqueue('email', { to: 'x' })
  const a = await cliDashboard(['--port', '0'], env)
  try {
    assert.ok(a.url, `no URL printed: ${a.out}${a.err}`)
    assert.match(a.out, /^queue-worker: dashboard: http:\/\/127\.0\.0\.1:\d+\/ provider=sqlite scheduler=on\n$/)
    assert.equal((await get(a.url)).status, 200)
    const o = JSON.parse((await get(`${a.url}api/overview`)).body)
    assert.equal(o.stats.pending, 1)
    assert.equal(o.scheduler, true)
    assert.deepEqual(JSON.parse((await get(`${a.url}api/recurring`)).body), { recurring: [] })
    // a page elsewhere resolving its own name to 127.0.0.1 (DNS rebinding) is refused
    assert.equal((await get(a.url, { host: 'evil.example:80' })).status, 403)
  } finally {
    a.child.kill('SIGTERM')
  }
  assert.equal(await new Promise((r) => a.child.on('exit', r)), 0)

  const pw = 'correct horse battery'
  const b = await cliDashboard(['--port', '0'], { ...env, QUEUE_DASHBOARD_PASSWORD: pw })
  try {
    const basic = (pass, scheme = 'Basic') => ({ authorization: `${scheme} ${Buffer.from(`me:${pass}`).toString('base64')}` })
    const no = await get(b.url)
    assert.equal(no.status, 401)
    assert.match(no.headers['www-authenticate'], /^Basic /)
    assert.match(no.headers['content-security-policy'], /default-src 'none'/, 'a 401 carries the security headers')
    assert.equal(no.headers['x-frame-options'], 'DENY')
    assert.equal((await get(b.url, basic(pw))).status, 200)
    // the scheme's case does not matter (RFC 9110)
    assert.equal((await get(b.url, basic(pw, 'basic'))).status, 200)
    assert.equal((await get(b.url, basic(pw, 'BASIC'))).status, 200)
    // repeated wrong passwords: the first few are plain 401s, then this client has to wait…
    for (let i = 0; i < 4; i++) assert.equal((await get(b.url, basic(`wrong${i}`))).status, 401, `wrong password ${i + 1}`)
    const locked = await get(b.url, basic(pw))
    assert.equal(locked.status, 429)
    assert.ok(Number(locked.headers['retry-after']) >= 1)
    assert.match(locked.headers['content-security-policy'], /default-src 'none'/)
    // …and no other client does
    const other = await new Promise((resolve, reject) => {
      http.get(b.url, { localAddress: '127.0.0.2', headers: basic(pw) }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode))
      }).on('error', reject)
    })
    assert.equal(other, 200)
  } finally {
    b.child.kill('SIGTERM')
  }

  // without a password, a request to another Host is refused with the same headers
  const h = await cliDashboard(['--port', '0'], env)
  try {
    const refused = await get(h.url, { host: 'evil.example:80' })
    assert.equal(refused.status, 403)
    assert.match(refused.headers['content-security-policy'], /default-src 'none'/)
  } finally {
    h.child.kill('SIGTERM')
  }

  // a blank password is no password; a short one is refused
  const blank = await cliDashboard(['--host', '0.0.0.0', '--port', '0'], { ...env, QUEUE_DASHBOARD_PASSWORD: '   ' })
  assert.equal(blank.code, 2)
  assert.match(blank.err, /--host 0\.0\.0\.0 is not a loopback address: set QUEUE_DASHBOARD_PASSWORD/)
  const short = await cliDashboard(['--port', '0'], { ...env, QUEUE_DASHBOARD_PASSWORD: 'pw' })
  assert.equal(short.code, 2)
  assert.match(short.err, /QUEUE_DASHBOARD_PASSWORD must be at least 12 characters, got 2/)

  const c = await cliDashboard(['--host', '0.0.0.0', '--port', '0'], env)
  assert.equal(c.code, 2)
  assert.match(c.err, /--host 0\.0\.0\.0 is not a loopback address: set QUEUE_DASHBOARD_PASSWORD/)
  const d = await cliDashboard(['--port', 'x'], env)
  assert.equal(d.code, 2)
  assert.match(d.err, /--port must be a port number from 0 to 65535, got 'x'/)
  await p.close()
})
