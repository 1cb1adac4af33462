//! The scheduler's tables in an embedded SQLite file (the zero-setup default). SQLite runs
//! one writer at a time, so each claim is a single conditional `UPDATE`.

use super::{RecurringDone, RecurringJob, ScheduleStore, ScheduledJob};
use crate::error::{QueueError, Result};
use crate::job::Millis;
use async_trait::async_trait;
use chrono::NaiveDateTime;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

const MIGRATION: &str = include_str!("../../../../migrations/sqlite/0001_scheduler.sql");

const SCHEDULED_COLS: &str = r#""id", "type", "payload", "options", "scheduledFor", "status", "error", "createdAt", "updatedAt""#;
const RECURRING_COLS: &str = r#""id", "name", "type", "payload", "options", "schedule", "timezone", "enabled",
    "nextRunAt", "lastRunAt", "lastError", "createdAt", "updatedAt""#;

/// `ScheduledJob`/`RecurringJob` in SQLite; dates are epoch-millisecond integers.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// A pool for a `sqlite:` URL, creating the file if missing; connections open on
    /// first use (call inside a tokio runtime).
    pub fn connect_lazy(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| QueueError::invalid(format!("invalid SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 4 })
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(opts);
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// A date column: epoch milliseconds, or text (`CURRENT_TIMESTAMP` defaults) read as UTC.
fn millis(row: &SqliteRow, col: &str) -> Result<Option<Millis>> {
    if let Ok(v) = row.try_get::<Option<i64>, _>(col) {
        return Ok(v);
    }
    let text: String = row.try_get(col)?;
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(&text, f).ok())
    .map(|t| Some(t.and_utc().timestamp_millis()))
    .ok_or_else(|| {
        QueueError::Store(format!(
            "scheduler database: column {col} holds {text:?}, not a date"
        ))
    })
}

fn required(row: &SqliteRow, col: &str) -> Result<Millis> {
    millis(row, col)?
        .ok_or_else(|| QueueError::Store(format!("scheduler database: column {col} is NULL")))
}

fn scheduled(row: &SqliteRow) -> Result<ScheduledJob> {
    Ok(ScheduledJob {
        id: row.try_get("id")?,
        job_type: row.try_get("type")?,
        payload: row.try_get("payload")?,
        options: row.try_get("options")?,
        scheduled_for: required(row, "scheduledFor")?,
        status: row.try_get("status")?,
        error: row.try_get("error")?,
        created_at: required(row, "createdAt")?,
        updated_at: required(row, "updatedAt")?,
    })
}

fn recurring(row: &SqliteRow) -> Result<RecurringJob> {
    Ok(RecurringJob {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        job_type: row.try_get("type")?,
        payload: row.try_get("payload")?,
        options: row.try_get("options")?,
        schedule: row.try_get("schedule")?,
        timezone: row.try_get("timezone")?,
        enabled: row.try_get("enabled")?,
        next_run_at: millis(row, "nextRunAt")?,
        last_run_at: millis(row, "lastRunAt")?,
        last_error: row.try_get("lastError")?,
        created_at: required(row, "createdAt")?,
        updated_at: required(row, "updatedAt")?,
    })
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::raw_sql(MIGRATION).execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_scheduled(&self, j: &ScheduledJob) -> Result<()> {
        sqlx::query(&format!("INSERT INTO \"ScheduledJob\" ({SCHEDULED_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
            .bind(&j.id)
            .bind(&j.job_type)
            .bind(&j.payload)
            .bind(&j.options)
            .bind(j.scheduled_for)
            .bind(&j.status)
            .bind(&j.error)
            .bind(j.created_at)
            .bind(j.updated_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_scheduled(&self, id: &str) -> Result<Option<ScheduledJob>> {
        let row = sqlx::query(&format!(
            "SELECT {SCHEDULED_COLS} FROM \"ScheduledJob\" WHERE \"id\" = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(scheduled).transpose()
    }

    async fn cancel_scheduled(&self, id: &str, now: Millis) -> Result<bool> {
        let r = sqlx::query(
            r#"UPDATE "ScheduledJob" SET "status" = 'cancelled', "updatedAt" = $2 WHERE "id" = $1 AND "status" = 'scheduled'"#,
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn has_due(&self, now: Millis, stale_before: Millis) -> Result<(bool, bool)> {
        let row = sqlx::query(
            r#"SELECT
                EXISTS (SELECT 1 FROM "ScheduledJob" WHERE "status" = 'scheduled' AND "scheduledFor" <= $1)
                OR EXISTS (SELECT 1 FROM "ScheduledJob" WHERE "status" = 'enqueuing' AND "updatedAt" <= $2) AS "scheduled",
                EXISTS (SELECT 1 FROM "RecurringJob" WHERE "enabled" = 1 AND "nextRunAt" <= $1) AS "recurring""#,
        )
        .bind(now)
        .bind(stale_before)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("scheduled")?, row.try_get("recurring")?))
    }

    async fn claim_scheduled(
        &self,
        now: Millis,
        stale_before: Millis,
        limit: i64,
    ) -> Result<Vec<ScheduledJob>> {
        let sql = format!(
            r#"UPDATE "ScheduledJob" SET "status" = 'enqueuing', "updatedAt" = $1
            WHERE "id" IN (
                SELECT "id" FROM "ScheduledJob"
                WHERE ("status" = 'scheduled' AND "scheduledFor" <= $1) OR ("status" = 'enqueuing' AND "updatedAt" <= $2)
                ORDER BY "scheduledFor" LIMIT $3)
            RETURNING {SCHEDULED_COLS}"#
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(stale_before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(scheduled).collect()
    }

    async fn mark_enqueued(&self, ids: &[String], claimed_at: Millis, now: Millis) -> Result<u64> {
        let ids = serde_json::to_string(ids).map_err(|e| QueueError::Store(e.to_string()))?;
        let r = sqlx::query(
            r#"UPDATE "ScheduledJob" SET "status" = 'enqueued', "error" = NULL, "updatedAt" = $3
            WHERE "id" IN (SELECT "value" FROM json_each($1)) AND "status" = 'enqueuing' AND "updatedAt" = $2"#,
        )
        .bind(ids)
        .bind(claimed_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn release_scheduled(
        &self,
        id: &str,
        claimed_at: Millis,
        status: &str,
        error: &str,
        now: Millis,
    ) -> Result<bool> {
        let r = sqlx::query(
            r#"UPDATE "ScheduledJob" SET "status" = $3, "error" = $4, "updatedAt" = $5
            WHERE "id" = $1 AND "status" = 'enqueuing' AND "updatedAt" = $2"#,
        )
        .bind(id)
        .bind(claimed_at)
        .bind(status)
        .bind(error)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn upsert_recurring(&self, j: &RecurringJob) -> Result<RecurringJob> {
        let sql = format!(
            r#"INSERT INTO "RecurringJob" ({RECURRING_COLS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT ("name") DO UPDATE SET "type" = excluded."type", "payload" = excluded."payload",
                "options" = excluded."options", "schedule" = excluded."schedule", "timezone" = excluded."timezone",
                "enabled" = excluded."enabled", "nextRunAt" = excluded."nextRunAt",
                "lastError" = excluded."lastError", "updatedAt" = excluded."updatedAt"
            RETURNING {RECURRING_COLS}"#
        );
        let row = sqlx::query(&sql)
            .bind(&j.id)
            .bind(&j.name)
            .bind(&j.job_type)
            .bind(&j.payload)
            .bind(&j.options)
            .bind(&j.schedule)
            .bind(&j.timezone)
            .bind(j.enabled)
            .bind(j.next_run_at)
            .bind(j.last_run_at)
            .bind(&j.last_error)
            .bind(j.created_at)
            .bind(j.updated_at)
            .fetch_one(&self.pool)
            .await?;
        recurring(&row)
    }

    async fn get_recurring(&self, name: &str) -> Result<Option<RecurringJob>> {
        let row = sqlx::query(&format!(
            "SELECT {RECURRING_COLS} FROM \"RecurringJob\" WHERE \"name\" = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(recurring).transpose()
    }

    async fn enable_recurring(
        &self,
        name: &str,
        next_run_at: Option<Millis>,
        now: Millis,
    ) -> Result<bool> {
        let r = sqlx::query(
            r#"UPDATE "RecurringJob" SET "enabled" = 1, "nextRunAt" = $2, "updatedAt" = $3 WHERE "name" = $1"#,
        )
        .bind(name)
        .bind(next_run_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn disable_recurring(&self, name: &str, now: Millis) -> Result<bool> {
        let r = sqlx::query(
            r#"UPDATE "RecurringJob" SET "enabled" = 0, "updatedAt" = $2 WHERE "name" = $1"#,
        )
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_recurring(&self, name: &str) -> Result<bool> {
        let r = sqlx::query(r#"DELETE FROM "RecurringJob" WHERE "name" = $1"#)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECURRING_COLS} FROM \"RecurringJob\" ORDER BY \"name\""
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recurring).collect()
    }

    async fn claim_recurring(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<RecurringJob>> {
        let due = sqlx::query(&format!(
            r#"SELECT {RECURRING_COLS} FROM "RecurringJob" WHERE "enabled" = 1 AND "nextRunAt" <= $1
            ORDER BY "nextRunAt" LIMIT $2"#
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for row in &due {
            let job = recurring(row)?;
            // Taken only if no other scheduler moved `nextRunAt` since it was read.
            let r = sqlx::query(
                r#"UPDATE "RecurringJob" SET "nextRunAt" = $3, "updatedAt" = $4
                WHERE "id" = $1 AND "enabled" = 1 AND "nextRunAt" = $2"#,
            )
            .bind(&job.id)
            .bind(job.next_run_at)
            .bind(lease_until)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if r.rows_affected() == 1 {
                claimed.push(job);
            }
        }
        Ok(claimed)
    }

    async fn finish_recurring(
        &self,
        id: &str,
        lease_until: Millis,
        done: RecurringDone<'_>,
    ) -> Result<bool> {
        let r = sqlx::query(
            r#"UPDATE "RecurringJob" SET "nextRunAt" = $3, "lastRunAt" = COALESCE($4, "lastRunAt"),
                "lastError" = $5, "updatedAt" = $6
            WHERE "id" = $1 AND "nextRunAt" = $2"#,
        )
        .bind(id)
        .bind(lease_until)
        .bind(done.next_run_at)
        .bind(done.last_run_at)
        .bind(done.last_error)
        .bind(done.now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
