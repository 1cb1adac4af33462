// PostgreSQL for the tests: the test database's URL, whether it is reachable (with CI=true a
// missing server is a failure, else a loud skip), and dropping the schemas a test file made.
'use strict'

const { Client } = require('pg')

const PG_URL = process.env.QUEUE_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test'

/** True when PostgreSQL answers at PG_URL; throws under CI=true when it does not. */
async function pgReachable(what = 'postgres cases') {
  const c = new Client({ connectionString: PG_URL })
  try {
    await c.connect()
    return true
  } catch (e) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL at ${PG_URL} is required in CI: ${e.message}`)
    console.error(`SKIPPED (${what}): PostgreSQL not reachable at ${PG_URL}: ${e.message}`)
    return false
  } finally {
    await c.end().catch(() => {})
  }
}

/** Drop every schema in `schemas` (a test file's own), if any. */
async function dropSchemas(schemas) {
  if (schemas.length === 0) return
  const c = new Client({ connectionString: PG_URL })
  await c.connect()
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
  } finally {
    await c.end()
  }
}

module.exports = { PG_URL, pgReachable, dropSchemas }
