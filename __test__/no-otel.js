// Preloaded (`node -r`) to run a process as if `@opentelemetry/api` were not installed: its
// resolution fails with MODULE_NOT_FOUND, as in an app without the package.
'use strict'
const Module = require('node:module')
const resolve = Module._resolveFilename
Module._resolveFilename = function (request, ...rest) {
  if (request === '@opentelemetry/api' || request.startsWith('@opentelemetry/')) {
    const e = new Error(`Cannot find module '${request}'`)
    e.code = 'MODULE_NOT_FOUND'
    throw e
  }
  return resolve.call(this, request, ...rest)
}
