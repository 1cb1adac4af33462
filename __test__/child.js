'use strict'
// Starts __test__/events-child.js (a worker process) on a providerConfig; what it prints
// (one JSON object a line) collects in `lines`. Killed when the test ends.
const path = require('node:path')
const { spawn } = require('node:child_process')

function child(config, t) {
  const proc = spawn(process.execPath, [path.join(__dirname, 'events-child.js'), JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = []
  let buf = ''
  proc.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) !== -1) {
      lines.push(JSON.parse(buf.slice(0, i)))
      buf = buf.slice(i + 1)
    }
  })
  t.after(() => proc.kill('SIGKILL'))
  return { proc, lines }
}

module.exports = { child }
