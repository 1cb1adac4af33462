//! The admin API's shapes: the filter and page of `listJobs`, its opaque keyset cursor, and
//! the error of a provider that cannot do an admin operation.

use crate::config::rule::R;
use crate::config::{rule::one_of, ConfigError, ConfigValue, ErrorKind};
use crate::error::QueueError;
use crate::job::{job_type_at, non_empty_of, Job, JobStatus, Millis};

/// Largest `limit` of one `listJobs` page.
pub const MAX_LIST_LIMIT: usize = 1000;
/// `limit` of a `listJobs` page when none is given.
pub const DEFAULT_LIST_LIMIT: usize = 50;

/// What `listJobs` lists: jobs of this status and type, newest first, `limit` at a time,
/// starting after `cursor` (the `next_cursor` of the page before).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub job_type: Option<String>,
    /// At most this many jobs (1 to [`MAX_LIST_LIMIT`]); `None`: [`DEFAULT_LIST_LIMIT`].
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl JobFilter {
    /// The page size asked for, checked.
    pub fn limit(&self) -> Result<usize, QueueError> {
        match self.limit {
            None => Ok(DEFAULT_LIST_LIMIT),
            Some(n) if (1..=MAX_LIST_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(QueueError::invalid(format!(
                "limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {n}"
            ))),
        }
    }

    /// The cursor's position, checked; `None` for the first page.
    pub fn position(&self) -> Result<Option<Cursor>, QueueError> {
        self.cursor.as_deref().map(Cursor::decode).transpose()
    }
}

/// One page of `listJobs`: `next_cursor` is `None` on the last page.
#[derive(Clone, Debug)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub next_cursor: Option<String>,
}

/// A place in the newest-first order: after the job created at `created_at` with id `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: Millis,
    pub id: String,
}

impl Cursor {
    /// The cursor just past `job`.
    pub fn after(job: &Job) -> Cursor {
        Cursor {
            created_at: job.created_at,
            id: job.id.clone(),
        }
    }

    /// Opaque text: `<createdAt in base 36>.<id>`.
    pub fn encode(&self) -> String {
        let mut n = self.created_at.unsigned_abs();
        let mut digits = Vec::new();
        loop {
            digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
            n /= 36;
            if n == 0 {
                break;
            }
        }
        if self.created_at < 0 {
            digits.push(b'-');
        }
        digits.reverse();
        format!("{}.{}", String::from_utf8_lossy(&digits), self.id)
    }

    pub fn decode(text: &str) -> Result<Cursor, QueueError> {
        let bad = || {
            QueueError::invalid(format!(
                "cursor must be a nextCursor returned by listJobs, got {text:?}"
            ))
        };
        let (at, id) = text.split_once('.').ok_or_else(bad)?;
        let created_at = i64::from_str_radix(at, 36).map_err(|_| bad())?;
        if id.is_empty() || id.len() > 200 {
            return Err(bad());
        }
        Ok(Cursor {
            created_at,
            id: id.to_owned(),
        })
    }
}

/// The error of an admin operation a provider cannot do.
pub fn unsupported(provider: &str, operation: &str) -> QueueError {
    QueueError::Unsupported(format!(
        "{operation} is not supported by the {provider} provider"
    ))
}

// ---- input rules ----------------------------------------------------------------------------

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
        // A cursor is not a name: only non-empty.
        v => Some(non_empty_of(v).map_err(|e| e.at(&format!("{path}.cursor")))?),
    };
    Ok(JobFilter {
        status,
        job_type,
        limit,
        cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_name_themselves() {
        for at in [0, 1, 1_764_000_000_123, -5] {
            let c = Cursor {
                created_at: at,
                id: "a.b-c".into(),
            };
            assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        }
        for bad in ["", "x", ".id", "zz!.id", "12."] {
            let e = Cursor::decode(bad).unwrap_err().to_string();
            assert!(e.contains("cursor must be"), "{bad}: {e}");
        }
    }

    #[test]
    fn limit_is_checked() {
        let f = |n| JobFilter {
            limit: n,
            ..Default::default()
        };
        assert_eq!(f(None).limit().unwrap(), DEFAULT_LIST_LIMIT);
        assert_eq!(f(Some(7)).limit().unwrap(), 7);
        assert!(f(Some(0))
            .limit()
            .unwrap_err()
            .to_string()
            .contains("limit"));
        assert!(f(Some(MAX_LIST_LIMIT + 1)).limit().is_err());
    }

    #[test]
    fn list_filters_are_checked() {
        let n = ConfigValue::Number;
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
    }
}
