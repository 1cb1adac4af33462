//! Every rule a config value of the `queue` block must meet, as `deserialize_with` functions
//! (each reading the value whole, so its message can show it) and the checks behind them. The
//! rules of API inputs (enqueue options, list filters) are beside their types, in `job.rs` and
//! `admin.rs`, built from the value-level checks here.

pub use super::error::one_of;
use super::error::{ConfigError, ErrorKind};
use super::value::{js_number, ConfigValue};
use super::*;
use serde::de::{self, Deserializer, Unexpected};

/// What a rule returns.
pub type R<T> = Result<T, ConfigError>;

fn value<'de, D: Deserializer<'de>>(d: D) -> Result<ConfigValue, D::Error> {
    ConfigValue::deserialize(d)
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

/// A provider's database URL (see [`database_url_of`]) whose scheme is one of `schemes`,
/// spelled as the driver takes it (lowercase): the one rule of `validateQueueConfig` and of the
/// `postgres` and `sqlite` providers.
pub fn scheme_url_of(v: ConfigValue, schemes: &[&str]) -> R<String> {
    let expected = match schemes {
        ["sqlite"] => "a sqlite: URL",
        _ => "a postgres:// or postgresql:// URL",
    };
    let got = match &v {
        ConfigValue::String(s) => {
            let scheme = s.split(':').next().unwrap_or_default();
            if schemes.contains(&scheme) && database_url_of(v.clone()).is_ok() {
                return Ok(s.clone());
            }
            ConfigValue::from(redact_url(s).as_str()).describe()
        }
        other => other.describe(),
    };
    Err(ConfigError::expected(ErrorKind::Type, expected, got))
}

// serde's entry points, one per field kind.

pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    to(integer_of(&value(d)?, 0, u64::from(u32::MAX), "").map(|n| n as usize))
}
pub fn concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    to(integer_of(&value(d)?, 1, u64::from(MAX_CONCURRENCY), "").map(|n| n as u32))
}
pub fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    to(number_of(&value(d)?, 0, MAX_TIMER_MS, " ms"))
}
pub fn poll_interval<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    to(number_of(&value(d)?, 1, MAX_TIMER_MS, " ms"))
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
