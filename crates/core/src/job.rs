//! The job model shared by every provider, the worker and the scheduler.
//! Dates are milliseconds since the Unix epoch; payloads and results stay raw JSON text.

use crate::config::{rule, ConfigError, ConfigValue};
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
pub const MAX_TIMER_MS: u64 = 2_147_483_647;
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
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            max_retries: DEFAULT_MAX_RETRIES,
            timeout: DEFAULT_TIMEOUT_MS,
            priority: 0,
            deduplication_key: None,
        }
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
}

impl EnqueueOptions {
    /// The options found at `path` (`options`, `items[3].options`) checked: a `TypeError` or
    /// `RangeError` naming the field and its value otherwise. The rules are in [`rule`].
    pub fn from_input(input: &EnqueueInput, path: &str) -> Result<Self, ConfigError> {
        rule::enqueue_options(input, path)
    }

    /// The options stored on the job, defaults filled in.
    pub fn job_options(&self) -> JobOptions {
        let d = JobOptions::default();
        JobOptions {
            max_retries: self.max_retries.unwrap_or(d.max_retries),
            timeout: self.timeout.unwrap_or(d.timeout),
            priority: self.priority.unwrap_or(d.priority),
            deduplication_key: self.deduplication_key.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
