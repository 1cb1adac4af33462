'use strict'
// Cron schedules against npm `cron-parser` 5, the old scheduler's parser: generated
// expressions × time zones × start times (many on daylight-saving days), the next runs
// computed by both, through the public `nextRuns`.

const test = require('node:test')
const assert = require('node:assert/strict')
const { CronExpressionParser } = require('cron-parser')
const { nextRuns } = require('../index.js')

const SEED = Number(process.env.CRON_DIFF_SEED ?? 20261201)
const CASES = Number(process.env.CRON_DIFF_CASES ?? 12000)
const RUNS = 4

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']
const MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@hourly', '@minutely', '@weekdays', '@weekends']

// Zones with instants their clocks change (2024 and 2025): New York, Los Angeles, London,
// Berlin (one hour at 01:00–03:00 local), Sydney and Adelaide (southern, Adelaide on a
// half-hour offset), Santiago (at midnight). Asia/Kolkata (a half-hour offset without
// daylight saving) and UTC get instants of no change, to start from.
const ZONES = {
  UTC: ['2024-02-29T00:00:00Z', '2024-12-31T23:00:00Z'],
  'Asia/Kolkata': ['2024-03-10T07:00:00Z', '2024-11-03T06:00:00Z'],
  'America/New_York': ['2024-03-10T07:00:00Z', '2024-11-03T06:00:00Z', '2025-03-09T07:00:00Z', '2025-11-02T06:00:00Z'],
  'America/Los_Angeles': ['2024-03-10T10:00:00Z', '2024-11-03T09:00:00Z'],
  'Europe/London': ['2024-03-31T01:00:00Z', '2024-10-27T01:00:00Z', '2025-03-30T01:00:00Z', '2025-10-26T01:00:00Z'],
  'Europe/Berlin': ['2024-03-31T01:00:00Z', '2024-10-27T01:00:00Z'],
  'Australia/Sydney': ['2024-04-06T16:00:00Z', '2024-10-05T16:00:00Z', '2025-04-05T16:00:00Z', '2025-10-04T16:00:00Z'],
  'Australia/Adelaide': ['2024-04-06T16:30:00Z', '2024-10-05T16:30:00Z'],
  'America/Santiago': ['2024-04-07T03:00:00Z', '2024-09-08T04:00:00Z'],
}
// Hour fields around the local hours that clocks change at.
const CHANGE_HOURS = ['0', '1', '2', '3', '23', '1-2', '2-3', '0-3', '1,2', '2,3', '0-3/2', '1-3/2', '0,2', '22-23,0-1']

function generator(rand) {
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1))
  const pick = (xs) => xs[Math.floor(rand() * xs.length)]
  const name = (xs, v, offset) => {
    const n = xs[v - offset]
    return pick([n, n.toUpperCase(), n[0].toUpperCase() + n.slice(1)])
  }
  // One list item of a numeric field; `named` spells some values by name.
  function item(lo, hi, named, offset) {
    const v = () => {
      const x = int(lo, hi)
      return named && rand() < 0.4 && x - offset < named.length ? name(named, x, offset) : String(x)
    }
    const r = rand()
    if (r < 0.3) return v()
    if (r < 0.45) return `*/${int(1, hi - lo + 2)}`
    if (r < 0.6) {
      const a = int(lo, hi)
      const b = int(a, hi)
      return `${a}-${b}`
    }
    if (r < 0.75) {
      const a = int(lo, hi)
      const b = int(a, hi)
      return `${a}-${b}/${int(1, hi - lo + 1)}`
    }
    if (r < 0.85) return `${int(lo, hi)}/${int(1, hi - lo + 1)}`
    return String(int(lo, hi))
  }
  function field(lo, hi, { star = 0.4, named, offset = 0, extra } = {}) {
    if (rand() < star) return rand() < 0.9 ? '*' : '?'
    if (extra && rand() < 0.2) return extra()
    const n = rand() < 0.7 ? 1 : int(2, 4)
    return Array.from({ length: n }, () => item(lo, hi, named, offset)).join(',')
  }
  return function expression() {
    if (rand() < 0.03) return pick(MACROS)
    const dom = field(1, 31, {
      star: 0.6,
      extra: () => pick(['L', `${int(1, 28)},L`, `L,${int(1, 28)}`]),
    })
    const dow = field(0, 7, {
      star: 0.6,
      named: DAYS,
      extra: () => {
        const r = rand()
        return r < 0.45 ? `${int(0, 7)}L` : r < 0.9 ? `${int(0, 7)}#${int(1, 5)}` : `${pick(['*', '?'])}#${int(1, 5)}`
      },
    })
    const parts = [
      field(0, 59, { star: 0.2 }),
      rand() < 0.4 ? pick(CHANGE_HOURS) : field(0, 23, { star: 0.3 }),
      dom,
      field(1, 12, { star: 0.7, named: MONTHS, offset: 1 }),
      dow,
    ]
    if (rand() < 0.35) parts.unshift(rand() < 0.5 ? '0' : field(0, 59, { star: 0.3 }))
    return parts.join(' ')
  }
}

