//! Cron expressions in the dialect of npm `cron-parser` 5 (the old scheduler's parser), parsed
//! and matched by the `croner` crate, with `cron-parser`'s daylight-saving rules on top.
//!
//! `croner` does the grammar (ranges, steps, lists, `L`, `W`, `#`) and the calendar (which
//! local times match). This file only maps `cron-parser`'s spelling onto it, field by field
//! (names per field, `?` in any field, `a/step`), refuses what `cron-parser` refuses where
//! `croner` would read it otherwise, and turns matching local times into instants.
//!
//! Daylight saving, as `cron-parser` 5 computes a next run from a given instant:
//! - a clock going forward by an hour or more: a time in the skipped range runs in the first
//!   hour after it, same minute and second (02:30 → 03:30), when the search starts before the
//!   change; a schedule whose hour field is every hour just goes on in real time;
//! - a clock going back: a repeated time runs at its first instance, and at the second too when
//!   the hour field is every hour or the search starts inside the repeated range.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use crate::job::Millis;

/// `cron-parser` refuses longer expressions; so do we (and a huge string costs nothing).
pub(super) const MAX_LEN: usize = 1024;
/// Bound on matching local times looked at for one next run (a per-second schedule on a
/// daylight-saving day looks at about two hours of them).
const MAX_CANDIDATES: usize = 50_000;
const DAY_SECONDS: i64 = 86_400;
const FIELDS: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];
const ALLOWED: [&str; 6] = [
    "0-59",
    "0-59",
    "0-23",
    "1-31, L, W",
    "1-12, jan-dec",
    "0-7, sun-sat, L, #",
];
const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
/// Longest length of each month (February 29 exists).
const MONTH_DAYS: [u16; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// A parsed cron expression.
#[derive(Clone, Debug)]
pub(super) struct CronSchedule {
    cron: Cron,
    /// The hour field holds all 24 hours: `cron-parser` then keeps both instances of a
    /// repeated time and no skipped-time rule applies.
    every_hour: bool,
}

/// `@name` macros: `cron-parser`'s, plus `@midnight` (as in Vixie cron), case-insensitive.
fn expand_macro(expr: &str) -> Option<&'static str> {
    const MACROS: [(&str, &str); 11] = [
        ("@yearly", "0 0 0 1 1 *"),
        ("@annually", "0 0 0 1 1 *"),
        ("@monthly", "0 0 0 1 * *"),
        ("@weekly", "0 0 0 * * 0"),
        ("@daily", "0 0 0 * * *"),
        ("@midnight", "0 0 0 * * *"),
        ("@hourly", "0 0 * * * *"),
        ("@minutely", "0 * * * * *"),
        ("@secondly", "* * * * * *"),
        ("@weekdays", "0 0 0 * * 1-5"),
        ("@weekends", "0 0 0 * * 0,6"),
    ];
    MACROS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(expr))
        .map(|(_, e)| *e)
}

impl CronSchedule {
    /// Parse a (trimmed) cron expression; the error says what is wrong, without the value.
    pub(super) fn parse(expr: &str) -> Result<CronSchedule, String> {
        let expanded = expand_macro(expr).unwrap_or(expr);
        let mut fields: Vec<&str> = expanded.split_whitespace().collect();
        match fields.len() {
            5 => fields.insert(0, "0"),
            6 => {}
            n => {
                return Err(format!(
                    "expected 5 or 6 cron fields ([second] minute hour day-of-month month day-of-week) or \"every N unit\", got {n}"
                ))
            }
        }
        let mut normal = Vec::with_capacity(6);
        for (i, f) in fields.iter().enumerate() {
            normal.push(
                normalize_field(i, f).map_err(|m| format!("{} field {f:?}: {m}", FIELDS[i]))?,
            );
        }
        let cron = parser().parse(&normal.join(" ")).map_err(|e| {
            // Name the field at fault: parse each alone among wildcards.
            let culprit = (0..6).find(|&i| {
                let mut probe = ["0", "*", "*", "*", "*", "*"].map(String::from);
                probe[i] = normal[i].clone();
                parser().parse(&probe.join(" ")).is_err()
            });
            match culprit {
                Some(i) => format!(
                    "{} field {:?}: {} ({})",
                    FIELDS[i],
                    fields[i],
                    croner_message(&e),
                    ALLOWED[i]
                ),
                None => croner_message(&e),
            }
        })?;
        let p = &cron.pattern;
        // `cron-parser`'s rule: a plain day of month that no listed month has never runs.
        if p.is_dow_wildcard() && !p.days.has_modifiers() {
            if let Some(&first) = p.days.values().first() {
                let longest = p
                    .months
                    .values()
                    .iter()
                    .filter_map(|&m| MONTH_DAYS.get(usize::from(m).wrapping_sub(1)))
                    .max()
                    .copied()
                    .unwrap_or(31);
                if first > longest {
                    return Err(format!(
                        "day of month {first} never occurs in the months given"
                    ));
                }
            }
        }
        let every_hour = p.hours.values().len() == 24;
        Ok(CronSchedule { cron, every_hour })
    }

