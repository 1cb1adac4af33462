//! Recurring-job schedules: 5-field cron expressions evaluated in an IANA time zone (with
//! daylight-saving handling) and `every N unit` intervals.
//!
//! Daylight saving: a local time skipped by a spring-forward change runs once, at the
//! instant it would have had without the change (02:30 → 03:30 new time); a local time
//! repeated by a fall-back change runs once, at its first instance, unless the hour field
//! is `*`, in which case it runs in both hours (an hourly job stays hourly in real time).

use crate::error::{QueueError, Result};
use crate::job::Millis;
use chrono::{
    Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Timelike,
};
use chrono_tz::Tz;

const MINUTE_MS: i64 = 60_000;
/// How far ahead a cron expression is searched (covers Feb 29 across a skipped leap year).
const SEARCH_DAYS: i64 = 366 * 9;
/// Local times between a candidate and the earliest instant it can map to (the largest
/// daylight-saving shift is 2 h; this leaves room).
const DST_SLACK_MINUTES: i64 = 3 * 60;

/// A parsed schedule with its time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    kind: Kind,
    tz: Tz,
}

#[derive(Clone, Debug)]
enum Kind {
    Cron(Cron),
    /// Milliseconds between runs.
    Every(i64),
}

/// A 5-field cron expression as bit sets.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cron {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    /// Bit 0 = Sunday … bit 6 = Saturday (7 in the expression is folded onto 0).
    days_of_week: u64,
    /// The day-of-month / day-of-week field started with `*`: cron's rule is that when
    /// both are restricted, a day matching either runs.
    dom_star: bool,
    dow_star: bool,
}

impl Schedule {
    /// Parse `expr` (cron or interval) for the IANA time zone `tz`.
    pub fn parse(expr: &str, tz: &str) -> Result<Schedule> {
        let tz = parse_time_zone(tz)?;
        let trimmed = expr.trim();
        let kind = if trimmed.len() >= 5 && trimmed[..5].eq_ignore_ascii_case("every") {
            Kind::Every(parse_interval(trimmed).map_err(|m| invalid(expr, &m))?)
        } else {
            Kind::Cron(Cron::parse(trimmed).map_err(|m| invalid(expr, &m))?)
        };
        Ok(Schedule { kind, tz })
    }

    /// The time zone the schedule is evaluated in.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The first run strictly after `t`: for cron, the next matching minute; for an
    /// interval, `t` plus the interval. `None` when a cron expression never matches.
    pub fn next_after(&self, t: Millis) -> Option<Millis> {
        match &self.kind {
            Kind::Every(iv) => t.checked_add(*iv),
            Kind::Cron(c) => c.next_after(self.tz, t),
        }
    }

    /// The run after an occurrence at `previous` was handled at `now`: the first run later
    /// than `now`, skipping any missed ones. Intervals keep their phase (`previous + k × N`).
    pub fn next_run(&self, previous: Millis, now: Millis) -> Option<Millis> {
        match &self.kind {
            Kind::Every(iv) if previous <= now => {
                let steps = (now - previous) / iv + 1;
                previous.checked_add(steps.checked_mul(*iv)?)
            }
            _ => self.next_after(now.max(previous)),
        }
    }
}

/// An IANA time zone by name, e.g. `America/New_York` or `UTC`.
pub fn parse_time_zone(name: &str) -> Result<Tz> {
    name.parse::<Tz>()
        .map_err(|_| QueueError::invalid(format!("unknown time zone {name:?}")))
}

fn invalid(expr: &str, msg: &str) -> QueueError {
    QueueError::invalid(format!("invalid schedule {expr:?}: {msg}"))
}

/// `every N unit`, unit one of second, minute, hour, day, week (plural accepted).
fn parse_interval(expr: &str) -> std::result::Result<i64, String> {
    const USAGE: &str = "expected \"every N second(s)|minute(s)|hour(s)|day(s)|week(s)\"";
    let words: Vec<&str> = expr.split_whitespace().collect();
    let [_, n, unit] = words.as_slice() else {
        return Err(USAGE.to_string());
    };
    let n: i64 = n
        .parse()
        .map_err(|_| format!("interval count {n:?} is not a whole number; {USAGE}"))?;
    if n < 1 {
        return Err(format!("interval count {n} must be at least 1"));
    }
    let unit_lc = unit.to_ascii_lowercase();
    let unit_ms: i64 = match unit_lc.strip_suffix('s').unwrap_or(&unit_lc) {
        "second" => 1_000,
        "minute" => MINUTE_MS,
        "hour" => 60 * MINUTE_MS,
        "day" => 24 * 60 * MINUTE_MS,
        "week" => 7 * 24 * 60 * MINUTE_MS,
        _ => return Err(format!("unknown interval unit {unit:?}; {USAGE}")),
    };
    n.checked_mul(unit_ms)
        .ok_or_else(|| format!("interval {n} {unit} is too long"))
}

