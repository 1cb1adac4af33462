'use strict'
// Prometheus metrics of this process, and the HTTP server of `/metrics` a Worker starts.

const http = require('node:http')
const binding = require('./native.js')
const { logger } = require('./log.js')
const { openProviders } = require('./providers.js')

/** Prometheus text of this process: job counters and histograms, worker gauges, queue depths. */
async function getMetrics() {
  const providers = [...openProviders]
  const seen = new Map()
  const depths = await Promise.all(
    providers.map(async (p) => {
      const n = (seen.get(p.name) || 0) + 1
      seen.set(p.name, n)
      const stats = await p.getStats()
      return { provider: n === 1 ? p.name : `${p.name}#${n}`, ...stats }
    }),
  )
  return binding.renderMetrics(depths)
}

/** Serve getMetrics() at `GET /metrics` on 127.0.0.1:`port`; the server (close it to stop). */
function serveMetrics(port) {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      return
    }
    getMetrics().then(
      (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
      (e) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e && e.message}\n`),
    )
  })
  server.on('error', (e) => logger.error(`metrics server on 127.0.0.1:${port}: ${e.message}`))
  server.listen(port, '127.0.0.1')
  return server
}

module.exports = { getMetrics, serveMetrics }
