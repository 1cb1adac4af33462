'use strict'
// Instruction counts of the memory provider's hot path, for A/B comparisons that wall-clock
// noise cannot settle. Run under callgrind twice, with 0 and with R rounds, and subtract:
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded --predictable bench/callgrind-memory.js [dir] 0
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded --predictable bench/callgrind-memory.js [dir] 4
// (without --single-threaded --predictable V8's collector and compiler threads vary the count by
// a few % per run; with them two runs of one build agree within 0.01%). Add --jitless to weigh
// the JavaScript as the interpreter runs it (cold code); without it, as the JIT runs it (the
// steady state a server reaches). "Collected" in valgrind's summary; per round = difference / R.
// `dir` is a checkout of this package with its addon built (default: this one). 100,000 jobs
// are queued first; a round is one enqueueBulk of 10,000 and receive(1000) + acknowledge of
// each until they are all done.
const path = require('node:path')

async function main() {
  const dir = process.argv[2] && process.argv[2] !== '.' ? path.resolve(process.argv[2]) : path.join(__dirname, '..')
  const rounds = Number(process.argv[3] || 0)
  const q = require(path.join(dir, 'index.js'))
  const p = await q.createQueueProvider({ type: 'memory' })
  const items = Array.from({ length: 10000 }, (_, i) => ({ type: 'noop', payload: { i } }))
  for (let i = 0; i < 10; i++) await p.enqueueBulk(items)
  for (let r = 0; r < rounds; r++) {
    await p.enqueueBulk(items)
    for (let left = 10000; left > 0; ) {
      const got = await p.receive(1000, 0)
      for (const j of got) await p.acknowledge(j.receiptHandle)
      left -= got.length
    }
  }
  await p.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
