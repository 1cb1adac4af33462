//! The job model shared by every provider, the worker and the scheduler.
//! Dates are milliseconds since the Unix epoch; payloads and results stay raw JSON text.

use crate::config::rule::{integer_of, number_of, R};
use crate::config::{ConfigError, ConfigValue, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Default for [`JobOptions::max_retries`].
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default for [`JobOptions::timeout`], in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Largest timeout accepted, in milliseconds (the largest a JS timer takes).
pub use crate::config::MAX_TIMER_MS;
/// Largest delay accepted, in milliseconds (the largest integer a JavaScript number holds exactly).
pub const MAX_DELAY_MS: u64 = 9_007_199_254_740_991;
/// Default of `receive`'s `maxMessages`.
pub const DEFAULT_RECEIVE_MAX: u32 = 1;
/// Default of `receive`'s `waitTimeSeconds`.
pub const DEFAULT_RECEIVE_WAIT_S: u64 = 20;
/// Largest distance of a date from the epoch, in milliseconds (the range of a JavaScript `Date`).
pub const MAX_DATE_MS: i64 = 8_640_000_000_000_000;

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Visible, waiting for a worker.
    Pending,
    /// Not visible before its `scheduled_for` time.
    Scheduled,
    /// Handed to a receiver and not yet acknowledged or failed.
    Processing,
    /// Acknowledged.
    Completed,
    /// An attempt failed; waiting out its backoff before it is pending again.
    Failed,
    /// Out of retries.
    Dead,
    /// Cancelled by an admin (`cancelJob`): never runs again.
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Completed, dead and cancelled jobs are finished: they never run again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Dead | JobStatus::Cancelled
        )
    }

    /// Every status, in a fixed order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Pending,
        JobStatus::Scheduled,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Dead,
        JobStatus::Cancelled,
    ];

    /// The status named `s` (`"pending"`, …), if any.
    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Options stored with a job. Every field has a default so rows and messages written by
/// the old JavaScript queue, which may omit any of them, still parse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobOptions {
    /// Retries after the first attempt: a job runs at most `1 + max_retries` times.
    pub max_retries: u32,
    /// Milliseconds an attempt may run before its signal aborts and it counts as failed.
    pub timeout: u64,
    /// Lower runs first.
    pub priority: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplication_key: Option<String>,
    /// W3C `traceparent` of the enqueue that made the job (OpenTelemetry): the worker's span
    /// for each attempt continues that trace. Stored with the options, so the durable
    /// providers keep it without a column of its own; SQS carries it as a message attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C `tracestate` that came with [`JobOptions::traceparent`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            max_retries: DEFAULT_MAX_RETRIES,
            timeout: DEFAULT_TIMEOUT_MS,
            priority: 0,
            deduplication_key: None,
            traceparent: None,
            tracestate: None,
        }
    }
}

/// Longest `tracestate` kept (the W3C limit a propagator may cut to).
pub const MAX_TRACESTATE_LEN: usize = 512;

/// Whether `s` is a W3C `traceparent` this package carries: `vv-<32 hex>-<16 hex>-<2 hex>`,
/// lowercase, a version other than `ff`, ids not all zero, and exactly 55 characters for
/// version `00` (a later version may append fields after a `-`).
pub fn is_traceparent(s: &str) -> bool {
    let b = s.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|x| x.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
    };
    let zero = |r: std::ops::Range<usize>| b[r].iter().all(|&c| c == b'0');
    let shape = b.len() >= 55
        && hex(0..2)
        && b[2] == b'-'
        && hex(3..35)
        && b[35] == b'-'
        && hex(36..52)
        && b[52] == b'-'
        && hex(53..55);
    shape
        && &b[0..2] != b"ff"
        && !zero(3..35)
        && !zero(36..52)
        && (b.len() == 55 || (&b[0..2] != b"00" && b[55] == b'-'))
}

/// The trace context to keep: `traceparent` when it is valid, with `tracestate` when that
/// is printable ASCII of at most [`MAX_TRACESTATE_LEN`] bytes; anything else is dropped (a
/// trace context is advisory and never fails a job).
pub fn trace_context(
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) -> (Option<String>, Option<String>) {
    match traceparent {
        Some(tp) if is_traceparent(tp) => {
            let ts = tracestate.filter(|ts| {
                !ts.is_empty()
                    && ts.len() <= MAX_TRACESTATE_LEN
                    && ts.bytes().all(|c| (0x20..=0x7e).contains(&c))
            });
            (Some(tp.to_owned()), ts.map(str::to_owned))
        }
        _ => (None, None),
    }
}

