// moto_server (an SQS-compatible server) on a free loopback port for the SQS tests and the
// benchmark, and a loopback HTTP proxy in front of it that counts requests and can be stopped
// and started again on the same port.
'use strict'

const { spawn } = require('node:child_process')
const http = require('node:http')
const net = require('node:net')

// Dummy credentials and region: moto accepts any.
process.env.AWS_ACCESS_KEY_ID ??= 'testing'
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing'
process.env.AWS_REGION ??= 'us-east-1'
const REGION = process.env.AWS_REGION

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function canConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1')
    c.once('connect', () => {
      c.destroy()
      resolve(true)
    })
    c.once('error', () => resolve(false))
  })
}

/**
 * Start moto_server (or use `SQS_TEST_ENDPOINT`). Resolves to `{ endpoint, port, stop() }`, or
 * to `null` after a loud message when moto is unavailable — and throws instead when
 * `CI=true`, where a missing service is a failure.
 */
async function startMoto() {
  if (process.env.SQS_TEST_ENDPOINT) {
    const endpoint = process.env.SQS_TEST_ENDPOINT
    return { endpoint, port: Number(new URL(endpoint).port), stop: async () => {} }
  }
  const port = await freePort()
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
  const spawnError = new Promise((resolve) => child.once('error', resolve))
  const deadline = performance.now() + 30_000
  let why = null
  for (;;) {
    const err = await Promise.race([spawnError, new Promise((r) => setTimeout(() => r(null), 100))])
    if (err) {
      why = `cannot start moto_server: ${err.message}`
      break
    }
    if (child.exitCode !== null) {
      why = `moto_server exited with code ${child.exitCode}`
      break
    }
    if (await canConnect(port)) break
    if (performance.now() > deadline) {
      why = 'moto_server did not listen within 30 s'
      child.kill('SIGKILL')
      break
    }
  }
  if (why) {
    if (process.env.CI === 'true') throw new Error(`moto_server is required in CI: ${why}`)
    console.error(`\n*** SKIPPING SQS tests: ${why} (install moto[server] from PyPI) ***\n`)
    return null
  }
  const exited = new Promise((r) => child.once('exit', r))
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        const t = setTimeout(() => child.kill('SIGKILL'), 3000)
        await exited
        clearTimeout(t)
      }
    },
  }
}

/**
 * A loopback HTTP proxy to `target` (`http://127.0.0.1:PORT`) that counts requests by SQS
 * operation (the `X-Amz-Target` header of the JSON protocol). `stop()` closes it and every
 * connection through it; `start()` listens again on the same port.
 */
class CountingProxy {
  constructor(target) {
    this.target = new URL(target)
    this.port = 0
    this.counts = {}
    this.server = null
    this.sockets = new Set()
    this.agent = new http.Agent({ keepAlive: true })
  }

  get endpoint() {
    return `http://127.0.0.1:${this.port}`
  }

  get total() {
    return Object.values(this.counts).reduce((a, b) => a + b, 0)
  }

  reset() {
    this.counts = {}
  }

  start() {
    this.server = http.createServer((req, res) => {
      const op = String(req.headers['x-amz-target'] || 'other').replace(/^AmazonSQS\./, '')
      this.counts[op] = (this.counts[op] || 0) + 1
      const up = http.request(
        {
          host: this.target.hostname,
          port: this.target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent: this.agent,
        },
        (ur) => {
          res.writeHead(ur.statusCode, ur.headers)
          ur.pipe(res)
        },
      )
      up.on('error', () => res.destroy())
      req.pipe(up)
    })
    this.server.keepAliveTimeout = 60_000
    this.server.on('connection', (s) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.port, '127.0.0.1', () => {
        this.port = this.server.address().port
        resolve(this)
      })
    })
  }

  stop() {
    const server = this.server
    this.server = null
    if (!server) return Promise.resolve()
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    return new Promise((resolve) => server.close(() => resolve()))
  }

  async close() {
    await this.stop()
    this.agent.destroy()
  }
}

/** A plain `@aws-sdk/client-sqs` client for `endpoint`. */
function sqsClient(endpoint) {
  const { SQSClient } = require('@aws-sdk/client-sqs')
  return new SQSClient({ region: REGION, endpoint })
}

let counter = 0
/** Create a queue with a unique name (`.fifo` when `fifo`); resolves to its URL. */
async function createQueue(client, prefix, { fifo = false, attributes = {} } = {}) {
  const { CreateQueueCommand } = require('@aws-sdk/client-sqs')
  const name = `${prefix}-${process.pid}-${Date.now()}-${++counter}${fifo ? '.fifo' : ''}`
  const Attributes = { ...attributes }
  if (fifo) Attributes.FifoQueue = 'true'
  const out = await client.send(new CreateQueueCommand({ QueueName: name, Attributes }))
  return out.QueueUrl
}

module.exports = { startMoto, CountingProxy, sqsClient, createQueue, freePort, REGION }
