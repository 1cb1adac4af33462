//! Every rule a config value must meet, as `deserialize_with` functions (each reading the
//! value whole, so its message can show it) and the checks behind them.

use super::error::{ConfigError, ErrorKind};
use super::value::{js_number, ConfigValue};
use super::*;
use crate::admin::{JobFilter, MAX_LIST_LIMIT};
use crate::job::{
    EnqueueInput, EnqueueOptions, JobStatus, Millis, DEFAULT_RECEIVE_MAX, DEFAULT_RECEIVE_WAIT_S,
    MAX_DATE_MS, MAX_DELAY_MS, MAX_TIMER_MS,
};
use serde::de::{self, Deserializer, Unexpected};

type R<T> = Result<T, ConfigError>;

fn value<'de, D: Deserializer<'de>>(d: D) -> Result<ConfigValue, D::Error> {
    ConfigValue::deserialize(d)
}

/// `'a', 'b' or 'c'`.
pub fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// A rule's error as the deserializer's own (a [`ConfigError`] again, under [`ValueDe`]).
fn to<E: de::Error, T>(r: R<T>) -> Result<T, E> {
    r.map_err(|e| match (&e.parts, e.kind) {
        (Some((exp, got)), ErrorKind::Range) => {
            E::invalid_value(Unexpected::Other(got), &exp.as_str())
        }
        (Some((exp, got)), _) => E::invalid_type(Unexpected::Other(got), &exp.as_str()),
        (None, _) => E::custom(&e.message),
    })
}

/// An integer in `min..=max`: `must be a non-negative integer up to MAX`, then `at least MIN`.
pub fn integer_of(v: &ConfigValue, min: u64, max: u64, unit: &str) -> R<u64> {
    match *v {
        ConfigValue::Number(n)
            if n.is_finite() && n.fract() == 0.0 && n >= 0.0 && n <= max as f64 =>
        {
            let n = n as u64;
            if n < min {
                Err(ConfigError::expected(
                    ErrorKind::Range,
                    format!("at least {min}{unit}"),
                    n.to_string(),
                ))
            } else {
                Ok(n)
            }
        }
        _ => Err(ConfigError::expected(
            ErrorKind::Range,
            format!("a non-negative integer up to {max}"),
            v.describe(),
        )),
    }
}

/// A finite number in `min..=max`, rounded to an integer.
pub fn number_of(v: &ConfigValue, min: u64, max: u64, unit: &str) -> R<u64> {
    match *v {
        ConfigValue::Number(n) if n.is_finite() && n >= 0.0 && n <= max as f64 => {
            if n < min as f64 {
                Err(ConfigError::expected(
                    ErrorKind::Range,
                    format!("at least {min}{unit}"),
                    js_number(n),
                ))
            } else {
                Ok(n.round() as u64)
            }
        }
        _ => Err(ConfigError::expected(
            ErrorKind::Range,
            format!("a non-negative finite number up to {max}"),
            v.describe(),
        )),
    }
}

pub fn boolean_of(v: &ConfigValue) -> R<bool> {
    match *v {
        ConfigValue::Bool(b) => Ok(b),
        _ => Err(ConfigError::expected(
            ErrorKind::Type,
            "a boolean",
            v.describe(),
        )),
    }
}

pub fn text_of(v: ConfigValue) -> R<String> {
    match v {
        ConfigValue::String(s) if !s.trim().is_empty() => Ok(s),
        other => Err(ConfigError::expected(
            ErrorKind::Type,
            "a non-empty string",
            other.describe(),
        )),
    }
}

pub fn http_url_of(v: ConfigValue) -> R<String> {
    let s = text_of(v)?;
    match url::Url::parse(&s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(s),
        _ => Err(ConfigError::expected(
            ErrorKind::Type,
            "an http(s) URL",
            ConfigValue::from(redact_url(&s).as_str()).describe(),
        )),
    }
}

pub fn visibility_timeout_of(v: ConfigValue) -> R<u32> {
    integer_of(&v, 1, u64::from(MAX_VISIBILITY_TIMEOUT_S), "").map(|n| n as u32)
}

/// SQS's own bounds of a long poll's `WaitTimeSeconds` (0, a short poll, is the worker's first).
pub fn wait_time_seconds_of(v: ConfigValue) -> R<u32> {
    integer_of(&v, 1, 20, " s").map(|n| n as u32)
}

pub fn max_message_bytes_of(v: ConfigValue) -> R<usize> {
    integer_of(&v, MIN_MESSAGE_BYTES as u64, MAX_MESSAGE_BYTES as u64, "").map(|n| n as usize)
}