/// One enqueue's options as the caller gave them, each field's value unread (`Undefined` when
/// absent); [`EnqueueOptions::from_input`] checks them. Dates arrive as epoch milliseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnqueueInput {
    pub delay: ConfigValue,
    pub scheduled_for: ConfigValue,
    pub max_retries: ConfigValue,
    pub timeout: ConfigValue,
    pub priority: ConfigValue,
    pub deduplication_key: ConfigValue,
}

/// What a caller asks for at enqueue time (`EnqueueOptions` in JavaScript).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnqueueOptions {
    pub delay: Option<u64>,
    pub scheduled_for: Option<Millis>,
    pub max_retries: Option<u32>,
    pub timeout: Option<u64>,
    pub deduplication_key: Option<String>,
    pub priority: Option<u32>,
    /// W3C trace context of the enqueue (set by the OpenTelemetry glue, see `otel.js`).
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl EnqueueOptions {
    /// The options found at `path` (`options`, `items[3].options`) checked: a `TypeError` or
    /// `RangeError` naming the field and its value otherwise. The rules are [`enqueue_options`].
    pub fn from_input(input: &EnqueueInput, path: &str) -> Result<Self, ConfigError> {
        enqueue_options(input, path)
    }

    /// The options stored on the job, defaults filled in.
    pub fn job_options(&self) -> JobOptions {
        let d = JobOptions::default();
        let (traceparent, tracestate) =
            trace_context(self.traceparent.as_deref(), self.tracestate.as_deref());
        JobOptions {
            max_retries: self.max_retries.unwrap_or(d.max_retries),
            timeout: self.timeout.unwrap_or(d.timeout),
            priority: self.priority.unwrap_or(d.priority),
            deduplication_key: self.deduplication_key.clone(),
            traceparent,
            tracestate,
        }
    }

    /// When the job becomes visible, if later than `now`: `scheduledFor` wins over `delay`.
    pub fn visible_at(&self, now: Millis) -> Option<Millis> {
        let at = match (self.scheduled_for, self.delay) {
            (Some(at), _) => at,
            (None, Some(d)) if d > 0 => now.saturating_add(d as Millis),
            _ => return None,
        };
        (at > now).then_some(at)
    }

    /// The same options with a stored job's options as the base (the scheduler's rows).
    pub fn from_job_options(o: &JobOptions) -> Self {
        EnqueueOptions {
            max_retries: Some(o.max_retries),
            timeout: Some(o.timeout),
            priority: Some(o.priority),
            deduplication_key: o.deduplication_key.clone(),
            traceparent: o.traceparent.clone(),
            tracestate: o.tracestate.clone(),
            ..Default::default()
        }
    }
}

/// A job to be enqueued.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub job_type: String,
    /// The payload as JSON text.
    pub payload: Box<RawValue>,
    pub options: EnqueueOptions,
}

impl NewJob {
    pub fn new(
        job_type: impl Into<String>,
        payload: Box<RawValue>,
        options: EnqueueOptions,
    ) -> Self {
        NewJob {
            job_type: job_type.into(),
            payload,
            options,
        }
    }
}

/// A snapshot of a job, as `getJob` and `enqueue` return it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    #[serde(rename = "type")]
    pub job_type: String,
    pub payload: Box<RawValue>,
    pub options: JobOptions,
    pub status: JobStatus,
    pub attempts: u32,
    pub created_at: Millis,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scheduled_for: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub completed_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
    /// Last value a handler passed to `ctx.progress`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub progress: Option<f64>,
    /// What the handler returned, as JSON text.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub result: Option<Box<RawValue>>,
}

/// A job handed to a receiver, with the handle that acknowledges or fails this attempt.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedJob {
    #[serde(flatten)]
    pub job: Job,
    pub receipt_handle: String,
}

/// Counts of jobs by state (`QueueStats` in JavaScript).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    pub pending: u64,
    pub processing: u64,
    pub completed: u64,
    pub failed: u64,
    pub dead: u64,
    pub scheduled: u64,
    pub cancelled: u64,
}

/// Backoff before retry number `attempts` (the attempt that just failed was number
/// `attempts`): `min(1000 × 2^attempts, 60000)` ms, as the old queue did.
pub fn retry_backoff_ms(attempts: u32) -> u64 {
    1000u64.saturating_mul(1u64 << attempts.min(16)).min(60_000)
}

/// Whether a job that has run `attempts` times may run again.
pub fn has_retries_left(attempts: u32, options: &JobOptions) -> bool {
    attempts <= options.max_retries
}

