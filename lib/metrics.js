'use strict'
// Prometheus metrics of this process.

const binding = require('../binding.js')
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

module.exports = { getMetrics }
