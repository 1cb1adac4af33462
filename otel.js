'use strict'
// OpenTelemetry tracing for @chaaskit/queue, used by index.js. `@opentelemetry/api` is an
// optional peer dependency: it is required on first use, and when it is missing, when
// CHAASKIT_QUEUE_TELEMETRY=off, or while no tracer provider is registered, every function
// here returns null/does nothing after one check, so jobs pay nothing for tracing.
//
// Spans follow the OpenTelemetry messaging semantic conventions: a PRODUCER span
// `send <type>` per enqueue call (one per `enqueueBulk`, with `messaging.batch.message_count`)
// and a CONSUMER span `process <type>` per attempt, whose parent is the producer span: the
// W3C trace context of the enqueue travels with the job (the job's `options.traceparent`
// and `options.tracestate`, kept by every provider; an SQS message attribute on SQS).

const SCOPE = '@chaaskit/queue'
const VERSION = require('./package.json').version

/** The API module, `false` when it is missing or turned off; `undefined` before the first look. */
let api
/** `api.trace`'s registered provider is this while none is registered. */
let noopProvider
let tracerFor = null // the provider `tracer` was made by
let tracer = null
let CONSUMER

function load() {
  api = false
  if (/^(off|false|0|no)$/i.test(process.env.CHAASKIT_QUEUE_TELEMETRY || '')) return
  try {
    api = require('@opentelemetry/api')
  } catch (e) {
    if (e && e.code !== 'MODULE_NOT_FOUND') throw e
    return
  }
  noopProvider = new api.ProxyTracerProvider().getDelegate()
  CONSUMER = api.SpanKind.CONSUMER
}

/** This package's tracer while a tracer provider is registered, else null (cheap: call it per job or per batch). */
function activeTracer() {
  if (api === undefined) load()
  if (api === false) return null
  let p = api.trace.getTracerProvider()
  if (typeof p.getDelegate === 'function') p = p.getDelegate()
  if (p === noopProvider) return null
  if (p !== tracerFor) {
    tracerFor = p
    tracer = p.getTracer(SCOPE, VERSION)
  }
  return tracer
}

/** `messaging.system`: SQS by its semantic-conventions name, the others as this package. */
const system = (provider) => (provider === 'sqs' ? 'aws_sqs' : 'chaaskit_queue')

/**
 * A PRODUCER span for one `enqueue` (`what` is the job type) or `enqueueBulk` (`what` is the
 * items) on `provider`, or a Scheduler's `schedule`, child of the caller's active span; null
 * when tracing is off.
 */
function startSend(provider, what, operation = Array.isArray(what) ? 'enqueueBulk' : 'enqueue') {
  const t = activeTracer()
  if (t === null) return null
  const bulk = Array.isArray(what)
  const count = bulk ? what.length : 1
  let type = what
  if (bulk) {
    type = what.length > 0 ? what[0].type : null
    for (let i = 1; i < what.length && type !== null; i++) if (what[i].type !== type) type = null
  }
  const attributes = {
    'messaging.system': system(provider),
    'messaging.operation.type': 'send',
    'messaging.operation.name': operation,
    'chaaskit.queue.provider': provider,
  }
  if (type !== null) attributes['messaging.destination.name'] = type
  if (bulk) attributes['messaging.batch.message_count'] = count
  return t.startSpan(type === null ? 'send' : `send ${type}`, { kind: api.SpanKind.PRODUCER, attributes })
}

/** The span's W3C trace context: `{ traceparent, tracestate? }`. */
function traceOf(span) {
  const c = span.spanContext()
  const out = { traceparent: `00-${c.traceId}-${c.spanId}-${c.traceFlags & 1 ? '01' : '00'}` }
  const state = c.traceState && c.traceState.serialize()
  if (state) out.tracestate = state
  return out
}

/**
 * The caller's enqueue options with the span's trace context added; options that are not an
 * object are passed on as they are, for the native side to refuse with its own message.
 */
function withTrace(span, options) {
  if (options == null) return traceOf(span)
  if (typeof options !== 'object') return options
  return Object.assign({ ...options }, traceOf(span))
}

/** `call()`'s result (a job or jobs) once it settles, the send span ended with its outcome. */
async function sending(span, call) {
  let out
  try {
    out = await call()
  } catch (e) {
    fail(span, e)
    span.end()
    throw e
  }
  if (!Array.isArray(out)) span.setAttribute('messaging.message.id', out.id)
  span.end()
  return out
}

function fail(span, error) {
  if (error instanceof Error) span.recordException(error)
  span.setAttribute('error.type', error instanceof Error ? error.name || 'Error' : typeof error)
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
}

/** The parent context of a job's attempt: the enqueue's span, from the job's trace context. */
function jobContext(job) {
  const tp = job.options && job.options.traceparent
  if (typeof tp !== 'string') return api.context.active()
  // Checked by the native side (job.rs `is_traceparent`): `00-<trace id>-<span id>-<flags>`.
  const parent = {
    traceId: tp.slice(3, 35),
    spanId: tp.slice(36, 52),
    traceFlags: parseInt(tp.slice(53, 55), 16) & 1,
    isRemote: true,
  }
  if (typeof job.options.tracestate === 'string') parent.traceState = api.createTraceState(job.options.tracestate)
  return api.trace.setSpanContext(api.context.active(), parent)
}

/**
 * Start a CONSUMER span for one attempt of `job` (`t`: the tracer `activeTracer` gave) and
 * store it and its context on `run` (`run.span`, `run.context`): no object per job beyond
 * the span, its attributes and its context.
 */
function startProcess(t, provider, job, run) {
  const parent = jobContext(job)
  const span = t.startSpan(
    `process ${job.type}`,
    {
      kind: CONSUMER,
      attributes: {
        'messaging.system': provider === 'sqs' ? 'aws_sqs' : 'chaaskit_queue',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': job.type,
        'messaging.message.id': job.id,
        'chaaskit.queue.provider': provider,
        'chaaskit.queue.job.attempt': job.attempts,
      },
    },
    parent,
  )
  run.span = span
  run.context = api.trace.setSpan(parent, span)
}

/** Call `fn(a, b)` with `context` active (so spans `fn` makes are children of the attempt's). */
const runIn = (context, fn, a, b) => api.context.with(context, fn, undefined, a, b)

/** End an attempt's span: OK, or ERROR with the exception recorded (`willRetry` as an attribute). */
function endProcess(span, error, willRetry) {
  if (error !== undefined) {
    fail(span, error)
    span.setAttribute('chaaskit.queue.job.will_retry', willRetry)
  }
  span.end()
}

module.exports = { activeTracer, startSend, traceOf, withTrace, sending, startProcess, runIn, endProcess }
