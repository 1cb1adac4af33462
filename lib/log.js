'use strict'
// The package's logger: its lines go through the addon's `tracing` subscriber.

const util = require('node:util')
const binding = require('./native.js')

/** Package log lines go through the addon's `tracing` subscriber (CHAASKIT_QUEUE_LOG). */
const logger = {
  error: (...a) => binding.log('error', util.format(...a)),
  warn: (...a) => binding.log('warn', util.format(...a)),
  info: (...a) => binding.log('info', util.format(...a)),
  debug: (...a) => {
    if (binding.logEnabled('debug')) binding.log('debug', util.format(...a))
  },
}

module.exports = { logger }
