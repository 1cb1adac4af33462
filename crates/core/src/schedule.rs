//! Recurring-job schedules: cron expressions (the grammar of npm `cron-parser` 5, through the
//! `croner` crate) evaluated in an IANA time zone, and `every N unit` intervals.

mod cron;

use crate::error::{QueueError, Result};
use crate::job::Millis;
use chrono_tz::Tz;
use cron::CronSchedule;

/// The zone a schedule is evaluated in when none is given.
pub const DEFAULT_TIME_ZONE: &str = "UTC";
/// Most runs [`Schedule::runs_after`] lists at once.
pub const MAX_RUNS: usize = 1000;
const MINUTE_MS: i64 = 60_000;
/// How much of a bad value an error message quotes.
const QUOTE_CHARS: usize = 100;

/// A parsed schedule with its time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    kind: Kind,
    tz: Tz,
}

#[derive(Clone, Debug)]
enum Kind {
    Cron(Box<CronSchedule>),
    /// Milliseconds between runs.
    Every(i64),
}

impl Schedule {
    /// Parse `expr` (cron or interval) for the IANA time zone `tz`.
    pub fn parse(expr: &str, tz: &str) -> Result<Schedule> {
        let tz = parse_time_zone(tz)?;
        if expr.chars().count() > cron::MAX_LEN {
            return Err(invalid(
                expr,
                &format!("longer than {} characters", cron::MAX_LEN),
            ));
        }
        let trimmed = expr.trim();
        let is_interval = trimmed
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case("every"));
        let kind = if is_interval {
            Kind::Every(parse_interval(trimmed).map_err(|m| invalid(expr, &m))?)
        } else {
            Kind::Cron(Box::new(
                CronSchedule::parse(trimmed).map_err(|m| invalid(expr, &m))?,
            ))
        };
        Ok(Schedule { kind, tz })
    }

    /// The time zone the schedule is evaluated in.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The first run strictly after `t`: for cron, the next matching second (see
    /// `schedule/cron.rs` for daylight saving); for an interval, `t` plus the interval.
    /// `None` when a cron expression never matches again.
    pub fn next_after(&self, t: Millis) -> Option<Millis> {
        match &self.kind {
            Kind::Every(iv) => t.checked_add(*iv),
            Kind::Cron(c) => c.next_after(self.tz, t),
        }
    }

    /// Up to `count` (at most [`MAX_RUNS`]) consecutive runs after `t`; fewer when a cron
    /// expression stops matching.
    pub fn runs_after(&self, t: Millis, count: usize) -> Vec<Millis> {
        let mut out = Vec::with_capacity(count.min(MAX_RUNS));
        let mut at = t;
        while out.len() < count.min(MAX_RUNS) {
            let Some(next) = self.next_after(at) else {
                break;
            };
            out.push(next);
            at = next;
        }
        out
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
        .map_err(|_| QueueError::invalid(format!("unknown time zone {}", quote(name))))
}

/// `value` as a quoted string, cut short when long.
fn quote(value: &str) -> String {
    let n = value.chars().count();
    if n <= QUOTE_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(QUOTE_CHARS).collect();
        format!("{head:?}… ({n} characters)")
    }
}