pub fn database_url_of(v: ConfigValue) -> R<String> {
    const EXPECTED: &str = "a postgres://, postgresql:// or sqlite: URL";
    let ConfigValue::String(s) = v else {
        return Err(ConfigError::expected(
            ErrorKind::Type,
            EXPECTED,
            v.describe(),
        ));
    };
    let (scheme, rest) = s.split_once(':').unwrap_or_default();
    let ok = match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => rest.starts_with("//"),
        "sqlite" => !rest.is_empty(),
        _ => false,
    };
    if ok {
        return Ok(s);
    }
    Err(ConfigError::expected(
        ErrorKind::Type,
        EXPECTED,
        ConfigValue::from(redact_url(&s).as_str()).describe(),
    ))
}

/// Largest retention, in milliseconds (the largest integer a JavaScript number holds exactly).
const MAX_DURATION_MS: u64 = 9_007_199_254_740_991;

/// A database URL (see [`database_url_of`]) whose scheme is one of `schemes`.
pub fn scheme_url_of(v: ConfigValue, schemes: &[&str]) -> R<String> {
    let expected = match schemes {
        ["sqlite"] => "a sqlite: URL",
        _ => "a postgres:// or postgresql:// URL",
    };
    let got = match &v {
        ConfigValue::String(s) => {
            let scheme = s.split(':').next().unwrap_or_default().to_ascii_lowercase();
            if schemes.contains(&scheme.as_str()) && database_url_of(v.clone()).is_ok() {
                return Ok(s.clone());
            }
            ConfigValue::from(redact_url(s).as_str()).describe()
        }
        other => other.describe(),
    };
    Err(ConfigError::expected(ErrorKind::Type, expected, got))
}

// ---- a job: its type, an enqueue's options, a bulk item, a date ---------------------------

/// Longest job type, deduplication key or recurring-job name, in UTF-8 bytes. Every backend
/// stores and indexes these (PostgreSQL refuses an index row over about 2,700 bytes).
pub const MAX_NAME_BYTES: usize = 1024;

/// A non-empty string (`TypeError` otherwise).
fn non_empty_of(v: ConfigValue) -> R<String> {
    match v {
        ConfigValue::String(s) if !s.is_empty() => Ok(s),
        other => Err(ConfigError::expected(
            ErrorKind::Type,
            "a non-empty string",
            other.describe(),
        )),
    }
}

/// A job type, a deduplication key or a recurring job's name: a non-empty string
/// (`TypeError` otherwise) of at most [`MAX_NAME_BYTES`] bytes with no NUL character
/// (`RangeError` otherwise). The one rule of every provider and entry point.
pub fn job_type_of(v: ConfigValue) -> R<String> {
    let s = non_empty_of(v)?;
    if s.len() > MAX_NAME_BYTES || s.as_bytes().contains(&0) {
        return Err(ConfigError::expected(
            ErrorKind::Range,
            format!("at most {MAX_NAME_BYTES} bytes (UTF-8) with no NUL character"),
            format!(
                "{} ({} bytes)",
                ConfigValue::String(s.clone()).describe(),
                s.len()
            ),
        ));
    }
    Ok(s)
}

/// [`job_type_of`] for a name that arrived as a string (`pause(type)`, a recurring job's
/// name): [`crate::QueueError::Invalid`] naming `field`.
pub fn check_name(field: &str, name: &str) -> crate::Result<()> {
    job_type_of(ConfigValue::String(name.to_owned()))
        .map(drop)
        .map_err(|e| crate::QueueError::invalid(e.at(field).to_string()))
}

/// The job type found at `path` (`type`, `input.type`).
pub fn job_type_at(v: ConfigValue, path: &str) -> R<String> {
    job_type_of(v).map_err(|e| e.at(path))
}

/// The type of `enqueueBulk`'s item `i` (its path is only formatted for an error).
pub fn item_type_of(v: ConfigValue, i: usize) -> R<String> {
    job_type_of(v).map_err(|e| e.at(&format!("items[{i}].type")))
}

/// A date as epoch milliseconds (a JavaScript `Date` arrives as its time value): finite and
/// within a `Date`'s range.
pub fn date_of(v: &ConfigValue) -> R<Millis> {
    match *v {
        ConfigValue::Number(n) if n.is_finite() && n.abs() <= MAX_DATE_MS as f64 => {
            Ok(n.trunc() as Millis)
        }
        _ => Err(ConfigError::expected(
            ErrorKind::Range,
            "a valid Date",
            v.describe(),
        )),
    }
}

