'use strict'
// The dashboard page. Data reaches the DOM only as text (textContent, attribute values
// through setAttribute, SVG built with createElementNS): never as HTML.
;(function () {
  const STATUSES = ['pending', 'scheduled', 'processing', 'completed', 'failed', 'dead', 'cancelled']
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).getAttribute('content')
  const TOKEN = meta('queue-token')
  const REFRESH = Number(meta('queue-refresh')) || 2000
  const $ = (id) => document.getElementById(id)

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue
      if (k === 'onclick') e.addEventListener('click', v)
      else e.setAttribute(k, v === true ? '' : String(v))
    }
    for (const c of children) {
      if (c === undefined || c === null) continue
      e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c)
    }
    return e
  }

  async function api(path, body) {
    const init = body === undefined ? { headers: { Accept: 'application/json' } } : {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json', 'X-Queue-Dashboard-Token': TOKEN },
      body: JSON.stringify(body),
    }
    init.credentials = 'same-origin'
    const r = await fetch(path, init)
    let data = null
    try {
      data = await r.json()
    } catch {
      data = null
    }
    if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`)
    return data
  }

  const showError = (e) => {
    const p = $('error')
    if (e) {
      p.textContent = String(e && e.message ? e.message : e)
      p.hidden = false
    } else p.hidden = true
  }

  const fmtTime = (v) => {
    if (v === undefined || v === null) return '—'
    const d = new Date(v)
    if (isNaN(d.getTime())) return '—'
    return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' })
  }

  const ago = (v) => {
    if (v === undefined || v === null) return ''
    const s = Math.round((Date.now() - new Date(v).getTime()) / 1000)
    const a = Math.abs(s)
    const t = a < 60 ? `${a}s` : a < 3600 ? `${Math.round(a / 60)}m` : a < 86400 ? `${Math.round(a / 3600)}h` : `${Math.round(a / 86400)}d`
    return s >= 0 ? `${t} ago` : `in ${t}`
  }

  const json = (v) => {
    if (v === undefined) return '—'
    try {
      return JSON.stringify(v, null, 2)
    } catch {
      return String(v)
    }
  }

  // ---- state ------------------------------------------------------------------------------
  const state = {
    filter: { status: '', type: '' },
    cursors: [null], // cursor of each page seen; the last is the current page's
    next: null,
    openJob: null,
    types: new Set(),
  }

  // ---- counts -----------------------------------------------------------------------------
  function buildCounts() {
    const box = $('counts')
    for (const s of STATUSES) {
      box.append(
        el('button', { type: 'button', class: `count s-${s}`, 'data-status': s, onclick: () => setFilter({ status: s }) },
          el('span', { class: 'n', id: `count-${s}` }, '–'),
          el('span', { class: 'label' }, s)),
      )
      $('filter-status').append(el('option', { value: s }, s))
    }
  }

  function renderOverview(o) {
    for (const s of STATUSES) $(`count-${s}`).textContent = String(o.stats[s] ?? 0)
    const p = o.paused
    $('paused-text').textContent = p.length === 0 ? 'nothing paused' : p.includes(null) ? 'every type paused' + (p.length > 1 ? ` (and ${p.filter((x) => x !== null).join(', ')})` : '') : `paused: ${p.join(', ')}`
    document.body.classList.toggle('paused-all', p.includes(null))
    renderChart(o.throughput)
    $('recurring-panel').hidden = !o.scheduler
  }

  // ---- throughput chart (inline SVG) -------------------------------------------------------
  const SVG = 'http://www.w3.org/2000/svg'
  const svg = (tag, attrs) => {
    const e = document.createElementNS(SVG, tag)
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v))
    return e
  }

  function renderChart(t) {
    const W = 600
    const H = 110
    const n = t.counts.length
    const max = Math.max(1, ...t.counts)
    const total = t.counts.reduce((a, b) => a + b, 0)
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'chart-svg' })
    root.append(svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'axis' }))
    const bw = W / n
    t.counts.forEach((c, i) => {
      const h = (c / max) * (H - 4)
      const r = svg('rect', { x: i * bw + 1, y: H - h, width: Math.max(1, bw - 2), height: h, class: 'bar' })
      const title = svg('title', {})
      title.textContent = `${c} completed, ${new Date(t.start + i * t.bucketMs).toLocaleTimeString()}`
      r.append(title)
      root.append(r)
    })
    $('chart-max').textContent = `${max} per ${t.bucketMs / 1000} s`
    $('chart-from').textContent = `−${Math.round((n * t.bucketMs) / 60000)} min`
    $('chart').replaceChildren(root)
    const mins = (n * t.bucketMs) / 60000
    $('throughput-hint').textContent = `${total} completed in the last ${mins} min · ${(total / (mins * 60)).toFixed(2)}/s`
  }

  // ---- job list ---------------------------------------------------------------------------
  const badge = (s) => el('span', { class: `badge s-${s}` }, s)

  let shownJobs = ''
  function renderJobs(page) {
    // Rows are rebuilt only when the page changed (a poll usually brings the same rows).
    const key = JSON.stringify([page, state.cursors.length, Math.floor(Date.now() / 10000)])
    if (key === shownJobs) return
    shownJobs = key
    const body = $('jobs')
    const rows = page.jobs.map((j) => {
      state.types.add(j.type)
      return el('tr', { 'data-id': j.id, tabindex: 0, onclick: () => openJob(j.id) },
        el('td', { class: 'id', 'data-label': 'Job' }, el('a', { href: `#job=${encodeURIComponent(j.id)}` }, j.id)),
        el('td', { 'data-label': 'Type' }, j.type),
        el('td', { 'data-label': 'Status' }, badge(j.status)),
        el('td', { 'data-label': 'Attempts' }, `${j.attempts}${j.maxRetries !== undefined ? ` / ${j.maxRetries + 1}` : ''}`),
        el('td', { 'data-label': 'Created', title: fmtTime(j.createdAt) }, ago(j.createdAt)),
        el('td', { class: 'err', 'data-label': 'Last error' }, j.lastError || ''),
      )
    })
    body.replaceChildren(...rows)
    $('jobs-empty').hidden = rows.length !== 0
    state.next = page.nextCursor
    $('next').disabled = page.nextCursor === null
    $('prev').disabled = state.cursors.length <= 1
    $('first').disabled = state.cursors.length <= 1
    $('page-text').textContent = `page ${state.cursors.length}${state.filter.status ? ` · ${state.filter.status}` : ''}${state.filter.type ? ` · ${state.filter.type}` : ''}`
    $('types').replaceChildren(...[...state.types].sort().slice(0, 200).map((t) => el('option', { value: t })))
  }

  function jobsQuery() {
    const q = new URLSearchParams()
    if (state.filter.status) q.set('status', state.filter.status)
    if (state.filter.type) q.set('type', state.filter.type)
    const c = state.cursors[state.cursors.length - 1]
    if (c) q.set('cursor', c)
    q.set('limit', '25')
    return `api/jobs?${q}`
  }

  async function loadJobs() {
    renderJobs(await api(jobsQuery()))
  }

  function setFilter(f) {
    Object.assign(state.filter, f)
    $('filter-status').value = state.filter.status
    $('filter-type').value = state.filter.type
    state.cursors = [null]
    loadJobs().then(() => showError(null), showError)
  }

  // ---- job detail -------------------------------------------------------------------------
  function field(dl, name, value) {
    dl.append(el('dt', {}, name), el('dd', {}, value === undefined || value === null || value === '' ? '—' : String(value)))
  }

  function renderDetail(job) {
    $('detail-title').textContent = `Job ${job.id}`
    const dl = $('detail-fields')
    dl.replaceChildren()
    field(dl, 'Type', job.type)
    const st = el('dd', {}, badge(job.status))
    dl.append(el('dt', {}, 'Status'), st)
    field(dl, 'Attempts', `${job.attempts} of ${job.options ? job.options.maxRetries + 1 : '?'}`)
    if (job.options) {
      field(dl, 'Priority', job.options.priority)
      field(dl, 'Timeout', `${job.options.timeout} ms`)
      if (job.options.deduplicationKey !== undefined) field(dl, 'Deduplication key', job.options.deduplicationKey)
    }
    field(dl, 'Created', `${fmtTime(job.createdAt)} (${ago(job.createdAt)})`)
    if (job.scheduledFor) field(dl, 'Scheduled for', `${fmtTime(job.scheduledFor)} (${ago(job.scheduledFor)})`)
    field(dl, 'Started', job.startedAt ? `${fmtTime(job.startedAt)} (${ago(job.startedAt)})` : null)
    field(dl, 'Finished', job.completedAt ? `${fmtTime(job.completedAt)} (${ago(job.completedAt)})` : null)
    if (job.startedAt && job.completedAt) field(dl, 'Ran for', `${new Date(job.completedAt) - new Date(job.startedAt)} ms`)
    const pct = typeof job.progress === 'number' ? job.progress : 0
    $('detail-progress').style.width = `${Math.max(0, Math.min(100, pct))}%`
    $('detail-progress').textContent = typeof job.progress === 'number' ? `${job.progress}%` : ''
    $('detail-error').textContent = job.lastError || '—'
    $('detail-payload').textContent = json(job.payload)
    $('detail-result').textContent = json(job.result)
    $('retry').disabled = !(job.status === 'dead' || job.status === 'failed')
    $('cancel').disabled = !['pending', 'scheduled', 'failed', 'processing'].includes(job.status)
    $('detail').setAttribute('data-status', job.status)
  }

  /** The job's `ctx.log` lines, as text: time, attempt, line. */
  function renderLogs(logs) {
    const note = $('detail-logs-note')
    const lines = logs ? logs.lines : []
    const notes = []
    if (logs === null || logs === undefined) notes.push('This provider keeps no log lines.')
    else if (lines.length === 0) notes.push('No log lines.')
    if (logs && logs.dropped > 0) notes.push(`${logs.dropped} earlier line${logs.dropped === 1 ? '' : 's'} dropped (the cap is the newest 100 lines / 32 KiB).`)
    note.textContent = notes.join(' ')
    note.hidden = notes.length === 0
    $('detail-logs').replaceChildren(...lines.map((l) =>
      el('li', {},
        el('time', { datetime: l.at, title: fmtTime(l.at) }, new Date(l.at).toLocaleTimeString()),
        el('span', { class: 'attempt' }, `#${l.attempt}`),
        el('span', { class: 'line' }, l.line))))
  }

  async function loadDetail() {
    if (!state.openJob) return
    try {
      const r = await api(`api/jobs/${encodeURIComponent(state.openJob)}`)
      renderDetail(r.job)
      renderLogs(r.logs)
    } catch (e) {
      $('detail-error').textContent = String(e.message || e)
    }
  }

  function openJob(id) {
    if (location.hash !== `#job=${encodeURIComponent(id)}`) location.hash = `job=${encodeURIComponent(id)}`
    else showJob(id)
  }

  function showJob(id) {
    state.openJob = id
    $('detail').hidden = false
    document.body.classList.add('modal')
    loadDetail()
  }

  function closeJob() {
    state.openJob = null
    $('detail').hidden = true
    document.body.classList.remove('modal')
    if (location.hash) history.replaceState(null, '', location.pathname + location.search)
  }

  /** Open the job the fragment names; a fragment that does not decode is ignored, with a note. */
  function fromHash() {
    const m = /^#job=(.+)$/.exec(location.hash)
    let id = null
    if (m) {
      try {
        id = decodeURIComponent(m[1])
      } catch {
        id = null
      }
    }
    const note = $('hash-note')
    note.hidden = !m || id !== null
    note.textContent = note.hidden ? '' : `Ignored the link's job id: it is not valid percent-encoding (${m[1].slice(0, 80)}).`
    if (id !== null) showJob(id)
    else if (state.openJob) closeJob()
  }

  async function act(path, body = {}) {
    try {
      const r = await api(path, body)
      showError(r && r.ok === false ? 'Nothing changed: the job is not in a state that allows it.' : null)
    } catch (e) {
      showError(e)
    }
    await refresh()
  }

  // ---- recurring jobs ---------------------------------------------------------------------
  let shownRecurring = ''
  function renderRecurring(list) {
    if (list === null) return
    const key = JSON.stringify([list, Math.floor(Date.now() / 10000)])
    if (key === shownRecurring) return
    shownRecurring = key
    const rows = list.map((r) =>
      el('tr', { 'data-name': r.name },
        el('td', { 'data-label': 'Name' }, r.name),
        el('td', { 'data-label': 'Type' }, r.type),
        el('td', { 'data-label': 'Schedule' }, `${r.schedule}${r.timezone && r.timezone !== 'UTC' ? ` (${r.timezone})` : ''}`),
        el('td', { 'data-label': 'Next run', title: fmtTime(r.nextRunAt) }, r.enabled && r.nextRunAt ? `${fmtTime(r.nextRunAt)} (${ago(r.nextRunAt)})` : '—'),
        el('td', { 'data-label': 'Last run', title: r.lastError || '' }, r.lastRunAt ? ago(r.lastRunAt) : '—', r.lastError ? el('span', { class: 'err' }, ` ${r.lastError}`) : null),
        el('td', { 'data-label': 'State' }, el('span', { class: `badge ${r.enabled ? 's-completed' : 's-cancelled'}` }, r.enabled ? 'enabled' : 'disabled')),
        el('td', {}, el('button', { type: 'button', class: 'toggle', onclick: () => act(`api/recurring/${encodeURIComponent(r.name)}/${r.enabled ? 'disable' : 'enable'}`) }, r.enabled ? 'Disable' : 'Enable')),
      ),
    )
    $('recurring').replaceChildren(...rows)
    $('recurring-empty').hidden = rows.length !== 0
  }

  // ---- live updates (polling) --------------------------------------------------------------
  let timer = null
  let inFlight = null

  async function refreshOnce() {
    const overview = await api('api/overview')
    renderOverview(overview)
    const tasks = [loadJobs(), loadDetail()]
    if (overview.scheduler) tasks.push(api('api/recurring').then((r) => renderRecurring(r.recurring)))
    await Promise.all(tasks)
  }

  function refresh() {
    if (!inFlight) {
      inFlight = refreshOnce()
        .then(() => {
          $('live-dot').className = 'dot ok'
          $('live-text').textContent = `live · ${new Date().toLocaleTimeString()}`
          showError(null)
        }, (e) => {
          $('live-dot').className = 'dot bad'
          $('live-text').textContent = 'disconnected'
          showError(e)
        })
        .finally(() => {
          inFlight = null
        })
    }
    return inFlight
  }

  function loop() {
    clearTimeout(timer)
    timer = setTimeout(async () => {
      if (!document.hidden) await refresh()
      loop()
    }, REFRESH)
  }

  // ---- wiring -----------------------------------------------------------------------------
  function init() {
    buildCounts()
    $('apply').addEventListener('click', () => setFilter({ status: $('filter-status').value, type: $('filter-type').value.trim() }))
    $('filter-status').addEventListener('change', () => setFilter({ status: $('filter-status').value }))
    $('filter-type').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') setFilter({ type: $('filter-type').value.trim() })
    })
    $('next').addEventListener('click', () => {
      if (state.next === null) return
      state.cursors.push(state.next)
      loadJobs().catch(showError)
    })
    $('prev').addEventListener('click', () => {
      if (state.cursors.length > 1) state.cursors.pop()
      loadJobs().catch(showError)
    })
    $('first').addEventListener('click', () => {
      state.cursors = [null]
      loadJobs().catch(showError)
    })
    const pauseType = () => {
      const t = $('pause-type').value.trim()
      return t === '' ? {} : { type: t }
    }
    $('pause').addEventListener('click', () => act('api/pause', pauseType()))
    $('resume').addEventListener('click', () => act('api/resume', pauseType()))
    $('retry').addEventListener('click', () => state.openJob && act(`api/jobs/${encodeURIComponent(state.openJob)}/retry`))
    $('cancel').addEventListener('click', () => state.openJob && act(`api/jobs/${encodeURIComponent(state.openJob)}/cancel`))
    $('detail-close').addEventListener('click', closeJob)
    $('detail').addEventListener('click', (e) => {
      if (e.target === $('detail')) closeJob()
    })
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && state.openJob) closeJob()
    })
    $('jobs').addEventListener('keydown', (e) => {
      const tr = e.target.closest && e.target.closest('tr[data-id]')
      if (tr && e.key === 'Enter') openJob(tr.getAttribute('data-id'))
    })
    window.addEventListener('hashchange', fromHash)
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) refresh()
    })
    fromHash()
    refresh().finally(loop)
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init)
  else init()
})()
