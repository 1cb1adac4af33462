'use strict'
// Argument checks and JSON translation of what callers pass: errors name the field and value.

const util = require('node:util')

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'function') return `[function ${v.name || 'anonymous'}]`
  if (typeof v === 'symbol') return v.toString()
  if (v instanceof Date) return `Date(${isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()})`
  try {
    return util.inspect(v, { depth: 1, breakLength: Infinity })
  } catch {
    return Object.prototype.toString.call(v)
  }
}

function checkType(type, name = 'type') {
  if (typeof type !== 'string' || type.length === 0) {
    throw new TypeError(`${name} must be a non-empty string, got ${describe(type)}`)
  }
  return type
}

function rejectUnserialisable(key, value) {
  const t = typeof value
  if (t === 'function' || t === 'symbol') {
    throw new TypeError(`cannot carry a ${t}${key ? ` at key ${JSON.stringify(key)}` : ''}`)
  }
  return value
}

/** The payload as JSON text; TypeError naming `name` when JSON cannot carry it. */
function payloadJson(payload, name = 'payload') {
  let json
  try {
    json = JSON.stringify(payload === undefined ? null : payload, rejectUnserialisable)
  } catch (e) {
    throw new TypeError(`${name} cannot be serialised to JSON: ${e.message}`)
  }
  return json
}

/**
 * `enqueueBulk` items in the native form, which checks them (it reads `items` again to say
 * what is wrong with an item): `n` is their count (0 when `items` is no array), `flat` is
 * `[type, payload, …]` as one JSON text, `optionItems` and `options` the indexes and options
 * of the items that have them, or undefined.
 */
function bulkArgs(items) {
  const n = Array.isArray(items) ? items.length : 0
  const flat = new Array(2 * n)
  let optionItems
  let options
  for (let i = 0; i < n; i++) {
    const it = items[i]
    flat[2 * i] = it?.type
    const payload = it?.payload
    flat[2 * i + 1] = payload === undefined ? null : payload
    const o = it?.options
    if (o !== undefined && o !== null) {
      ;(optionItems ??= []).push(i)
      ;(options ??= []).push(o)
    }
  }
  return { n, flat: flatJson(flat, n), optionItems, options }
}

/** `[type, payload, …]` as JSON; a payload JSON cannot carry is a TypeError naming its item. */
function flatJson(flat, n) {
  try {
    return JSON.stringify(flat, rejectUnserialisable)
  } catch {
    // A type that is not a string crosses as null (the native side says what is wrong with it).
    for (let i = 0; i < n; i++) if (typeof flat[2 * i] !== 'string') flat[2 * i] = null
    for (let i = 0; i < n; i++) payloadJson(flat[2 * i + 1], `items[${i}].payload`)
    return JSON.stringify(flat, rejectUnserialisable)
  }
}

function errorMessage(e) {
  if (e instanceof Error) return e.message || e.name || 'Error'
  if (typeof e === 'string') return e
  if (e === undefined) return 'Job failed (rejected with undefined)'
  try {
    return `Job failed: ${JSON.stringify(e)}`
  } catch {
    // Neither JSON (a cycle, a throwing getter) nor String() (a null-prototype object) may work.
    return `Job failed: ${describe(e)}`
  }
}

/**
 * An invalid-value `Error` of the addon (`ERR_QUEUE_INVALID`, or napi's own `InvalidArg` when it
 * cannot convert an argument) as a `RangeError`, message and `code` kept; others as they are.
 */
function rangeError(e) {
  if (!(e instanceof Error) || e instanceof TypeError || e instanceof RangeError) return e
  if (e.code !== 'ERR_QUEUE_INVALID' && e.code !== 'InvalidArg') return e
  const r = new RangeError(e.message)
  r.code = e.code
  return r
}

module.exports = { rangeError, describe, checkType, rejectUnserialisable, payloadJson, bulkArgs, errorMessage }