const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for values `min..`, matched case-insensitively.
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
};
const DAY_OF_WEEK: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &DAY_NAMES,
};

impl Field {
    fn value(&self, s: &str) -> std::result::Result<u32, String> {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(self.min + i as u32);
        }
        let v: u32 = s
            .parse()
            .map_err(|_| format!("{} {s:?} is not a number", self.name))?;
        if v < self.min || v > self.max {
            return Err(format!(
                "{} {v} out of range {}-{}",
                self.name, self.min, self.max
            ));
        }
        Ok(v)
    }

    /// Parse one field (`*`, `5`, `1-5`, `*/15`, `10-50/10`, `5/10`, lists of those).
    fn parse(&self, text: &str) -> std::result::Result<u64, String> {
        let mut bits = 0u64;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s
                        .parse()
                        .map_err(|_| format!("{} step {s:?} is not a number", self.name))?;
                    if step == 0 {
                        return Err(format!("{} step must be at least 1", self.name));
                    }
                    (r, Some(step))
                }
                None => (item, None),
            };
            let (lo, hi) = if range == "*" || range == "?" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(format!("{} range {range:?} goes backwards", self.name));
                }
                (a, b)
            } else if range.is_empty() {
                return Err(format!("empty {} field item", self.name));
            } else {
                let a = self.value(range)?;
                (a, if step.is_some() { self.max } else { a })
            };
            let step = step.unwrap_or(1);
            let mut v = lo;
            while v <= hi {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok(bits)
    }
}

impl Cron {
    fn parse(expr: &str) -> std::result::Result<Cron, String> {
        let expanded = match expr.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@hourly" => "0 * * * *".to_string(),
            _ => expr.to_string(),
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [mi, h, dom, mo, dow] = fields.as_slice() else {
            return Err(format!(
                "expected 5 cron fields (minute hour day-of-month month day-of-week) or \"every N unit\", got {}",
                fields.len()
            ));
        };
        let mut days_of_week = DAY_OF_WEEK.parse(dow)?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        Ok(Cron {
            minutes: MINUTE.parse(mi)?,
            hours: HOUR.parse(h)?,
            days_of_month: DAY_OF_MONTH.parse(dom)?,
            months: MONTH.parse(mo)?,
            days_of_week,
            dom_star: dom.starts_with('*') || dom.starts_with('?'),
            dow_star: dow.starts_with('*') || dow.starts_with('?'),
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << d.day()) != 0;
        let dow = self.days_of_week & (1 << d.weekday().num_days_from_sunday()) != 0;
        match (self.dom_star, self.dow_star) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        }
    }

    /// Matching local minutes from `from` (inclusive) on, in order.
    fn local_times(&self, from: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
        let start_day = from.date();
        let start_minute = from.hour() * 60 + from.minute();
        (0..SEARCH_DAYS)
            .filter_map(move |i| start_day.checked_add_signed(Duration::days(i)))
            .filter(move |d| self.day_matches(*d))
            .flat_map(move |d| {
                let first = if d == start_day { start_minute } else { 0 };
                (first..24 * 60).filter_map(move |m| {
                    let (h, mi) = (m / 60, m % 60);
                    if self.hours & (1 << h) == 0 || self.minutes & (1 << mi) == 0 {
                        return None;
                    }
                    NaiveTime::from_hms_opt(h, mi, 0).map(|t| d.and_time(t))
                })
            })
    }

