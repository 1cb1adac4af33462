'use strict'
// The process-wide provider, worker and scheduler of the old JS queue's API, and the
// server's start-up and shutdown sequence over them.

const binding = require('./native.js')
const { describe } = require('./check.js')
const { logger } = require('./log.js')
const { wrapProvider, getDefaultProviderConfig, createQueueProvider } = require('./providers.js')
const { Worker } = require('./worker.js')
const { Scheduler } = require('./scheduler.js')
const { validateQueueConfig } = require('./config.js')

let provider = null

async function initializeQueueProvider(queueConfig) {
  if (provider) {
    logger.warn('Queue provider already initialized; returning the existing one')
    return provider
  }
  const c = queueConfig === undefined || queueConfig === null ? null : validateQueueConfig(queueConfig)
  provider = await createQueueProvider(c ? c.providerConfig : getDefaultProviderConfig())
  return provider
}

function getQueueProvider() {
  if (!provider) {
    logger.warn('Queue provider not initialized; using an in-memory provider')
    provider = wrapProvider(binding.createMemoryProvider())
  }
  return provider
}

async function closeQueueProvider() {
  if (provider) {
    const p = provider
    provider = null
    await p.close()
  }
}

function resetQueueProvider() {
  provider = null
}

// ---- worker ----------------------------------------------------------------------------

let worker = null

/**
 * The process-wide worker, as the old queue had it: made from `options` on the first call that
 * passes them, `null` until then and after `stopWorker()`/`resetWorker()`.
 */
function getWorker(options) {
  if (!worker && options !== undefined && options !== null) {
    if (typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
    worker = new Worker(options)
  }
  return worker
}

/** Start the process-wide worker in the background; returns it (the running one, with a warning, when there is one). */
function startWorker(options = {}) {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
  if (worker) logger.warn('Worker already exists; starting the existing one')
  const w = getWorker({ provider: options.provider || getQueueProvider(), config: options.config })
  if (!w.isRunning()) w.start().catch((e) => logger.error(`worker stopped with an error: ${e && e.message}`))
  return w
}

/** Stop the process-wide worker (waiting up to `shutdownTimeout` for running jobs) and forget it. */
async function stopWorker() {
  const w = worker
  if (w) {
    await w.stop()
    if (worker === w) worker = null
  }
}

/** Forget the process-wide worker (stopping it in the background if it runs, so it lets the process exit). */
function resetWorker() {
  const w = worker
  worker = null
  if (w) w.stop().catch((e) => logger.error(`stopping the worker failed: ${e && e.message}`))
}

// ---- scheduler ----------------------------------------------------------------------------

let scheduler = null

/**
 * The process-wide scheduler, as the old queue had it: made from `options` on the first call
 * that passes them, `null` until then (so `if (!getScheduler())` tells that it is off) and
 * after `stopScheduler()`/`resetScheduler()`.
 */
function getScheduler(options) {
  if (!scheduler && options !== undefined && options !== null) {
    if (typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
    scheduler = new Scheduler({ provider: options.provider || getQueueProvider(), config: options.config })
  }
  return scheduler
}

/** Start the process-wide scheduler (the existing one, with a warning, when there is one); resolves with it once it is running. */
async function startScheduler(options = {}) {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
  if (scheduler) logger.warn('Scheduler already exists; starting the existing one')
  const s = getScheduler(options)
  if (!s.isRunning()) await s.start()
  return s
}

/** Stop the process-wide scheduler and forget it. */
async function stopScheduler() {
  const s = scheduler
  if (s) {
    await s.stop()
    if (scheduler === s) scheduler = null
  }
}

/** Forget the process-wide scheduler (stopping it in the background if it runs). */
function resetScheduler() {
  const s = scheduler
  scheduler = null
  if (s && s.isRunning()) s.stop().catch((e) => logger.error(`stopping the scheduler failed: ${e && e.message}`))
}

/** The server's start-up: provider, then the in-process worker, then the scheduler. */
async function initializeQueue(queueConfig) {
  const c = validateQueueConfig(queueConfig ?? { enabled: false })
  const p = await initializeQueueProvider(c)
  if (!c.enabled) return { provider: p, worker: null, scheduler: null }
  const w = c.worker.mode === 'in-process' ? startWorker({ provider: p, config: c.worker }) : null
  const s = c.scheduler.enabled ? await startScheduler({ provider: p, config: c.scheduler }) : null
  return { provider: p, worker: w, scheduler: s }
}

/** The orderly reverse of `initializeQueue`. */
async function shutdownQueue() {
  await stopScheduler()
  resetScheduler()
  await stopWorker()
  resetWorker()
  await closeQueueProvider()
}

module.exports = { initializeQueueProvider, getQueueProvider, closeQueueProvider, resetQueueProvider, getWorker, startWorker, stopWorker, resetWorker, getScheduler, startScheduler, stopScheduler, resetScheduler, initializeQueue, shutdownQueue }
