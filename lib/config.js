'use strict'
// The `queue` config block checked by the native side, URL redaction, and loading handler files.

const path = require('node:path')
const fs = require('node:fs')
const { pathToFileURL } = require('node:url')
const binding = require('./native.js')
const { describe, checkType } = require('./check.js')

// ---- start-up sequence -----------------------------------------------------------------

/**
 * The whole `queue` block checked, with defaults filled in, by the native side (the one place
 * that knows the defaults and rules). Errors name the path at fault, e.g.
 * `queue.providerConfig.queueUrl is required when type is 'sqs', got undefined`. A disabled
 * queue's provider settings are not checked (it runs on the default memory provider).
 */
function validateQueueConfig(queueConfig, name = 'queue') {
  return binding.validateQueueConfig(queueConfig, checkType(name, 'name'))
}

/** `url` with its password, if any, replaced by `***` (for logs and messages). */
function redactUrl(url) {
  if (typeof url !== 'string') throw new TypeError(`url must be a string, got ${describe(url)}`)
  return binding.redactUrl(url)
}

/** Import every `*.ts`/`*.js` handler file in `dir` (not `index.*`), in name order. */
async function loadJobHandlers(dir = 'extensions/jobs') {
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError(`dir must be a non-empty string, got ${describe(dir)}`)
  const abs = path.resolve(dir)
  if (!fs.existsSync(abs)) return []
  const files = fs
    .readdirSync(abs)
    .filter((f) => /\.(ts|js|mjs|cjs|mts|cts)$/.test(f) && !/^index\./.test(f) && !f.endsWith('.d.ts'))
    .sort()
  const loaded = []
  for (const f of files) {
    await import(pathToFileURL(path.join(abs, f)).href)
    loaded.push(path.join(abs, f))
  }
  return loaded
}

module.exports = { validateQueueConfig, redactUrl, loadJobHandlers }
