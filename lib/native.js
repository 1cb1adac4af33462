'use strict'
// The addon, its errors carrying their `code` (`ERR_QUEUE_…`, README "Error codes"). napi gives
// an error no field but its message and a `code` named after a napi status, so the binding puts
// the code of the error's kind in its `cause` (src/bridge.rs `coded`); this module moves it to
// `code`, once at load, around every method of the addon's classes and every function.

const binding = require('../binding.js')

const CODE = /^ERR_QUEUE_[A-Z_]+$/

/** `e` with the code the binding put in its `cause` as its `code`. */
function coded(e) {
  const cause = e !== null && typeof e === 'object' ? e.cause : undefined
  if (cause instanceof Error && CODE.test(cause.message)) {
    e.code = cause.message
    delete e.cause
  }
  return e
}

const rethrow = (e) => {
  throw coded(e)
}

/** `f` whose thrown errors and rejections are `coded`. */
function coding(f) {
  return function (...args) {
    let r
    try {
      r = f.apply(this, args)
    } catch (e) {
      throw coded(e)
    }
    return r instanceof Promise ? r.catch(rethrow) : r
  }
}

for (const [name, value] of Object.entries(binding)) {
  if (typeof value !== 'function') continue
  const proto = value.prototype
  const methods = proto ? Object.getOwnPropertyNames(proto).filter((m) => m !== 'constructor') : []
  if (methods.length === 0) {
    binding[name] = coding(value)
    continue
  }
  // A class: its constructor throws config errors, which carry their code already.
  for (const m of methods) {
    const d = Object.getOwnPropertyDescriptor(proto, m)
    if (typeof d.value === 'function') Object.defineProperty(proto, m, { ...d, value: coding(d.value) })
  }
}

module.exports = binding
