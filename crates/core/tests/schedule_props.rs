//! Property tests of schedule parsing through the core's public API: no input panics, every
//! refusal quotes the schedule, and every accepted schedule's runs move forward in time.

use chaaskit_queue_core::schedule::Schedule;
use proptest::prelude::*;

const ZONES: [&str; 6] = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Santiago",
];
/// 2000-01-01 … 2040-01-01 in epoch ms.
const FROM: std::ops::Range<i64> = 946_684_800_000..2_208_988_800_000;

/// Parse and, when accepted, check a few runs: each strictly later than the one before.
fn check(expr: &str, zone: &str, from: i64) -> Result<(), TestCaseError> {
    match Schedule::parse(expr, zone) {
        Ok(s) => {
            let mut t = from;
            for _ in 0..3 {
                match s.next_after(t) {
                    Some(next) => {
                        prop_assert!(next > t, "{expr:?} in {zone}: {next} is not after {t}");
                        t = next;
                    }
                    None => break,
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(
                msg.starts_with("invalid schedule \"") || msg.starts_with("unknown time zone"),
                "{expr:?}: {msg}"
            );
        }
    }
    Ok(())
}

/// One field item in cron-parser's grammar (and `croner`'s extras) over `lo..=hi`.
fn item(lo: u32, hi: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        (lo..=hi).prop_map(|v| v.to_string()),
        (1..=hi - lo + 2).prop_map(|s| format!("*/{s}")),
        (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        (lo..=hi, lo..=hi, 1..=hi - lo + 1).prop_map(|(a, b, s)| format!(
            "{}-{}/{s}",
            a.min(b),
            a.max(b)
        )),
        (lo..=hi, 1..=hi - lo + 1).prop_map(|(a, s)| format!("{a}/{s}")),
    ]
}

fn field(lo: u32, hi: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just("*".to_string()),
        1 => Just("?".to_string()),
        4 => prop::collection::vec(item(lo, hi), 1..4).prop_map(|v| v.join(",")),
    ]
}

fn day_of_month() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => field(1, 31),
        1 => Just("L".to_string()),
        1 => (1..=31u32).prop_map(|d| format!("{d}W")),
        1 => (1..=28u32).prop_map(|d| format!("{d},L")),
    ]
}

fn day_of_week() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => field(0, 7),
        1 => (0..=7u32).prop_map(|d| format!("{d}L")),
        1 => (0..=7u32, 1..=5u32).prop_map(|(d, n)| format!("{d}#{n}")),
        1 => prop::sample::select(vec!["MON-FRI", "sat,sun", "Tue", "fri#L"]).prop_map(String::from),
    ]
}

fn expression() -> impl Strategy<Value = String> {
    (
        prop::option::of(field(0, 59)),
        field(0, 59),
        field(0, 23),
        day_of_month(),
        prop_oneof![
            field(1, 12),
            Just("jan-jun".to_string()),
            Just("DEC".to_string())
        ],
        day_of_week(),
    )
        .prop_map(|(sec, min, hour, dom, month, dow)| {
            let five = format!("{min} {hour} {dom} {month} {dow}");
            match sec {
                Some(s) => format!("{s} {five}"),
                None => five,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_string_parses_or_is_refused_without_panic(
        expr in any::<String>(),
        zone in prop::sample::select(ZONES.to_vec()),
        from in FROM,
    ) {
        check(&expr, zone, from)?;
    }

    #[test]
    fn cron_like_text_never_panics(
        expr in "[0-9*/,?#LW@a-zA-Z -]{0,40}",
        zone in prop::sample::select(ZONES.to_vec()),
        from in FROM,
    ) {
        check(&expr, zone, from)?;
    }

    #[test]
    fn generated_expressions_are_accepted_and_move_forward(
        expr in expression(),
        zone in prop::sample::select(ZONES.to_vec()),
        from in FROM,
    ) {
        // Every generated expression is valid, except a day of month no month has.
        match Schedule::parse(&expr, zone) {
            Ok(_) => check(&expr, zone, from)?,
            Err(e) => prop_assert!(e.to_string().contains("never occurs"), "{expr:?}: {e}"),
        }
    }

    #[test]
    fn any_time_zone_name_is_refused_or_used(zone in any::<String>(), from in any::<i64>()) {
        check("*/5 * * * *", &zone, from)?;
    }

    #[test]
    fn intervals_with_any_count(n in any::<i64>(), unit in "(second|minute|hour|day|week)s?", from in any::<i64>()) {
        check(&format!("every {n} {unit}"), "UTC", from)?;
    }
}