/// Parse JSON text into a raw value, for payloads and results.
pub fn raw_json(text: &str) -> Result<Box<RawValue>, serde_json::Error> {
    RawValue::from_string(text.to_owned())
}

// ---- input rules: a job's type, an enqueue's options, a bulk item, a date ------------------

/// Longest job type, deduplication key or recurring-job name, in UTF-8 bytes. Every backend
/// stores and indexes these (PostgreSQL refuses an index row over about 2,700 bytes).
pub const MAX_NAME_BYTES: usize = 1024;

/// A non-empty string (`TypeError` otherwise).
pub fn non_empty_of(v: ConfigValue) -> R<String> {
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
/// name): [`crate::error::QueueError::Invalid`] naming `field`.
pub fn check_name(field: &str, name: &str) -> crate::error::Result<()> {
    job_type_of(ConfigValue::String(name.to_owned()))
        .map(drop)
        .map_err(|e| crate::error::QueueError::invalid(e.at(field).to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(e, crate::error::QueueError::Invalid(_)));
        assert!(
            e.to_string().starts_with("name must be at most 1024 bytes"),
            "{e}"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(retry_backoff_ms(0), 1000);
        assert_eq!(retry_backoff_ms(1), 2000);
        assert_eq!(retry_backoff_ms(5), 32_000);
        assert_eq!(retry_backoff_ms(6), 60_000);
        assert_eq!(retry_backoff_ms(40), 60_000);
    }

    #[test]
    fn retries_mean_retries() {
        let o = JobOptions {
            max_retries: 2,
            ..Default::default()
        };
        assert!(has_retries_left(1, &o));
        assert!(has_retries_left(2, &o));
        assert!(!has_retries_left(3, &o));
        let zero = JobOptions {
            max_retries: 0,
            ..Default::default()
        };
        assert!(!has_retries_left(1, &zero));
    }

    #[test]
    fn old_options_parse_with_defaults() {
        let o: JobOptions = serde_json::from_str(r#"{"priority":2,"delay":5}"#).unwrap();
        assert_eq!(
            o,
            JobOptions {
                priority: 2,
                ..Default::default()
            }
        );
    }

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_shape() {
        assert!(is_traceparent(TP));
        assert!(is_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later"
        ));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "éé-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(!is_traceparent(bad), "{bad:?}");
        }
    }

    #[test]
    fn trace_context_kept_only_when_valid() {
        let o = EnqueueOptions {
            traceparent: Some(TP.into()),
            tracestate: Some("vendor=1".into()),
            ..Default::default()
        };
        let j = o.job_options();
        assert_eq!(j.traceparent.as_deref(), Some(TP));
        assert_eq!(j.tracestate.as_deref(), Some("vendor=1"));
        let text = serde_json::to_string(&j).unwrap();
        let back: JobOptions = serde_json::from_str(&text).unwrap();
        assert_eq!(back, j);
        assert_eq!(EnqueueOptions::from_job_options(&j).job_options(), j);
        let bad = EnqueueOptions {
            traceparent: Some("nope".into()),
            tracestate: Some("vendor=1".into()),
            ..Default::default()
        };
        assert_eq!(bad.job_options().traceparent, None);
        assert_eq!(bad.job_options().tracestate, None);
        let long = trace_context(Some(TP), Some(&"a".repeat(MAX_TRACESTATE_LEN + 1)));
        assert_eq!(long, (Some(TP.to_owned()), None));
        assert!(!serde_json::to_string(&JobOptions::default())
            .unwrap()
            .contains("trace"));
    }

    #[test]
    fn scheduled_for_wins_over_delay() {
        let o = EnqueueOptions {
            delay: Some(10),
            scheduled_for: Some(500),
            ..Default::default()
        };
        assert_eq!(o.visible_at(100), Some(500));
        let past = EnqueueOptions {
            scheduled_for: Some(50),
            ..Default::default()
        };
        assert_eq!(past.visible_at(100), None);
        let d = EnqueueOptions {
            delay: Some(10),
            ..Default::default()
        };
        assert_eq!(d.visible_at(100), Some(110));
    }
}

#[cfg(test)]
mod input_tests {
    use super::*;

    fn n(x: f64) -> ConfigValue {
        ConfigValue::Number(x)
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
    fn bulk_items_receive_and_progress() {
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
        assert!(progress_of(&n(100.5)).is_err());
        assert_eq!(progress_of(&n(12.5)).unwrap(), 12.5);
    }
}