fn invalid(expr: &str, msg: &str) -> QueueError {
    QueueError::invalid(format!("invalid schedule {}: {msg}", quote(expr)))
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
        // A day no listed month has is refused, as cron-parser does.
        assert_eq!(
            err("0 0 30 2 *", "UTC"),
            "invalid schedule \"0 0 30 2 *\": day of month 30 never occurs in the months given"
        );
        // With a restricted day of week the OR rule rescues it: Feb 30 never, Mondays yes.
        assert_eq!(
            runs("0 0 30 2 1", "UTC", "2024-01-01T00:00:00Z", 2),
            ["2024-02-05T00:00:00Z", "2024-02-12T00:00:00Z"]
        );
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
        // Asked from inside the second 01:xx hour, cron-parser runs its 01:30 (EST).
        assert_eq!(
            runs("30 1 * * *", "America/New_York", "2024-11-03T06:10:00Z", 2),
            ["2024-11-03T06:30:00Z", "2024-11-04T06:30:00Z"]
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
    fn errors_quote_the_value_and_name_the_field() {
        for (expr, msg) in [
            ("61 * * * *", "minute field \"61\": number out of bounds (0-59)"),
            ("0 24 * * *", "hour field \"24\": number out of bounds (0-23)"),
            ("0 0 0 * *", "day-of-month field \"0\": number out of bounds (1-31, L, W)"),
            ("0 0 * 13 *", "month field \"13\": number out of bounds (1-12, jan-dec)"),
            ("0 0 * * 8", "day-of-week field \"8\": number out of bounds (0-7, sun-sat, L, #)"),
            ("0 0 * * funday", "day-of-week field \"funday\": unknown name \"fun\""),
            ("0 0 * JANUARY *", "month field \"JANUARY\": unknown name \"uar\""),
            // Names are read per field, as cron-parser does (MAR is no weekday).
            ("0 0 * * MAR", "day-of-week field \"MAR\": unknown name \"mar\""),
            ("*/0 * * * *", "minute field \"*/0\": step cannot be zero (0-59)"),
            ("5-1 * * * *", "minute field \"5-1\": range out of bounds (0-59)"),
            ("1/4294967295 * * * *", "minute field \"1/4294967295\": invalid step (0-59)"),
            ("ééé 9 * * *", "minute field \"ééé\": invalid character 'é'"),
            ("每天 9 点 * *", "minute field \"每天\": invalid character '每'"),
            ("H * * * *", "minute field \"H\": H (hashed) values are not supported"),
            ("0 0 * * L", "day-of-week field \"L\": a lone L is not a day of week (5L is the last Friday)"),
            ("1,,2 * * * *", "minute field \"1,,2\": empty list item"),
            (
                "/15 * * * *",
                "minute field \"/15\": \"/15\" has no start (*/N steps through the whole range)",
            ),
            ("5* * * * *", "minute field \"5*\": invalid wildcard in \"5*\""),
            ("0 0 1 * +1", "day-of-week field \"+1\": invalid character '+'"),
            ("0 0 * * 1#6", "day-of-week field \"1#6\": nth specifier out of bounds (0-7, sun-sat, L, #)"),
            ("* * * *", "expected 5 or 6 cron fields ([second] minute hour day-of-month month day-of-week) or \"every N unit\", got 4"),
            ("* * * * * * *", "expected 5 or 6 cron fields ([second] minute hour day-of-month month day-of-week) or \"every N unit\", got 7"),
            ("", "expected 5 or 6 cron fields ([second] minute hour day-of-month month day-of-week) or \"every N unit\", got 0"),
        ] {
            assert_eq!(err(expr, "UTC"), format!("invalid schedule {expr:?}: {msg}"));
        }
        assert!(err("every 0 hours", "UTC").contains("at least 1"));
        assert!(err("every two hours", "UTC").contains("\"two\""));
        assert!(err("every 1 fortnight", "UTC").contains("unknown interval unit \"fortnight\""));
        assert!(err("every hour", "UTC").starts_with("invalid schedule \"every hour\""));
        assert!(err("every 99999999999999999 weeks", "UTC").contains("too long"));
        assert_eq!(
            err("0 9 * * *", "Mars/Base"),
            "unknown time zone \"Mars/Base\""
        );
        // A huge value is refused cheaply and quoted in part.
        let huge = "1,".repeat(100_000);
        let e = err(&huge, "UTC");
        assert!(
            e.ends_with("… (200000 characters): longer than 1024 characters"),
            "{e}"
        );
        assert!(e.len() < 200, "{e}");
    }

    #[test]
    fn six_fields_start_with_seconds() {
        assert_eq!(
            runs("0 30 2 * * *", "UTC", "2024-01-01T00:00:00Z", 2),
            ["2024-01-01T02:30:00Z", "2024-01-02T02:30:00Z"]
        );
        assert_eq!(
            runs("*/10 * * * * *", "UTC", "2024-01-01T00:00:05.500Z", 3),
            [
                "2024-01-01T00:00:10Z",
                "2024-01-01T00:00:20Z",
                "2024-01-01T00:00:30Z"
            ]
        );
        assert_eq!(
            runs("@secondly", "UTC", "2024-01-01T00:00:00Z", 1),
            ["2024-01-01T00:00:01Z"]
        );
    }

    #[test]
    fn last_nearest_weekday_and_nth() {
        // L: the last day of the month (February in a leap year).
        assert_eq!(
            runs("0 0 L * *", "UTC", "2024-01-15T00:00:00Z", 3),
            [
                "2024-01-31T00:00:00Z",
                "2024-02-29T00:00:00Z",
                "2024-03-31T00:00:00Z"
            ]
        );
        // 5L: the last Friday.
        assert_eq!(
            runs("0 18 * * 5L", "UTC", "2024-01-01T00:00:00Z", 2),
            ["2024-01-26T18:00:00Z", "2024-02-23T18:00:00Z"]
        );
        // 1#2: the second Monday; FRI#5 only in months with five Fridays.
        assert_eq!(
            runs("0 9 * * 1#2", "UTC", "2024-01-01T00:00:00Z", 2),
            ["2024-01-08T09:00:00Z", "2024-02-12T09:00:00Z"]
        );
        assert_eq!(
            runs("0 9 * * FRI#5", "UTC", "2024-01-01T00:00:00Z", 2),
            ["2024-03-29T09:00:00Z", "2024-05-31T09:00:00Z"]
        );
        // *#2: any weekday's second occurrence, the 8th to the 14th.
        assert_eq!(
            runs("0 9 * * *#2", "UTC", "2024-01-01T00:00:00Z", 8),
            [
                "2024-01-08T09:00:00Z",
                "2024-01-09T09:00:00Z",
                "2024-01-10T09:00:00Z",
                "2024-01-11T09:00:00Z",
                "2024-01-12T09:00:00Z",
                "2024-01-13T09:00:00Z",
                "2024-01-14T09:00:00Z",
                "2024-02-08T09:00:00Z"
            ]
        );
        // 15W: the weekday nearest the 15th (Sat 15 June 2024 → Fri 14th; Sun 15 Sep → Mon 16th).
        assert_eq!(
            runs("0 9 15W 6,9 *", "UTC", "2024-01-01T00:00:00Z", 2),
            ["2024-06-14T09:00:00Z", "2024-09-16T09:00:00Z"]
        );
        // OR rule with a modifier: the 13th or the second Friday.
        assert_eq!(
            runs("0 9 13 * 5#2", "UTC", "2024-09-01T00:00:00Z", 3),
            [
                "2024-09-13T09:00:00Z",
                "2024-10-11T09:00:00Z",
                "2024-10-13T09:00:00Z"
            ]
        );
    }

    #[test]
    fn question_mark_in_any_field_and_sunday_as_seven() {
        assert_eq!(
            runs("0 9 ? * MON", "UTC", "2024-01-02T00:00:00Z", 1),
            ["2024-01-08T09:00:00Z"]
        );
        assert_eq!(
            runs("0 ? * * *", "UTC", "2024-01-01T00:10:00Z", 1),
            ["2024-01-01T01:00:00Z"]
        );
        assert_eq!(
            runs("0 9 * * 5-7", "UTC", "2024-01-01T00:00:00Z", 3),
            [
                "2024-01-05T09:00:00Z",
                "2024-01-06T09:00:00Z",
                "2024-01-07T09:00:00Z"
            ]
        );
        assert_eq!(
            runs("@weekends", "UTC", "2024-01-01T00:00:00Z", 2),
            ["2024-01-06T00:00:00Z", "2024-01-07T00:00:00Z"]
        );
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