    /// The first run strictly after `t`, by the rules in the module docs.
    ///
    /// Matching local times are walked in order from `t`'s. Two clock-change cases make a
    /// local time map to an instant out of that order:
    /// - the second instance of a repeated time (kept for an every-hour schedule when the
    ///   walk starts in the first instance of the range): a local time before `t`'s can map
    ///   after it. That only matters when nothing runs before the clock goes back; then the
    ///   walk is made again, from as far back as the clock goes;
    /// - a found run that is a second instance, or a skipped time moved past the change: a
    ///   later local time can still map before it, so that walk goes on as far further.
    pub(super) fn next_after(&self, tz: Tz, t: Millis) -> Option<Millis> {
        let utc = DateTime::from_timestamp_millis(t)?;
        let local = utc.with_timezone(&tz).naive_local().with_nanosecond(0)?;
        let first = self.walk(tz, t, local);
        if !self.every_hour {
            return first;
        }
        let now = offset_at(tz, t)?;
        let day_later = t.saturating_add(DAY_SECONDS * 1000);
        let back = i64::from(now - offset_at(tz, day_later).unwrap_or(now));
        if back <= 0 {
            return first;
        }
        // The clock goes back within a day: second instances start at the change.
        let change = transition_before(tz, day_later)?;
        if first.is_some_and(|f| f < change) {
            return first;
        }
        let again = self.walk(tz, t, local.checked_sub_signed(Duration::seconds(back))?);
        match (first, again) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The earliest instant after `t` of the matching local times from `from` on.
    fn walk(&self, tz: Tz, t: Millis, from: NaiveDateTime) -> Option<Millis> {
        let mut cursor = from;
        let mut inclusive = true;
        // (instant, the local time past which no candidate can map before it)
        let mut best: Option<(Millis, NaiveDateTime)> = None;
        for _ in 0..MAX_CANDIDATES {
            let candidate = self.cron.find_next_occurrence(&cursor, inclusive).ok()?;
            if best.is_some_and(|(_, bound)| candidate > bound) {
                break;
            }
            for (ms, out_of_order) in self.instants(tz, candidate, t).into_iter().flatten() {
                if ms > t && best.is_none_or(|(b, _)| ms < b) {
                    let ahead = if out_of_order {
                        let (min, max) = offset_range(tz, ms);
                        i64::from(max - min)
                    } else {
                        0
                    };
                    best = Some((ms, candidate.checked_add_signed(Duration::seconds(ahead))?));
                }
            }
            cursor = candidate;
            inclusive = false;
        }
        best.map(|(ms, _)| ms)
    }

    /// The instants a matching local time stands for, when searching from `t`, each with
    /// whether it is out of local-time order (see [`Self::next_after`]).
    fn instants(&self, tz: Tz, local: NaiveDateTime, t: Millis) -> [Option<(Millis, bool)>; 2] {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(x) => [Some((x.timestamp_millis(), false)), None],
            LocalResult::Ambiguous(early, late) => {
                let late = late.timestamp_millis();
                // From inside the repeated range, first instances are all behind `t`.
                let from_inside = transition_before(tz, late).is_some_and(|t1| t >= t1);
                let second_too = self.every_hour || from_inside;
                [
                    Some((early.timestamp_millis(), false)),
                    second_too.then_some((late, !from_inside)),
                ]
            }
            LocalResult::None if self.every_hour => [None, None],
            LocalResult::None => [skipped_time_run(tz, local, t).map(|ms| (ms, true)), None],
        }
    }
}

/// Where a local time in a skipped range runs: the same minute and second of the first hour
/// after the range, if the range is at least an hour long and the search starts before it.
fn skipped_time_run(tz: Tz, local: NaiveDateTime, t: Millis) -> Option<Millis> {
    let before = offset_at(tz, local.and_utc().timestamp_millis() - DAY_SECONDS * 1000)?;
    let guess = local.and_utc().timestamp_millis() - i64::from(before) * 1000;
    let change = transition_before(tz, guess)?;
    let after = offset_at(tz, change)?;
    if after - before < 3600 || t >= change {
        return None;
    }
    let landing = DateTime::from_timestamp_millis(change)?
        .with_timezone(&tz)
        .naive_local();
    let run = landing
        .with_minute(local.minute())?
        .with_second(local.second())?;
    tz.from_local_datetime(&run)
        .earliest()
        .map(|x| x.timestamp_millis())
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .sloppy_ranges(true)
        .build()
}

