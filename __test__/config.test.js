'use strict'
// validateQueueConfig: the whole `queue` block checked at start, errors naming the path.
const test = require('node:test')
const assert = require('node:assert/strict')
const q = require('..')

test('defaults are filled in for a minimal enabled config', () => {
  const c = q.validateQueueConfig({ enabled: true, providerConfig: { type: 'memory' } })
  assert.deepEqual(c, {
    enabled: true,
    providerConfig: { type: 'memory', maxHistorySize: 1000 },
    worker: { mode: 'in-process', concurrency: 5, pollInterval: 1000, shutdownTimeout: 30000 },
    scheduler: { enabled: false, pollInterval: 60000, autoMigrate: true, retention: 604800000 },
  })
  const sqs = q.validateQueueConfig({ enabled: true, providerConfig: { type: 'sqs', region: 'us-east-1', queueUrl: 'http://127.0.0.1:4566/000000000000/jobs' } })
  assert.equal(sqs.providerConfig.visibilityTimeout, 30)
  assert.equal(sqs.providerConfig.maxMessageBytes, 262144)
})

test('a disabled queue runs on the default memory provider and its provider settings are not checked', () => {
  const c = q.validateQueueConfig({ enabled: false, providerConfig: { type: 'sqs', region: 'us-east-1', queueUrl: undefined } })
  assert.deepEqual(c.providerConfig, { type: 'memory', maxHistorySize: 1000 })
  assert.equal(q.validateQueueConfig({}).enabled, false)
})

test('errors name the path and the value', () => {
  const cases = [
    [null, TypeError, 'queue must be an object, got null'],
    [{ enabled: 'yes' }, TypeError, 'queue.enabled must be a boolean, got "yes"'],
    [{ enabled: true }, TypeError, 'queue.providerConfig is required when queue.enabled is true'],
    [{ enabled: true, providerConfig: { type: 'kafka' } }, Error, "Unknown queue provider type: kafka (queue.providerConfig.type must be 'memory', 'sqs', 'postgres' or 'sqlite')"],
    [{ enabled: true, providerConfig: { type: 'sqs', region: 'eu-west-1' } }, TypeError, "queue.providerConfig.queueUrl is required when type is 'sqs', got undefined"],
    [{ enabled: true, providerConfig: { type: 'sqs', queueUrl: 'http://127.0.0.1/q' } }, TypeError, "queue.providerConfig.region is required when type is 'sqs', got undefined"],
    [{ enabled: true, providerConfig: { type: 'sqs', region: 'r', queueUrl: 'not a url' } }, TypeError, 'queue.providerConfig.queueUrl must be an http(s) URL, got "not a url"'],
    [{ enabled: true, providerConfig: { type: 'sqs', region: 'r', queueUrl: 'http://h/q', visibilityTimeout: -1 } }, RangeError, 'queue.providerConfig.visibilityTimeout must be a non-negative integer up to 43200, got -1'],
    [{ enabled: true, providerConfig: { type: 'sqs', region: 'r', queueUrl: 'http://h/q', deadLetterQueueUrl: 5 } }, TypeError, 'queue.providerConfig.deadLetterQueueUrl must be a non-empty string, got 5'],
    [{ enabled: true, providerConfig: { type: 'memory', maxHistorySize: 1.5 } }, RangeError, 'queue.providerConfig.maxHistorySize must be a non-negative integer up to 4294967295, got 1.5'],
    [{ enabled: true, providerConfig: { type: 'memory' }, worker: { concurrency: 0 } }, RangeError, 'queue.worker.concurrency must be at least 1, got 0'],
    [{ enabled: true, providerConfig: { type: 'memory' }, worker: { concurrency: '5' } }, RangeError, 'queue.worker.concurrency must be a non-negative integer up to 100000, got "5"'],
    [{ enabled: true, providerConfig: { type: 'memory' }, worker: { mode: 'cluster' } }, RangeError, `queue.worker.mode must be 'in-process' or 'standalone', got "cluster"`],
    [{ enabled: true, providerConfig: { type: 'memory' }, worker: { shutdownTimeout: NaN } }, RangeError, 'queue.worker.shutdownTimeout must be a non-negative finite number up to 2147483647, got NaN'],
    [{ enabled: true, providerConfig: { type: 'memory' }, scheduler: { enabled: 1 } }, TypeError, 'queue.scheduler.enabled must be a boolean, got 1'],
    [{ enabled: true, providerConfig: { type: 'memory' }, scheduler: { pollInterval: 0 } }, RangeError, 'queue.scheduler.pollInterval must be at least 1 ms, got 0'],
    // One rule each, decided in Rust (the JS and Rust copies used to disagree on these).
    [{ enabled: true, providerConfig: { type: 'sqs', region: 'r', queueUrl: 'http://h/q', visibilityTimeout: 0 } }, RangeError, 'queue.providerConfig.visibilityTimeout must be at least 1, got 0'],
    [{ enabled: true, providerConfig: { type: 'sqs', region: 'r', queueUrl: 'http://h/q', maxMessageBytes: 1 } }, RangeError, 'queue.providerConfig.maxMessageBytes must be at least 1024, got 1'],
    [{ enabled: true, providerConfig: { type: 'sqs', region: 'r', queueUrl: 'http://h/q', deadLetterQueueUrl: 'http://h/q' } }, RangeError, 'queue.providerConfig.deadLetterQueueUrl must differ from queueUrl (jobs out of retries would go back to the queue they came from), got "http://h/q"'],
    [{ enabled: true, providerConfig: { type: 'memory' }, scheduler: { databaseUrl: 'mysql://me:secret@h/db' } }, TypeError, 'queue.scheduler.databaseUrl must be a postgres://, postgresql:// or sqlite: URL, got "mysql://me:***@h/db"'],
    [{ enabled: true, providerConfig: { type: 'memory' }, worker: { pollInterval: Symbol('x') } }, RangeError, 'queue.worker.pollInterval must be a non-negative finite number up to 2147483647, got a symbol'],
  ]
  for (const [config, type, message] of cases) {
    assert.throws(() => q.validateQueueConfig(config), (e) => {
      assert.equal(e.constructor, type, `${message}: got ${e.constructor.name}`)
      assert.equal(e.message, message)
      return true
    })
  }
})

