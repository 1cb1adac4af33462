//! Where the scheduler keeps its rows: the `ScheduledJob` and `RecurringJob` tables of the
//! spec, on PostgreSQL or SQLite, chosen by URL. The claims here are what make many
//! scheduler instances on one database enqueue each job exactly once.
//!
//! Time: claims, leases and every `updatedAt` the store writes on its own use the
//! database's clock, so a host whose clock is off cannot take over another's live claim.
//! Only rows the caller builds (`insert_scheduled`, `upsert_recurring`) carry its dates.

mod sql;

pub use sql::SqlStore;

use crate::config::SchedulerConfig;
use crate::error::{QueueError, Result};
use crate::job::Millis;
use crate::pg_schema::split_schema;
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

// The statuses below appear as literals in the SQL, so PostgreSQL plans knowing that
// `scheduled`/`enqueuing` rows are few among many `enqueued` ones.

/// `ScheduledJob.status` of a job waiting for its time.
pub const STATUS_SCHEDULED: &str = "scheduled";
/// `ScheduledJob.status` once handed to the provider.
pub const STATUS_ENQUEUED: &str = "enqueued";
/// `ScheduledJob.status` after `cancelScheduledJob`, or when the row can never be enqueued.
pub const STATUS_CANCELLED: &str = "cancelled";
/// Internal `ScheduledJob.status` while one scheduler instance holds the row (a lease that
/// ends `lease` after `updatedAt`). Shown to callers as `scheduled`.
pub const STATUS_ENQUEUING: &str = "enqueuing";

/// A row of `ScheduledJob`. `payload` and `options` are JSON text, as the old scheduler
/// stored them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledJob {
    pub id: String,
    #[serde(rename = "type")]
    pub job_type: String,
    pub payload: String,
    pub options: String,
    pub scheduled_for: Millis,
    pub status: String,
    pub error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A row of `RecurringJob`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurringJob {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: String,
    pub payload: String,
    pub options: String,
    pub schedule: String,
    pub timezone: String,
    pub enabled: bool,
    pub next_run_at: Option<Millis>,
    pub last_run_at: Option<Millis>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What a claim took: the rows, and the rows it took but could not read (kept apart, so
/// that one bad row does not hold back the others).
#[derive(Debug)]
pub struct Claim<T> {
    pub rows: Vec<T>,
    pub unreadable: Vec<Unreadable>,
}

impl<T> Default for Claim<T> {
    fn default() -> Self {
        Claim {
            rows: Vec::new(),
            unreadable: Vec::new(),
        }
    }
}

impl<T> Claim<T> {
    /// Keep a row that failed to decode, when its id and claim token can be read.
    pub(crate) fn set_aside(&mut self, id: Result<String>, token: Result<Millis>, e: QueueError) {
        match (id, token) {
            (Ok(id), Ok(token)) => self.unreadable.push(Unreadable {
                id,
                token,
                error: format!("unreadable row: {e}"),
            }),
            _ => {
                tracing::error!(error = %e, "a claimed scheduler row cannot be read, nor its id; it comes back when its lease ends")
            }
        }
    }
}

/// A claimed row that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub id: String,
    /// The claim token: `updatedAt` of a `ScheduledJob`, `nextRunAt` of a `RecurringJob`.
    pub token: Millis,
    pub error: String,
}

/// A claimed recurring occurrence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecurringClaim {
    /// The row as it was before the claim: `next_run_at` is the occurrence claimed.
    pub job: RecurringJob,
    /// When the claim was made, by the database's clock.
    pub claimed_at: Millis,
    /// The `nextRunAt` the claim wrote (its token).
    pub lease_until: Millis,
}