fn croner_message(e: &croner::errors::CronError) -> String {
    let m = e.to_string();
    let m = m
        .strip_prefix("Component error: ")
        .or_else(|| m.strip_prefix("Invalid pattern: "))
        .unwrap_or(&m);
    m.trim_end_matches('.').to_ascii_lowercase()
}

/// One field in `cron-parser`'s spelling, rewritten for `croner`.
fn normalize_field(index: usize, field: &str) -> Result<String, String> {
    let names: &[&str] = match index {
        4 => &MONTH_NAMES,
        5 => &DAY_NAMES,
        _ => &[],
    };
    let offset = if index == 4 { 1 } else { 0 };
    let field = replace_names(field, names, offset)?;
    let extra = match index {
        3 => "LW",
        5 => "L#",
        _ => "",
    };
    if let Some(c) = field
        .chars()
        .find(|c| !(c.is_ascii_digit() || ",-/*?".contains(*c) || extra.contains(*c)))
    {
        return Err(match c {
            'H' | 'h' => "H (hashed) values are not supported".to_string(),
            _ => format!("invalid character {c:?}"),
        });
    }
    let mut items = Vec::new();
    for item in field.split(',') {
        if item.is_empty() {
            return Err("empty list item".to_string());
        }
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (item, None),
        };
        let base = match base {
            "" => {
                return Err(format!(
                    "{item:?} has no start (*/N steps through the whole range)"
                ))
            }
            "*" | "?" => "*".to_string(),
            // `*#2`: every weekday's second occurrence, the days 8 to 14.
            b if index == 5 && step.is_none() && (b.starts_with("*#") || b.starts_with("?#")) => {
                format!("0-6{}", &b[1..])
            }
            b if b.contains(['*', '?']) => return Err(format!("invalid wildcard in {item:?}")),
            b => b.to_string(),
        };
        if index == 5 && base == "L" {
            return Err("a lone L is not a day of week (5L is the last Friday)".to_string());
        }
        items.push(match step {
            Some(s) => format!("{base}/{s}"),
            None => base,
        });
    }
    Ok(items.join(","))
}

/// `cron-parser` reads every run of three letters in a month or weekday field as a name.
fn replace_names(field: &str, names: &[&str], offset: usize) -> Result<String, String> {
    let mut out = String::with_capacity(field.len());
    let mut letters = String::new();
    let flush = |letters: &mut String, out: &mut String| -> Result<(), String> {
        let chars: Vec<char> = letters.chars().collect();
        let mut chunks = chars.chunks_exact(3);
        for chunk in &mut chunks {
            let word: String = chunk.iter().collect::<String>().to_ascii_lowercase();
            match names.iter().position(|n| *n == word) {
                Some(i) => out.push_str(&(i + offset).to_string()),
                None => return Err(format!("unknown name {word:?}")),
            }
        }
        out.extend(chunks.remainder());
        letters.clear();
        Ok(())
    };
    for c in field.chars() {
        if c.is_ascii_alphabetic() && !names.is_empty() {
            letters.push(c);
        } else {
            flush(&mut letters, &mut out)?;
            out.push(c);
        }
    }
    flush(&mut letters, &mut out)?;
    Ok(out)
}

/// UTC offset in seconds at an instant.
fn offset_at(tz: Tz, ms: Millis) -> Option<i32> {
    let utc = DateTime::from_timestamp_millis(ms)?;
    Some(
        tz.offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// The smallest and largest UTC offsets (seconds) within a day either side of `ms`.
fn offset_range(tz: Tz, ms: Millis) -> (i32, i32) {
    let day = DAY_SECONDS * 1000;
    let offsets =
        [ms.saturating_sub(day), ms, ms.saturating_add(day)].map(|m| offset_at(tz, m).unwrap_or(0));
    let min = offsets.iter().min().copied().unwrap_or(0);
    let max = offsets.iter().max().copied().unwrap_or(0);
    (min, max)
}

/// The instant of the clock change in the day before `ms`: the first second whose offset
/// is `ms`'s. `None` when the offset was the same a day before.
fn transition_before(tz: Tz, ms: Millis) -> Option<Millis> {
    let ms = ms - ms.rem_euclid(1000);
    let target = offset_at(tz, ms)?;
    let mut lo = ms.checked_sub(DAY_SECONDS * 1000)?; // offset differs here
    if offset_at(tz, lo)? == target {
        return None;
    }
    let mut hi = ms; // offset is `target` here
    while hi - lo > 1000 {
        let mid = lo + (hi - lo) / 2000 * 1000;
        if offset_at(tz, mid)? == target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}