test('the defaults come from the native side, and the constructors check their blocks too', () => {
  assert.deepEqual(q.getDefaultProviderConfig(), q.validateQueueConfig({}).providerConfig)
  const p = q.getQueueProvider()
  assert.deepEqual(new q.Worker({ provider: p }).config, q.validateQueueConfig({}).worker)
  assert.throws(() => new q.Worker({ provider: p, config: { concurrency: -1 } }), { name: 'RangeError', message: 'worker.concurrency must be a non-negative integer up to 100000, got -1' })
  assert.throws(() => q.validateQueueConfig({}, 5), { name: 'TypeError', message: 'name must be a non-empty string, got 5' })
  // A NUL in a value the message quotes (napi throws C strings; found by the fuzz test, seed 12).
  assert.throws(() => q.validateQueueConfig(1023, '\u0000'), { name: 'TypeError', message: '\\u0000 must be an object, got 1023' })
  assert.throws(() => new q.Worker({ provider: p, config: { concurrency: 'a\u0000' } }), { name: 'RangeError', message: /^worker\.concurrency must be .*, got "a\\u0000"$/ })
  q.resetQueueProvider()
})

test('initializeQueue rejects a bad config before creating anything', async () => {
  await assert.rejects(q.initializeQueue({ enabled: true, providerConfig: { type: 'sqs', region: 'r' } }), {
    message: "queue.providerConfig.queueUrl is required when type is 'sqs', got undefined",
  })
  // Nothing was initialised: the lazy provider is still the default memory one.
  q.resetQueueProvider()
  const { provider } = await q.initializeQueue({ enabled: true, providerConfig: { type: 'memory', maxHistorySize: 5 }, worker: { mode: 'standalone' } })
  assert.equal(provider.name, 'memory')
  await q.shutdownQueue()
})