/// The date found at `path` (`date`, `options.from`).
pub fn date_at(v: &ConfigValue, path: &str) -> R<Millis> {
    date_of(v).map_err(|e| e.at(path))
}

/// A `u32` option (`maxRetries`, `priority`).
fn u32_of(v: &ConfigValue) -> R<u32> {
    integer_of(v, 0, u64::from(u32::MAX), "").map(|n| n as u32)
}

/// Every rule of `EnqueueOptions`, for the options found at `path`. Absent fields stay `None`
/// (their defaults are [`JobOptions`]'); `null` is a value, and a wrong one.
pub fn enqueue_options(o: &EnqueueInput, path: &str) -> R<EnqueueOptions> {
    fn field<T>(
        v: &ConfigValue,
        path: &str,
        name: &str,
        read: impl FnOnce(&ConfigValue) -> R<T>,
    ) -> R<Option<T>> {
        if matches!(v, ConfigValue::Undefined) {
            return Ok(None);
        }
        read(v)
            .map(Some)
            .map_err(|e| e.at(&format!("{path}.{name}")))
    }
    Ok(EnqueueOptions {
        delay: field(&o.delay, path, "delay", |v| {
            number_of(v, 0, MAX_DELAY_MS, " ms")
        })?,
        scheduled_for: field(&o.scheduled_for, path, "scheduledFor", date_of)?,
        max_retries: field(&o.max_retries, path, "maxRetries", u32_of)?,
        timeout: field(&o.timeout, path, "timeout", |v| {
            number_of(v, 1, MAX_TIMER_MS, " ms")
        })?,
        priority: field(&o.priority, path, "priority", u32_of)?,
        deduplication_key: field(&o.deduplication_key, path, "deduplicationKey", |v| {
            job_type_of(v.clone())
        })?,
        // The trace context is not a caller's option with rules: the glue sets it after.
        traceparent: None,
        tracestate: None,
    })
}

/// A handler's `ctx.progress(percent)`: a number from 0 to 100.
pub fn progress_of(v: &ConfigValue) -> R<f64> {
    match *v {
        ConfigValue::Number(n) if (0.0..=100.0).contains(&n) => Ok(n),
        _ => Err(
            ConfigError::expected(ErrorKind::Range, "a number from 0 to 100", v.describe())
                .at("progress"),
        ),
    }
}

/// `receive(maxMessages, waitTimeSeconds)`'s arguments checked, defaults filled in: how many
/// jobs, and how long to wait for the first, in milliseconds.
pub fn receive_args(max: &ConfigValue, wait_seconds: &ConfigValue) -> R<(u32, u64)> {
    let max = match max {
        ConfigValue::Undefined => DEFAULT_RECEIVE_MAX,
        v => u32_of(v).map_err(|e| e.at("maxMessages"))?,
    };
    let wait_ms = match *wait_seconds {
        ConfigValue::Undefined => DEFAULT_RECEIVE_WAIT_S * 1000,
        ConfigValue::Number(s)
            if s.is_finite() && s >= 0.0 && s * 1000.0 <= MAX_DELAY_MS as f64 =>
        {
            (s * 1000.0).round() as u64
        }
        ref v => {
            return Err(ConfigError::expected(
                ErrorKind::Range,
                "a non-negative finite number of seconds",
                v.describe(),
            )
            .at("waitTimeSeconds"))
        }
    };
    Ok((max, wait_ms))
}

/// `listJobs`' options found at `path` (`options`), as the caller gave them, checked: `status`
/// one of [`JobStatus::ALL`], `type` a job type, `limit` from 1 to [`MAX_LIST_LIMIT`] (default
/// [`crate::admin::DEFAULT_LIST_LIMIT`]), `cursor` a string (`null`: the first page).
pub fn list_filter(
    status: &ConfigValue,
    job_type: ConfigValue,
    limit: &ConfigValue,
    cursor: ConfigValue,
    path: &str,
) -> R<JobFilter> {
    let status = match status {
        ConfigValue::Undefined => None,
        ConfigValue::String(s) if JobStatus::parse(s).is_some() => JobStatus::parse(s),
        other => {
            let names: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
            return Err(ConfigError::expected(
                ErrorKind::Type,
                format!("one of {}", one_of(&names)),
                other.describe(),
            )
            .at(&format!("{path}.status")));
        }
    };
    let job_type = match job_type {
        ConfigValue::Undefined => None,
        v => Some(job_type_at(v, &format!("{path}.type"))?),
    };
    let limit = match *limit {
        ConfigValue::Undefined => None,
        ConfigValue::Number(n) if n.fract() == 0.0 && n >= 1.0 && n <= MAX_LIST_LIMIT as f64 => {
            Some(n as usize)
        }
        ref v => {
            return Err(ConfigError::expected(
                ErrorKind::Range,
                format!("an integer from 1 to {MAX_LIST_LIMIT}"),
                v.describe(),
            )
            .at(&format!("{path}.limit")))
        }
    };
    let cursor = match cursor {
        ConfigValue::Undefined | ConfigValue::Null => None,
        v => Some(non_empty_of(v).map_err(|e| e.at(&format!("{path}.cursor")))?),
    };
    Ok(JobFilter {
        status,
        job_type,
        limit,
        cursor,
    })
}

