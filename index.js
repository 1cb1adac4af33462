'use strict'
// @chaaskit/queue — the package entry: it re-exports the modules of lib/ (see README,
// "Development"). JavaScript glue only; the queue itself is the native addon.

const { createQueueProvider, getDefaultProviderConfig } = require('./lib/providers.js')
const {
  registerJobHandler,
  getJobHandler,
  hasJobHandler,
  getRegisteredJobTypes,
  unregisterJobHandler,
  clearJobHandlers,
  executeJob,
} = require('./lib/registry.js')
const { Worker } = require('./lib/worker.js')
const { createQueueEvents } = require('./lib/events.js')
const { getMetrics } = require('./lib/metrics.js')
const { Scheduler, nextRuns } = require('./lib/scheduler.js')
const { validateQueueConfig, redactUrl, loadJobHandlers } = require('./lib/config.js')
const {
  initializeQueueProvider,
  getQueueProvider,
  closeQueueProvider,
  resetQueueProvider,
  startWorker,
  stopWorker,
  getWorker,
  resetWorker,
  initializeQueue,
  shutdownQueue,
  getScheduler,
  startScheduler,
  stopScheduler,
  resetScheduler,
} = require('./lib/singletons.js')
const { logger } = require('./lib/log.js')

// One object literal, so ES-module importers (`import { x }`, `export * from`) see every name.
// A name, not `key: require(…)`: Node 24's CommonJS lexer reads the latter as a re-export of
// the whole module, which would add the dashboard's own names to the package's ES view.
const { createDashboard } = require('./dashboard/index.js')

module.exports = {
  createQueueProvider,
  initializeQueueProvider,
  getQueueProvider,
  closeQueueProvider,
  resetQueueProvider,
  getDefaultProviderConfig,
  registerJobHandler,
  getJobHandler,
  hasJobHandler,
  getRegisteredJobTypes,
  unregisterJobHandler,
  clearJobHandlers,
  executeJob,
  Worker,
  createQueueEvents,
  getMetrics,
  startWorker,
  stopWorker,
  getWorker,
  resetWorker,
  validateQueueConfig,
  redactUrl,
  initializeQueue,
  shutdownQueue,
  loadJobHandlers,
  Scheduler,
  getScheduler,
  startScheduler,
  stopScheduler,
  resetScheduler,
  nextRuns,
  logger,
  createDashboard,
}
