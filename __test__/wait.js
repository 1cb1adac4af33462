// Waiting in tests: a sleep, and a poll until a condition holds or a deadline passes.
'use strict'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** `fn()`'s first truthy value, polled every `every` ms; throws naming `what` after `ms`. */
async function until(what, fn, ms = 20_000, every = 10) {
  const end = performance.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(every)
  }
}

module.exports = { sleep, until }