    /// The instants a local time stands for, by the rules in the module docs.
    fn instants(&self, tz: Tz, local: NaiveDateTime) -> (Option<Millis>, Option<Millis>) {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => (Some(t.timestamp_millis()), None),
            LocalResult::Ambiguous(early, late) => {
                let every_hour = self.hours == (1 << 24) - 1;
                (
                    Some(early.timestamp_millis()),
                    every_hour.then(|| late.timestamp_millis()),
                )
            }
            LocalResult::None => {
                // In a spring-forward gap: use the offset in force a day before.
                let before = local.and_utc() - Duration::days(1);
                let offset = tz
                    .offset_from_utc_datetime(&before.naive_utc())
                    .fix()
                    .local_minus_utc();
                (
                    Some((local.and_utc() - Duration::seconds(offset as i64)).timestamp_millis()),
                    None,
                )
            }
        }
    }

    fn next_after(&self, tz: Tz, t: Millis) -> Option<Millis> {
        let utc = chrono::DateTime::from_timestamp_millis(t)?;
        let local = utc.with_timezone(&tz).naive_local();
        let from = local.with_second(0)?.with_nanosecond(0)? - Duration::minutes(DST_SLACK_MINUTES);
        let mut best: Option<(Millis, NaiveDateTime)> = None;
        for candidate in self.local_times(from) {
            if let Some((_, at)) = best {
                if candidate > at + Duration::minutes(2 * DST_SLACK_MINUTES) {
                    break;
                }
            }
            let (a, b) = self.instants(tz, candidate);
            for ms in [a, b].into_iter().flatten() {
                if ms > t && best.is_none_or(|(m, _)| ms < m) {
                    best = Some((ms, candidate));
                }
            }
        }
        best.map(|(ms, _)| ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn ms(iso: &str) -> Millis {
        DateTime::parse_from_rfc3339(iso)
            .unwrap()
            .timestamp_millis()
    }

    fn iso(ms: Millis) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    fn runs(expr: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
        let s = Schedule::parse(expr, tz).unwrap();
        let mut t = ms(from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = s.next_after(t).unwrap();
            out.push(iso(t));
        }
        out
    }

    fn err(expr: &str, tz: &str) -> String {
        Schedule::parse(expr, tz).unwrap_err().to_string()
    }

    #[test]
    fn daily_at_nine_utc() {
        assert_eq!(
            runs("0 9 * * *", "UTC", "2024-03-01T08:59:59Z", 2),
            ["2024-03-01T09:00:00Z", "2024-03-02T09:00:00Z"]
        );
        // Strictly after: exactly at a run time gives the next one.
        assert_eq!(
            runs("0 9 * * *", "UTC", "2024-03-01T09:00:00Z", 1),
            ["2024-03-02T09:00:00Z"]
        );
    }

    #[test]
    fn every_fifteen_minutes() {
        assert_eq!(
            runs("*/15 * * * *", "UTC", "2024-01-01T10:07:30Z", 4),
            [
                "2024-01-01T10:15:00Z",
                "2024-01-01T10:30:00Z",
                "2024-01-01T10:45:00Z",
                "2024-01-01T11:00:00Z"
            ]
        );
    }

    #[test]
    fn ranges_lists_and_steps() {
        // Minutes 5 and 10-20 by 5, hours 9-10, weekdays only.
        assert_eq!(
            runs(
                "5,10-20/5 9-10 * * mon-fri",
                "UTC",
                "2024-06-07T10:19:00Z",
                5
            ),
            [
                "2024-06-07T10:20:00Z",
                "2024-06-10T09:05:00Z",
                "2024-06-10T09:10:00Z",
                "2024-06-10T09:15:00Z",
                "2024-06-10T09:20:00Z"
            ]
        );
        // `a/step` means from a to the end of the range.
        assert_eq!(
            runs("50/5 0 * * *", "UTC", "2024-01-01T00:00:00Z", 3),
            [
                "2024-01-01T00:50:00Z",
                "2024-01-01T00:55:00Z",
                "2024-01-02T00:50:00Z"
            ]
        );
    }

    #[test]
    fn month_and_day_names_case_insensitive() {
        assert_eq!(
            runs("0 0 1 JAN,Jul *", "UTC", "2024-02-01T00:00:00Z", 2),
            ["2024-07-01T00:00:00Z", "2025-01-01T00:00:00Z"]
        );
        assert_eq!(
            runs("30 8 * * SUN", "UTC", "2024-06-03T00:00:00Z", 1),
            ["2024-06-09T08:30:00Z"]
        );
        // 7 is Sunday too.
        assert_eq!(
            runs("30 8 * * 7", "UTC", "2024-06-03T00:00:00Z", 1),
            ["2024-06-09T08:30:00Z"]
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_restricted() {
        // The 13th, or any Friday (cron's OR rule).
        assert_eq!(
            runs("0 0 13 * 5", "UTC", "2024-09-01T00:00:00Z", 3),
            [
                "2024-09-06T00:00:00Z",
                "2024-09-13T00:00:00Z",
                "2024-09-20T00:00:00Z"
            ]
        );
        // Only the day of month when the week field is `*`.
        assert_eq!(
            runs("0 0 31 * *", "UTC", "2024-04-01T00:00:00Z", 2),
            ["2024-05-31T00:00:00Z", "2024-07-31T00:00:00Z"]
        );
    }

    #[test]
    fn leap_day() {
        assert_eq!(
            runs("0 12 29 2 *", "UTC", "2024-03-01T00:00:00Z", 1),
            ["2028-02-29T12:00:00Z"]
        );
        // Never matches: no run at all.
        let s = Schedule::parse("0 0 30 2 *", "UTC").unwrap();
        assert_eq!(s.next_after(ms("2024-01-01T00:00:00Z")), None);
    }

    #[test]
    fn macros() {
        assert_eq!(
            runs("@daily", "UTC", "2024-01-01T05:00:00Z", 1),
            ["2024-01-02T00:00:00Z"]
        );
        assert_eq!(
            runs("@hourly", "UTC", "2024-01-01T05:10:00Z", 1),
            ["2024-01-01T06:00:00Z"]
        );
    }

    #[test]
    fn in_a_time_zone() {
        // 9:00 in New York is 14:00 UTC in winter, 13:00 UTC in summer.
        assert_eq!(
            runs("0 9 * * *", "America/New_York", "2024-01-15T00:00:00Z", 1),
            ["2024-01-15T14:00:00Z"]
        );
        assert_eq!(
            runs("0 9 * * *", "America/New_York", "2024-07-15T00:00:00Z", 1),
            ["2024-07-15T13:00:00Z"]
        );
        assert_eq!(
            runs("0 9 * * *", "Asia/Kolkata", "2024-07-15T00:00:00Z", 1),
            ["2024-07-15T03:30:00Z"]
        );
    }

    #[test]
    fn spring_forward_runs_skipped_time_once() {
        // 2024-03-10 in New York: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
        assert_eq!(
            runs("30 2 * * *", "America/New_York", "2024-03-09T12:00:00Z", 3),
            [
                "2024-03-10T07:30:00Z", // 03:30 EDT, the instant 02:30 EST would have been
                "2024-03-11T06:30:00Z", // 02:30 EDT
                "2024-03-12T06:30:00Z"
            ]
        );
        // Europe/Berlin 2024-03-31: 02:00 CET → 03:00 CEST.
        assert_eq!(
            runs("30 2 * * *", "Europe/Berlin", "2024-03-30T12:00:00Z", 2),
            ["2024-03-31T01:30:00Z", "2024-04-01T00:30:00Z"]
        );
        // An hourly job does not run twice at the jump.
        let hourly = runs("30 * * * *", "America/New_York", "2024-03-10T05:00:00Z", 3);
        assert_eq!(
            hourly,
            [
                "2024-03-10T05:30:00Z",
                "2024-03-10T06:30:00Z",
                "2024-03-10T07:30:00Z"
            ]
        );
    }

    #[test]
    fn fall_back_runs_repeated_time_once() {
        // Europe/Berlin 2024-10-27: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        assert_eq!(
            runs("30 2 * * *", "Europe/Berlin", "2024-10-26T12:00:00Z", 2),
            ["2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"]
        );
        // New York 2024-11-03: 01:30 happens twice; once only.
        assert_eq!(
            runs("30 1 * * *", "America/New_York", "2024-11-02T12:00:00Z", 2),
            ["2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"]
        );
        // Asked from inside the repeated hour (after the first 01:30), not again that day.
        assert_eq!(
            runs("30 1 * * *", "America/New_York", "2024-11-03T06:10:00Z", 1),
            ["2024-11-04T06:30:00Z"]
        );
    }

    #[test]
    fn fall_back_keeps_wildcard_hour_jobs_regular() {
        // An hourly job runs in both 01:00 hours, so it stays hourly in real time.
        assert_eq!(
            runs("0 * * * *", "America/New_York", "2024-11-03T04:30:00Z", 4),
            [
                "2024-11-03T05:00:00Z",
                "2024-11-03T06:00:00Z",
                "2024-11-03T07:00:00Z",
                "2024-11-03T08:00:00Z"
            ]
        );
        // From late in the first 01:xx hour, the next is 01:00 of the second one.
        assert_eq!(
            runs(
                "*/15 * * * *",
                "America/New_York",
                "2024-11-03T05:50:00Z",
                2
            ),
            ["2024-11-03T06:00:00Z", "2024-11-03T06:15:00Z"]
        );
    }

    #[test]
    fn intervals() {
        let s = Schedule::parse("every 30 minutes", "UTC").unwrap();
        assert_eq!(s.next_after(1_000), Some(1_000 + 30 * 60_000));
        for (expr, ms) in [
            ("every 1 second", 1_000),
            ("every 5 seconds", 5_000),
            ("Every 1 Hour", 3_600_000),
            ("every  2   days", 2 * 86_400_000),
            ("every 1 week", 7 * 86_400_000),
            ("every 3 minute", 180_000),
        ] {
            assert_eq!(
                Schedule::parse(expr, "UTC").unwrap().next_after(0),
                Some(ms),
                "{expr}"
            );
        }
    }

    #[test]
    fn next_run_skips_missed_occurrences() {
        let s = Schedule::parse("every 1 hour", "UTC").unwrap();
        let h = 3_600_000;
        // On time: keeps the phase.
        assert_eq!(s.next_run(10 * h, 10 * h + 5_000), Some(11 * h));
        // Three hours missed: one catch-up (the caller's), then the next future one.
        assert_eq!(s.next_run(10 * h, 13 * h + 5), Some(14 * h));
        let c = Schedule::parse("0 * * * *", "UTC").unwrap();
        assert_eq!(c.next_run(10 * h, 13 * h + 5), Some(14 * h));
    }

    #[test]
    fn errors_quote_the_value() {
        assert_eq!(
            err("61 * * * *", "UTC"),
            "invalid schedule \"61 * * * *\": minute 61 out of range 0-59"
        );
        assert_eq!(
            err("0 24 * * *", "UTC"),
            "invalid schedule \"0 24 * * *\": hour 24 out of range 0-23"
        );
        assert_eq!(
            err("0 0 0 * *", "UTC"),
            "invalid schedule \"0 0 0 * *\": day of month 0 out of range 1-31"
        );
        assert_eq!(
            err("0 0 * 13 *", "UTC"),
            "invalid schedule \"0 0 * 13 *\": month 13 out of range 1-12"
        );
        assert_eq!(
            err("0 0 * * 8", "UTC"),
            "invalid schedule \"0 0 * * 8\": day of week 8 out of range 0-7"
        );
        assert_eq!(
            err("0 0 * * funday", "UTC"),
            "invalid schedule \"0 0 * * funday\": day of week \"funday\" is not a number"
        );
        assert!(
            err("* * * *", "UTC").contains("expected 5 cron fields"),
            "{}",
            err("* * * *", "UTC")
        );
        assert!(err("*/0 * * * *", "UTC").contains("step must be at least 1"));
        assert!(err("5-1 * * * *", "UTC").contains("goes backwards"));
        assert!(err("every 0 hours", "UTC").contains("at least 1"));
        assert!(err("every two hours", "UTC").contains("\"two\""));
        assert!(err("every 1 fortnight", "UTC").contains("unknown interval unit \"fortnight\""));
        assert!(err("every hour", "UTC").starts_with("invalid schedule \"every hour\""));
        assert_eq!(
            err("0 9 * * *", "Mars/Base"),
            "unknown time zone \"Mars/Base\""
        );
        assert_eq!(err("", "UTC"), "invalid schedule \"\": expected 5 cron fields (minute hour day-of-month month day-of-week) or \"every N unit\", got 0");
    }

    #[test]
    fn next_after_never_goes_backwards() {
        // Every minute across both New York changes: strictly increasing, no duplicates.
        for (expr, from) in [
            ("* * * * *", "2024-03-10T05:00:00Z"),
            ("* * * * *", "2024-11-03T04:00:00Z"),
        ] {
            let s = Schedule::parse(expr, "America/New_York").unwrap();
            let mut t = ms(from);
            for _ in 0..300 {
                let n = s.next_after(t).unwrap();
                assert!(n > t);
                assert!(n - t <= 60_000, "gap at {}", iso(t));
                t = n;
            }
        }
    }
}
