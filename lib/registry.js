'use strict'
// The process's job handlers, by job type.

const { describe, checkType } = require('./check.js')
const { logger } = require('./log.js')

const handlers = new Map()

function registerJobHandler(type, handler, description) {
  checkType(type)
  if (typeof handler !== 'function') throw new TypeError(`handler for ${JSON.stringify(type)} must be a function, got ${describe(handler)}`)
  if (description !== undefined && typeof description !== 'string') {
    throw new TypeError(`description must be a string, got ${describe(description)}`)
  }
  if (handlers.has(type)) logger.warn(`Job handler for ${JSON.stringify(type)} is already registered; overwriting it`)
  handlers.set(type, { handler, description })
}

const getJobHandler = (type) => handlers.get(type)
const hasJobHandler = (type) => handlers.has(type)
const getRegisteredJobTypes = () => [...handlers.keys()]
const unregisterJobHandler = (type) => handlers.delete(type)
const clearJobHandlers = () => handlers.clear()

/** Run the handler registered for `job.type`. Rejects when none is registered. */
async function executeJob(job, ctx) {
  if (job === null || typeof job !== 'object') throw new TypeError(`job must be an object, got ${describe(job)}`)
  const entry = handlers.get(job.type)
  // A type that is no string (a symbol would not even convert) is shown as describe() shows it.
  if (!entry) throw new Error(`No handler registered for job type: ${typeof job.type === 'string' ? job.type : describe(job.type)}`)
  return entry.handler(job, ctx)
}

module.exports = { registerJobHandler, getJobHandler, hasJobHandler, getRegisteredJobTypes, unregisterJobHandler, clearJobHandlers, executeJob }
