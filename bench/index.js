'use strict'
// `npm run bench`: the memory provider, worker, scheduler, SQS and PostgreSQL benchmarks
// (bench/memory.js, bench/worker.js, bench/otel.js, bench/scheduler.js, bench/sqs.js, bench/postgres.js,
// bench/dashboard.js), or one of them: `node --expose-gc bench/index.js
// memory|worker|otel|scheduler|sqs|postgres|dashboard`. Prints one table.

const { printRows } = require('./rows.js')

const PARTS = ['memory', 'worker', 'otel', 'scheduler', 'sqs', 'postgres', 'dashboard']

async function main() {
  const only = process.argv[2]
  if (only && !PARTS.includes(only)) throw new Error(`unknown benchmark ${JSON.stringify(only)}; one of ${PARTS.join(', ')}`)
  const rows = []
  for (const part of PARTS) {
    if (!only || only === part) rows.push(...(await require(`./${part}.js`).run()))
  }
  printRows(rows)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