/** A start instant: mostly hours before or after a clock change, some days around one, some anywhere in 2020–2030. */
function startTime(rand, zone) {
  const change = Date.parse(ZONES[zone][Math.floor(rand() * ZONES[zone].length)])
  const r = rand()
  let t
  if (r < 0.6) t = change + Math.floor((rand() * 9 - 6) * 3600e3)
  else if (r < 0.8) t = change + Math.floor((rand() * 4 - 2) * 86400e3)
  else t = Date.UTC(2020, 0, 1) + Math.floor(rand() * 10 * 365 * 86400e3)
  // Whole minutes and seconds often, as the scheduler's own runs are.
  const w = rand()
  if (w < 0.3) t -= t % 60000
  else if (w < 0.5) t -= t % 1000
  return t
}

// Refusals of cron-parser's that ours does not share (see docs-cron.md): a value listed twice.
const WIDER = [/duplicate values found/]

/** cron-parser's next run after `t`, parsed afresh each time as the old scheduler did. */
function oldNext(expr, tz, t) {
  return CronExpressionParser.parse(expr, { tz, currentDate: new Date(t) }).next().getTime()
}

test(`cron: nextRuns agrees with cron-parser 5 (${CASES} generated expressions × zones × start times)`, () => {
  const rand = prng(SEED)
  const expression = generator(rand)
  const zones = Object.keys(ZONES)
  let cases = 0
  let comparisons = 0
  let bothRejected = 0
  let wider = 0
  let gaveUp = 0
  const mismatches = []
  while (cases < CASES) {
    const expr = expression()
    const tz = zones[Math.floor(rand() * zones.length)]
    const from = startTime(rand, tz)
    try {
      CronExpressionParser.parse(expr, { tz })
    } catch (e) {
      // cron-parser refuses it: so must we, except where ours is knowingly wider.
      if (WIDER.some((re) => re.test(e.message))) {
        wider++
        continue
      }
      assert.throws(() => nextRuns(expr, { timezone: tz, from, count: RUNS }), RangeError, `${expr} is refused by cron-parser (${e.message})`)
      bothRejected++
      continue
    }
    const expected = []
    try {
      let t = from
      for (let i = 0; i < RUNS; i++) expected.push((t = oldNext(expr, tz, t)))
    } catch (e) {
      // cron-parser gave up its search (its loop limit): compare the runs it found.
      assert.match(e.message, /loop limit exceeded/)
      gaveUp++
      if (expected.length === 0) continue
    }
    cases++
    const ours = nextRuns(expr, { timezone: tz, from, count: expected.length }).map((d) => d.getTime())
    comparisons += expected.length
    if (ours.length !== expected.length || ours.some((v, i) => v !== expected[i])) {
      mismatches.push({ expr, tz, from: new Date(from).toISOString(), cronParser: expected.map((v) => new Date(v).toISOString()), ours: ours.map((v) => new Date(v).toISOString()) })
    }
  }
  console.log(`cron differential (seed ${SEED}): ${cases} expression × zone × start cases, ${comparisons} next runs compared, ${mismatches.length} cases differ; ${bothRejected} generated expressions refused by both, ${wider} refused by cron-parser only (a value listed twice); cron-parser gave up its search in ${gaveUp}`)
  assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} of ${cases} cases differ`)
})

// What ours refuses of what cron-parser accepts, on purpose (see docs-cron.md): H (random on
// each parse), fewer than 5 fields, a step too large to count.
const NARROWER = [/H/, /^\s*(\S+\s+){0,3}\S*\s*$/, /\/\d{5,}/]

test('cron: edited expressions are accepted or refused as cron-parser does, and then agree', () => {
  const rand = prng(SEED + 1)
  const expression = generator(rand)
  const zones = Object.keys(ZONES)
  const alphabet = '0123456789*/,-?#LW '
  const counts = { both: 0, neither: 0, wider: 0, narrower: 0, gaveUp: 0 }
  const problems = []
  for (let i = 0; i < 5000; i++) {
    let expr = expression()
    for (let k = 1 + Math.floor(rand() * 2); k > 0; k--) {
      const at = Math.floor(rand() * (expr.length + 1))
      const c = alphabet[Math.floor(rand() * alphabet.length)]
      const op = rand()
      expr = op < 0.4 ? expr.slice(0, at) + c + expr.slice(at) : op < 0.7 ? expr.slice(0, at) + expr.slice(at + 1) : expr.slice(0, at) + c + expr.slice(at + 1)
    }
    const tz = zones[Math.floor(rand() * zones.length)]
    const from = startTime(rand, tz)
    let expected = null
    let refusal = null
    try {
      CronExpressionParser.parse(expr, { tz })
    } catch (e) {
      refusal = e.message
    }
    if (!refusal) {
      try {
        expected = [oldNext(expr, tz, from)]
        expected.push(oldNext(expr, tz, expected[0]))
      } catch (e) {
        // cron-parser gave up its search (its loop limit): nothing to compare.
        assert.match(e.message, /loop limit exceeded/)
        counts.gaveUp++
        continue
      }
    }
    let ours = null
    try {
      ours = nextRuns(expr, { timezone: tz, from, count: 2 }).map((d) => d.getTime())
    } catch (e) {
      assert.ok(e instanceof RangeError && e.message.startsWith('invalid schedule '), `${expr}: ${e}`)
    }
    if (expected && ours) {
      counts.both++
      if (ours.length !== expected.length || ours.some((v, j) => v !== expected[j])) problems.push({ expr, tz, from, expected, ours })
    } else if (!expected && !ours) counts.neither++
    else if (ours) {
      // Wider: a value listed twice, W, croner's # forms (ranges, lists, #L), LW, a macro
      // with spaces around it.
      counts.wider++
      const known = /duplicate values|Invalid characters, got value: .*W|`#` and `.` special characters are incompatible/.test(refusal) || /^\s*@[a-z]+\s*$/i.test(expr)
      if (!known) problems.push({ expr, refusal, ours })
    } else {
      counts.narrower++
      if (!NARROWER.some((re) => re.test(expr))) problems.push({ expr, cronParser: expected })
    }
  }
  console.log(`cron edited expressions: ${JSON.stringify(counts)}`)
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} of 5000 edited expressions are read differently`)
})

test('cron: the forms the old scheduler accepted and the addon refused, against cron-parser', () => {
  const from = Date.parse('2024-03-09T12:00:00Z')
  for (const expr of ['0 30 2 * * *', '*/10 * * * * *', '0 0 L * *', '0 18 * * 5L', '0 9 * * 1#2', '0 0 13 * 5', '@weekly', '@yearly', '0 9 * * MON-FRI']) {
    for (const timezone of ['UTC', 'America/New_York', 'Australia/Sydney']) {
      const ours = nextRuns(expr, { timezone, from, count: 5 }).map((d) => d.toISOString())
      const expected = []
      let t = from
      for (let i = 0; i < 5; i++) expected.push(new Date((t = oldNext(expr, timezone, t))).toISOString())
      assert.deepEqual(ours, expected, `${expr} in ${timezone}`)
    }
  }
})

test('cron: W (which cron-parser lacks) is the nearest weekday within the month', () => {
  const runs = nextRuns('0 9 1W,15W * *', { from: new Date('2024-06-01T00:00:00Z'), count: 4 }).map((d) => d.toISOString())
  // Sat 1 June → Mon 3rd (not back into May); Sat 15 June → Fri 14th; Mon 1 July; Mon 15 July.
  assert.deepEqual(runs, ['2024-06-03T09:00:00.000Z', '2024-06-14T09:00:00.000Z', '2024-07-01T09:00:00.000Z', '2024-07-15T09:00:00.000Z'])
})

test('cron: nextRuns refuses bad input with a TypeError or RangeError naming it', () => {
  for (const expr of ['ééé 9 * * *', '每天 9 点 * *', '1/4294967295 * * * *', 'H * * * *', '0 0 30 2 *', '* * * *', '0 0 * * 1#6', '1,'.repeat(5000)]) {
    assert.throws(() => nextRuns(expr), (e) => e instanceof RangeError && e.message.startsWith(`invalid schedule ${JSON.stringify(expr.slice(0, 100))}`), expr.slice(0, 40))
  }
  assert.throws(() => nextRuns('0 9 * * *', { timezone: 'Mars/Base' }), { name: 'RangeError', message: 'unknown time zone "Mars/Base"' })
  assert.throws(() => nextRuns(42), { name: 'TypeError', message: /^schedule must be a cron expression or "every N unit", got 42$/ })
  assert.throws(() => nextRuns('@daily', null), { name: 'TypeError', message: /^options must be an object/ })
  assert.throws(() => nextRuns('@daily', { timezone: 5 }), { name: 'TypeError', message: /^options\.timezone must be an IANA time zone name/ })
  assert.throws(() => nextRuns('@daily', { from: 'soon' }), { name: 'RangeError', message: /^options\.from must be a valid Date/ })
  assert.throws(() => nextRuns('@daily', { count: '3' }), { name: 'TypeError', message: /^options\.count must be a number/ })
  for (const count of [0, 1.5, -1, 1001, NaN, Infinity]) {
    assert.throws(() => nextRuns('@daily', { count }), { name: 'RangeError', message: /^options\.count must be a whole number from 1 to 1000/ }, String(count))
  }
})

test('cron: nextRuns defaults (now, UTC, one run) and intervals', () => {
  const before = Date.now()
  const [next] = nextRuns('* * * * * *')
  assert.ok(next instanceof Date && next.getTime() > before && next.getTime() <= Date.now() + 1000, String(next))
  assert.deepEqual(nextRuns('every 90 minutes', { from: 0, count: 2 }).map((d) => d.getTime()), [90 * 60000, 180 * 60000])
  assert.equal(nextRuns('@hourly', { from: new Date('2024-01-01T10:20:00Z'), timezone: 'Asia/Kolkata' })[0].toISOString(), '2024-01-01T10:30:00.000Z')
})