/// What an `enqueueBulk` item at index `i` that is not `{ type, payload?, options? }` is told:
/// it is not an object, or its `type` is not a job type. `None` when it is fine.
pub fn bulk_item_error(item: &ConfigValue, i: usize) -> Option<ConfigError> {
    let ConfigValue::Object(entries) = item else {
        return Some(
            ConfigError::expected(ErrorKind::Type, "an object", item.describe())
                .at(&format!("items[{i}]")),
        );
    };
    let ty = entries
        .iter()
        .find(|(k, _)| k == "type")
        .map_or(ConfigValue::Undefined, |(_, v)| v.clone());
    item_type_of(ty, i).err()
}

/// `items must be an array, got …`.
pub fn bulk_items_error(v: &ConfigValue) -> ConfigError {
    ConfigError::expected(ErrorKind::Type, "an array", v.describe()).at("items")
}

/// An options argument that is not an object (`options must be an object, got 5`); `None`
/// for an object, `undefined` or `null` (no options).
pub fn options_object_error(v: &ConfigValue, path: &str) -> Option<ConfigError> {
    match v {
        ConfigValue::Object(_) | ConfigValue::Undefined | ConfigValue::Null => None,
        other => {
            Some(ConfigError::expected(ErrorKind::Type, "an object", other.describe()).at(path))
        }
    }
}

// serde's entry points, one per field kind.

pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    to(integer_of(&value(d)?, 0, u64::from(u32::MAX), "").map(|n| n as usize))
}
pub fn concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    to(integer_of(&value(d)?, 1, u64::from(MAX_CONCURRENCY), "").map(|n| n as u32))
}
pub fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    to(number_of(&value(d)?, 0, MAX_INTERVAL_MS, " ms"))
}
pub fn poll_interval<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    to(number_of(&value(d)?, 1, MAX_INTERVAL_MS, " ms"))
}
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    to(boolean_of(&value(d)?))
}
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    to(text_of(value(d)?))
}
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    to(text_of(value(d)?)).map(Some)
}
pub fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    to(integer_of(&value(d)?, 0, u64::from(u16::MAX), "").map(|n| Some(n as u16)))
}
pub fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    to(http_url_of(value(d)?))
}
pub fn opt_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    to(http_url_of(value(d)?)).map(Some)
}
pub fn visibility_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    to(visibility_timeout_of(value(d)?))
}
pub fn wait_time_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    to(wait_time_seconds_of(value(d)?))
}
pub fn max_message_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    to(max_message_bytes_of(value(d)?))
}
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    to(integer_of(&value(d)?, 0, MAX_DURATION_MS, " ms"))
}
pub fn postgres_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    to(scheme_url_of(value(d)?, &["postgres", "postgresql"])).map(Some)
}
pub fn sqlite_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    to(scheme_url_of(value(d)?, &["sqlite"]))
}
pub fn database_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    to(database_url_of(value(d)?)).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: f64) -> ConfigValue {
        ConfigValue::Number(x)
    }

    #[test]
    fn a_name_is_non_empty_without_nul_and_at_most_max_name_bytes() {
        let s = |v: &str| ConfigValue::String(v.to_owned());
        let at_max = "é".repeat(MAX_NAME_BYTES / 2);
        assert_eq!(job_type_of(s(&at_max)).unwrap(), at_max);
        let over = format!("{at_max}x");
        let e = job_type_of(s(&over)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Range);
        assert!(
            e.to_string()
                .ends_with(&format!("({} bytes)", MAX_NAME_BYTES + 1)),
            "{e}"
        );
        let e = job_type_of(s("a\0b")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "must be at most 1024 bytes (UTF-8) with no NUL character, got \"a\\u0000b\" (3 bytes)"
        );
        assert_eq!(job_type_of(s("")).unwrap_err().kind, ErrorKind::Type);
        // the same rule, as the core's error naming the field (pause, a recurring job's name)
        assert!(check_name("name", "ok").is_ok());
        let e = check_name("name", "a\0").unwrap_err();
        assert!(matches!(e, crate::QueueError::Invalid(_)));
        assert!(
            e.to_string().starts_with("name must be at most 1024 bytes"),
            "{e}"
        );
        // a cursor is not a name: only non-empty
        let f = list_filter(
            &ConfigValue::Undefined,
            ConfigValue::Undefined,
            &ConfigValue::Undefined,
            s(&"c".repeat(2000)),
            "options",
        );
        assert!(f.is_ok());
    }

    #[test]
    fn enqueue_options_name_the_field_and_value() {
        let bad = |input: EnqueueInput| {
            enqueue_options(&input, "items[2].options")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(EnqueueInput {
                timeout: n(0.0),
                ..Default::default()
            }),
            "items[2].options.timeout must be at least 1 ms, got 0"
        );
        assert_eq!(
            bad(EnqueueInput {
                delay: ConfigValue::Null,
                ..Default::default()
            }),
            "items[2].options.delay must be a non-negative finite number up to 9007199254740991, got null"
        );
        assert_eq!(
            bad(EnqueueInput {
                scheduled_for: ConfigValue::Other("Date(Invalid Date)".into()),
                ..Default::default()
            }),
            "items[2].options.scheduledFor must be a valid Date, got Date(Invalid Date)"
        );
        assert_eq!(
            bad(EnqueueInput {
                deduplication_key: "".into(),
                ..Default::default()
            }),
            "items[2].options.deduplicationKey must be a non-empty string, got \"\""
        );
        let ok = enqueue_options(
            &EnqueueInput {
                delay: n(10.4),
                scheduled_for: n(-1.5),
                max_retries: n(0.0),
                timeout: n(MAX_TIMER_MS as f64),
                priority: n(4_294_967_295.0),
                deduplication_key: " ".into(),
            },
            "options",
        )
        .unwrap();
        assert_eq!(ok.delay, Some(10));
        assert_eq!(ok.scheduled_for, Some(-1));
        assert_eq!(ok.max_retries, Some(0));
        assert_eq!(ok.timeout, Some(MAX_TIMER_MS));
        assert_eq!(ok.priority, Some(u32::MAX));
        assert_eq!(ok.deduplication_key.as_deref(), Some(" "));
        assert_eq!(
            enqueue_options(&EnqueueInput::default(), "options").unwrap(),
            EnqueueOptions::default()
        );
    }

    #[test]
    fn bulk_items_and_receive_and_list() {
        assert_eq!(
            bulk_item_error(&n(5.0), 3).unwrap().to_string(),
            "items[3] must be an object, got 5"
        );
        let item = ConfigValue::Object(vec![("type".into(), ConfigValue::Bool(true))]);
        assert_eq!(
            bulk_item_error(&item, 0).unwrap().to_string(),
            "items[0].type must be a non-empty string, got true"
        );
        assert_eq!(
            receive_args(&ConfigValue::Undefined, &ConfigValue::Undefined).unwrap(),
            (DEFAULT_RECEIVE_MAX, DEFAULT_RECEIVE_WAIT_S * 1000)
        );
        assert_eq!(receive_args(&n(0.0), &n(0.25)).unwrap(), (0, 250));
        assert!(receive_args(&n(-1.0), &ConfigValue::Undefined)
            .unwrap_err()
            .to_string()
            .starts_with("maxMessages must be"));
        let e = list_filter(
            &ConfigValue::Undefined,
            ConfigValue::Undefined,
            &n(0.0),
            ConfigValue::Null,
            "options",
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Range);
        assert_eq!(
            e.to_string(),
            "options.limit must be an integer from 1 to 1000, got 0"
        );
        let f = list_filter(
            &"dead".into(),
            "email".into(),
            &n(7.0),
            "c".into(),
            "options",
        )
        .unwrap();
        assert_eq!(f.status, Some(JobStatus::Dead));
        assert_eq!(f.limit, Some(7));
        assert!(progress_of(&n(100.5)).is_err());
        assert_eq!(progress_of(&n(12.5)).unwrap(), 12.5);
    }
}