/// The scheduler's storage. Every time is epoch milliseconds (UTC).
#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    /// `"postgres"` or `"sqlite"`.
    fn backend(&self) -> &'static str;

    /// Create the tables and indexes that are missing (the spec's `db:push`).
    async fn migrate(&self) -> Result<()>;

    /// The database's clock.
    async fn now(&self) -> Result<Millis>;

    async fn insert_scheduled(&self, job: &ScheduledJob) -> Result<()>;

    async fn get_scheduled(&self, id: &str) -> Result<Option<ScheduledJob>>;

    /// `scheduled` → `cancelled`; false when the row is missing or in another state.
    async fn cancel_scheduled(&self, id: &str) -> Result<bool>;

    /// Whether any `ScheduledJob` row (as [`ScheduleStore::claim_scheduled`] would take) and
    /// any `RecurringJob` row (as [`ScheduleStore::claim_recurring`] would take) is due: one
    /// cheap read, so an idle poll writes nothing.
    async fn has_due(&self, lease: Duration) -> Result<(bool, bool)>;

    /// Atomically take up to `limit` rows that are `scheduled` and due, or `enqueuing` under
    /// a claim older than `lease`: they become `enqueuing` with `updatedAt` = the database's
    /// now, the claim token (the same in every row of one claim).
    async fn claim_scheduled(&self, lease: Duration, limit: i64) -> Result<Claim<ScheduledJob>>;

    /// `enqueuing` rows claimed at `claimed_at` → `enqueued` (error cleared). Returns rows changed.
    async fn mark_enqueued(&self, ids: &[String], claimed_at: Millis) -> Result<u64>;

    /// Give back a row claimed at `claimed_at`: set `status` (`scheduled` to retry, or
    /// `cancelled` when it can never be enqueued) and `error`.
    async fn release_scheduled(
        &self,
        id: &str,
        claimed_at: Millis,
        status: &str,
        error: &str,
    ) -> Result<bool>;

    /// Delete up to `limit` `enqueued` and `cancelled` rows last changed more than
    /// `older_than_ms` ago (by the database's clock); returns rows deleted.
    async fn purge_finished(&self, older_than_ms: u64, limit: i64) -> Result<u64>;

    /// Insert, or update the row with the same name (keeping its id, `createdAt` and
    /// `lastRunAt`); returns the stored row.
    async fn upsert_recurring(&self, job: &RecurringJob) -> Result<RecurringJob>;

    async fn get_recurring(&self, name: &str) -> Result<Option<RecurringJob>>;

    async fn enable_recurring(&self, name: &str, next_run_at: Option<Millis>) -> Result<bool>;

    async fn disable_recurring(&self, name: &str) -> Result<bool>;

    async fn delete_recurring(&self, name: &str) -> Result<bool>;

    /// All rows, sorted by name.
    async fn list_recurring(&self) -> Result<Vec<RecurringJob>>;

    /// Atomically take up to `limit` enabled rows whose `nextRunAt` has come, moving
    /// `nextRunAt` to the database's now + `lease` (the claim token; a crashed claimer's
    /// occurrence comes due again then).
    async fn claim_recurring(&self, lease: Duration, limit: i64) -> Result<Claim<RecurringClaim>>;

    /// End a claim made with `lease_until`: set `nextRunAt`, `lastError`, `updatedAt`, and
    /// `lastRunAt` when given. False when the row changed meanwhile (re-registered, deleted).
    async fn finish_recurring(
        &self,
        id: &str,
        lease_until: Millis,
        done: RecurringDone<'_>,
    ) -> Result<bool>;
}

/// What [`ScheduleStore::finish_recurring`] writes.
#[derive(Clone, Copy, Debug)]
pub struct RecurringDone<'a> {
    pub next_run_at: Option<Millis>,
    pub last_run_at: Option<Millis>,
    pub last_error: Option<&'a str>,
}

/// A shared store.
pub type SharedStore = Arc<dyn ScheduleStore>;

/// Default database when neither `scheduler.databaseUrl` nor `DATABASE_URL` is set.
pub const DEFAULT_SQLITE_PATH: &str = ".chaaskit/queue.db";

/// The URL the scheduler uses: `scheduler.databaseUrl`, else `DATABASE_URL`, else the
/// embedded SQLite file `.chaaskit/queue.db` under the working directory.
pub fn resolve_url(config: &SchedulerConfig) -> String {
    if let Some(url) = config
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        return url.trim().to_string();
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        if !url.trim().is_empty() {
            return url.trim().to_string();
        }
    }
    format!("sqlite:{DEFAULT_SQLITE_PATH}?mode=rwc")
}

/// Open the store for `url` (no connection is made until first use).
pub fn open(url: &str) -> Result<SharedStore> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "postgres" | "postgresql" => {
            // Prisma's `?schema=`: the tables Prisma made for the app are in that schema.
            let (url, schema) = split_schema(url, "the scheduler's database URL")?;
            let pool = crate::db::Pool::postgres(&url, schema.as_deref())?;
            Ok(Arc::new(SqlStore::new(pool, schema)))
        }
        "sqlite" => {
            Ok(Arc::new(SqlStore::new(crate::db::Pool::sqlite(url)?, None)))
        }
        _ => Err(QueueError::invalid(format!(
            "unsupported scheduler database URL scheme {:?} (expected postgres://, postgresql:// or sqlite:)",
            format!("{scheme}:")
        ))),
    }
}

/// Open the store `config` points at (see [`resolve_url`]).
pub fn open_for(config: &SchedulerConfig) -> Result<SharedStore> {
    open(&resolve_url(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_precedence() {
        let c = SchedulerConfig {
            database_url: Some("sqlite:a.db".into()),
            ..Default::default()
        };
        assert_eq!(resolve_url(&c), "sqlite:a.db");
    }

    #[test]
    fn unknown_scheme_is_refused() {
        let e = open("mysql://u:p@h/db")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(e, "unsupported scheduler database URL scheme \"mysql:\" (expected postgres://, postgresql:// or sqlite:)");
    }
}
