// A CLI child process for tests: output collected, waiting for a line, the exit with a bound.
'use strict'

const { spawn } = require('node:child_process')
const { sleep } = require('./wait.js')

const children = new Set()

/** A running CLI process (`node <bin> …args`); its stdout/stderr are collected. */
class CliProcess {
  constructor(bin, args, { env, cwd }) {
    this.stdout = ''
    this.stderr = ''
    this.child = spawn(process.execPath, [bin, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(this.child)
    this.child.stdout.setEncoding('utf8').on('data', (d) => (this.stdout += d))
    this.child.stderr.setEncoding('utf8').on('data', (d) => (this.stderr += d))
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        children.delete(this.child)
        resolve({ code, signal })
      })
    })
  }

  /** Resolves with the match once stdout matches `re`; rejects on timeout or exit. */
  async waitFor(re, timeoutMs = 15_000) {
    const deadline = performance.now() + timeoutMs
    let done = false
    this.exited.then(() => (done = true))
    for (;;) {
      const m = re.exec(this.stdout)
      if (m) return m
      if (done || performance.now() > deadline) {
        throw new Error(`${done ? 'worker exited' : 'timed out'} waiting for ${re}\n--- stdout:\n${this.stdout}\n--- stderr:\n${this.stderr}`)
      }
      await sleep(20)
    }
  }

  kill(signal) {
    this.child.kill(signal)
  }

  /** The exit, or a rejection after `timeoutMs`. */
  async exit(timeoutMs = 15_000) {
    let t
    const timeout = new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`worker did not exit within ${timeoutMs} ms\n--- stdout:\n${this.stdout}\n--- stderr:\n${this.stderr}`)), timeoutMs)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(t)
    }
  }
}

/** SIGKILL every child still running (a test file's `after`). */
function killAll() {
  for (const c of children) c.kill('SIGKILL')
}

module.exports = { CliProcess, killAll }
