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

// Zones with the days their clocks change (2024 and 2025), plus a half-hour zone without
// daylight saving and UTC (their "changes" are just days to start on).
const ZONES = {
  UTC: ['2024-02-29', '2024-12-31'],
  'America/New_York': ['2024-03-10', '2024-11-03', '2025-03-09', '2025-11-02'],
  'America/Los_Angeles': ['2024-03-10', '2024-11-03'],
  'Europe/London': ['2024-03-31', '2024-10-27', '2025-03-30', '2025-10-26'],
  'Europe/Berlin': ['2024-03-31', '2024-10-27'],
  'Australia/Sydney': ['2024-04-07', '2024-10-06', '2025-04-06', '2025-10-05'],
  'Australia/Adelaide': ['2024-04-07', '2024-10-06'],
  'America/Santiago': ['2024-04-07', '2024-09-08'],
  'Asia/Kolkata': ['2024-03-10', '2024-11-03'],
}

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
      extra: () => (rand() < 0.5 ? `${int(0, 7)}L` : `${int(0, 7)}#${int(1, 5)}`),
    })
    const parts = [
      field(0, 59, { star: 0.2 }),
      field(0, 23, { star: 0.3 }),
      dom,
      field(1, 12, { star: 0.7, named: MONTHS, offset: 1 }),
      dow,
    ]
    if (rand() < 0.35) parts.unshift(rand() < 0.5 ? '0' : field(0, 59, { star: 0.3 }))
    return parts.join(' ')
  }
}

/** A start instant: mostly around a clock change of the zone, some anywhere in 2020–2030. */
function startTime(rand, zone) {
  const base = rand() < 0.8 ? Date.parse(`${ZONES[zone][Math.floor(rand() * ZONES[zone].length)]}T00:00:00Z`) - 14 * 3600e3 : Date.UTC(2020, 0, 1)
  const span = base === Date.UTC(2020, 0, 1) ? 10 * 365 * 86400e3 : 52 * 3600e3
  let t = base + Math.floor(rand() * span)
  // Whole minutes and seconds often, as the scheduler's own runs are.
  const r = rand()
  if (r < 0.3) t -= t % 60000
  else if (r < 0.5) t -= t % 1000
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
  const mismatches = []
  while (cases < CASES) {
    const expr = expression()
    const tz = zones[Math.floor(rand() * zones.length)]
    const from = startTime(rand, tz)
    let expected
    try {
      expected = []
      let t = from
      for (let i = 0; i < RUNS; i++) {
        t = oldNext(expr, tz, t)
        expected.push(t)
      }
    } catch (e) {
      if (expected.length === 0) {
        // cron-parser refuses it: so must we, except where ours is knowingly wider.
        if (WIDER.some((re) => re.test(e.message))) {
          wider++
          continue
        }
        assert.throws(() => nextRuns(expr, { timezone: tz, from, count: RUNS }), RangeError, `${expr} is refused by cron-parser (${e.message})`)
        bothRejected++
        continue
      }
    }
    cases++
    const ours = nextRuns(expr, { timezone: tz, from, count: expected.length }).map((d) => d.getTime())
    comparisons += expected.length
    if (ours.length !== expected.length || ours.some((v, i) => v !== expected[i])) {
      mismatches.push({ expr, tz, from: new Date(from).toISOString(), cronParser: expected.map((v) => new Date(v).toISOString()), ours: ours.map((v) => new Date(v).toISOString()) })
    }
  }
  console.log(`cron differential (seed ${SEED}): ${cases} expression × zone × start cases, ${comparisons} next runs compared, ${mismatches.length} cases differ; ${bothRejected} generated expressions refused by both, ${wider} refused by cron-parser only (a value listed twice)`)
  assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} of ${cases} cases differ`)
})
