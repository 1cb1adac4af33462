'use strict'
// The benchmark table every part returns: rows { name, value, unit, target } printed as one
// Markdown table, and the standalone entry (`node bench/<part>.js`) that prints a part's rows.

function printRows(rows) {
  console.log('\n| benchmark | figure | unit | target |\n| --- | --- | --- | --- |')
  for (const r of rows) console.log(`| ${r.name} | ${r.value} | ${r.unit || ''} | ${r.target || ''} |`)
}

/** Run one part's `run()` and print its rows; exit 1 on an error. */
function runStandalone(run) {
  run().then(printRows, (e) => {
    console.error(e)
    process.exit(1)
  })
}

module.exports = { printRows, runStandalone }
