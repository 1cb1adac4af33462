//! The admin calls: counts by status, newest-first listing by cursor, retry and cancel.

use super::DbQueue;
use crate::admin::{Cursor, JobFilter, JobPage};
use crate::error::{QueueError, Result};
use crate::events::Signal;
use crate::job::QueueStats;
use uuid::Uuid;

/// Stats from `(status as shown, count)` rows.
pub(super) fn stats_from(rows: impl Iterator<Item = Result<(String, i64)>>) -> Result<QueueStats> {
    let mut s = QueueStats::default();
    for r in rows {
        let (status, n) = r?;
        let n = u64::try_from(n).unwrap_or(0);
        match status.as_str() {
            "pending" => s.pending += n,
            "scheduled" => s.scheduled += n,
            "processing" => s.processing += n,
            "completed" => s.completed += n,
            "failed" => s.failed += n,
            "dead" => s.dead += n,
            "cancelled" => s.cancelled += n,
            _ => {}
        }
    }
    Ok(s)
}

impl DbQueue {
    pub(super) async fn list_page(&self, filter: JobFilter) -> Result<JobPage> {
        let limit = filter.limit()?;
        let after = match filter.position()? {
            None => None,
            Some(c) => Some((
                c.created_at,
                Uuid::try_parse(&c.id).map_err(|_| {
                    QueueError::invalid(format!(
                        "cursor must be a nextCursor returned by listJobs, got {:?}",
                        filter.cursor.as_deref().unwrap_or_default()
                    ))
                })?,
            )),
        };
        let want = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let mut jobs = self
            .inner
            .backend
            .table()
            .list(filter.status, filter.job_type.as_deref(), after, want)
            .await?;
        let more = jobs.len() > limit;
        jobs.truncate(limit);
        let next_cursor = if more {
            jobs.last().map(|j| Cursor::after(j).encode())
        } else {
            None
        };
        Ok(JobPage { jobs, next_cursor })
    }

    pub(super) async fn retry_one(&self, id: &str) -> Result<bool> {
        let Ok(id) = Uuid::try_parse(id) else {
            return Ok(false);
        };
        let retried = self.inner.backend.table().retry(id).await?;
        if retried {
            self.inner.shared.wake();
            self.inner.backend.notify_others().await?;
        }
        Ok(retried)
    }

    pub(super) async fn cancel_one(&self, id: &str) -> Result<bool> {
        let Ok(uuid) = Uuid::try_parse(id) else {
            return Ok(false);
        };
        if !self.inner.backend.table().cancel(uuid).await? {
            return Ok(false);
        }
        // A worker running it here aborts at once; one in another process (PostgreSQL) when
        // the notification arrives, or at its next heartbeat if it is lost.
        let id = uuid.hyphenated().to_string();
        self.inner
            .shared
            .signals
            .send(Signal::Cancelled(id.clone()));
        self.inner.backend.notify_cancel(&id).await?;
        Ok(true)
    }
}
