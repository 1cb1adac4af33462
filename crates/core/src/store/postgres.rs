//! The scheduler's tables on PostgreSQL (the production store). Claims use
//! `FOR UPDATE SKIP LOCKED`, so concurrent schedulers never take the same row.

use super::{redact, RecurringDone, RecurringJob, ScheduleStore, ScheduledJob};
use crate::error::{QueueError, Result};
use crate::job::Millis;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use std::time::Duration;

const MIGRATION: &str = include_str!("../../../../migrations/postgres/0001_scheduler.sql");

const SCHEDULED_COLS: &str = r#""id", "type", "payload", "options", "scheduledFor", "status", "error", "createdAt", "updatedAt""#;
const RECURRING_COLS: &str = r#""id", "name", "type", "payload", "options", "schedule", "timezone", "enabled",
    "nextRunAt", "lastRunAt", "lastError", "createdAt", "updatedAt""#;

/// `ScheduledJob`/`RecurringJob` on PostgreSQL.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// A pool for `url`; connections open on first use (call inside a tokio runtime).
    pub fn connect_lazy(url: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url).map_err(|e| {
            QueueError::invalid(format!("invalid PostgreSQL URL {:?}: {e}", redact(url)))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(opts);
        Ok(PostgresStore { pool })
    }

    /// A store over an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        PostgresStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn ts(ms: Millis) -> NaiveDateTime {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .naive_utc()
}

fn ms(t: NaiveDateTime) -> Millis {
    t.and_utc().timestamp_millis()
}

fn scheduled(row: &PgRow) -> Result<ScheduledJob> {
    Ok(ScheduledJob {
        id: row.try_get("id")?,
        job_type: row.try_get("type")?,
        payload: row.try_get("payload")?,
        options: row.try_get("options")?,
        scheduled_for: ms(row.try_get("scheduledFor")?),
        status: row.try_get("status")?,
        error: row.try_get("error")?,
        created_at: ms(row.try_get("createdAt")?),
        updated_at: ms(row.try_get("updatedAt")?),
    })
}

fn recurring(row: &PgRow) -> Result<RecurringJob> {
    Ok(RecurringJob {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        job_type: row.try_get("type")?,
        payload: row.try_get("payload")?,
        options: row.try_get("options")?,
        schedule: row.try_get("schedule")?,
        timezone: row.try_get("timezone")?,
        enabled: row.try_get("enabled")?,
        next_run_at: row
            .try_get::<Option<NaiveDateTime>, _>("nextRunAt")?
            .map(ms),
        last_run_at: row
            .try_get::<Option<NaiveDateTime>, _>("lastRunAt")?
            .map(ms),
        last_error: row.try_get("lastError")?,
        created_at: ms(row.try_get("createdAt")?),
        updated_at: ms(row.try_get("updatedAt")?),
    })
}

#[async_trait]
impl ScheduleStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
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
            .bind(ts(j.scheduled_for))
            .bind(&j.status)
            .bind(&j.error)
            .bind(ts(j.created_at))
            .bind(ts(j.updated_at))
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
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn has_due(&self, now: Millis, stale_before: Millis) -> Result<(bool, bool)> {
        let row = sqlx::query(
            r#"SELECT
                EXISTS (SELECT 1 FROM "ScheduledJob" WHERE "status" = 'scheduled' AND "scheduledFor" <= $1)
                OR EXISTS (SELECT 1 FROM "ScheduledJob" WHERE "status" = 'enqueuing' AND "updatedAt" <= $2) AS "scheduled",
                EXISTS (SELECT 1 FROM "RecurringJob" WHERE "enabled" = TRUE AND "nextRunAt" <= $1) AS "recurring""#,
        )
        .bind(ts(now))
        .bind(ts(stale_before))
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
                ORDER BY "scheduledFor" LIMIT $3 FOR UPDATE SKIP LOCKED)
            RETURNING {SCHEDULED_COLS}"#
        );
        let rows = sqlx::query(&sql)
            .bind(ts(now))
            .bind(ts(stale_before))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(scheduled).collect()
    }

    async fn mark_enqueued(&self, ids: &[String], claimed_at: Millis, now: Millis) -> Result<u64> {
        let r = sqlx::query(
            r#"UPDATE "ScheduledJob" SET "status" = 'enqueued', "error" = NULL, "updatedAt" = $3
            WHERE "id" = ANY($1) AND "status" = 'enqueuing' AND "updatedAt" = $2"#,
        )
        .bind(ids)
        .bind(ts(claimed_at))
        .bind(ts(now))
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
        .bind(ts(claimed_at))
        .bind(status)
        .bind(error)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn upsert_recurring(&self, j: &RecurringJob) -> Result<RecurringJob> {
        let sql = format!(
            r#"INSERT INTO "RecurringJob" ({RECURRING_COLS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT ("name") DO UPDATE SET "type" = EXCLUDED."type", "payload" = EXCLUDED."payload",
                "options" = EXCLUDED."options", "schedule" = EXCLUDED."schedule", "timezone" = EXCLUDED."timezone",
                "enabled" = EXCLUDED."enabled", "nextRunAt" = EXCLUDED."nextRunAt",
                "lastError" = EXCLUDED."lastError", "updatedAt" = EXCLUDED."updatedAt"
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
            .bind(j.next_run_at.map(ts))
            .bind(j.last_run_at.map(ts))
            .bind(&j.last_error)
            .bind(ts(j.created_at))
            .bind(ts(j.updated_at))
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
            r#"UPDATE "RecurringJob" SET "enabled" = TRUE, "nextRunAt" = $2, "updatedAt" = $3 WHERE "name" = $1"#,
        )
        .bind(name)
        .bind(next_run_at.map(ts))
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn disable_recurring(&self, name: &str, now: Millis) -> Result<bool> {
        let r = sqlx::query(
            r#"UPDATE "RecurringJob" SET "enabled" = FALSE, "updatedAt" = $2 WHERE "name" = $1"#,
        )
        .bind(name)
        .bind(ts(now))
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
        let sql = r#"WITH due AS (
                SELECT "id", "nextRunAt" AS "occurrence" FROM "RecurringJob"
                WHERE "enabled" = TRUE AND "nextRunAt" <= $1
                ORDER BY "nextRunAt" LIMIT $3 FOR UPDATE SKIP LOCKED)
            UPDATE "RecurringJob" r SET "nextRunAt" = $2, "updatedAt" = $1
            FROM due WHERE r."id" = due."id"
            RETURNING r."id", r."name", r."type", r."payload", r."options", r."schedule", r."timezone",
                r."enabled", due."occurrence" AS "nextRunAt", r."lastRunAt", r."lastError", r."createdAt",
                r."updatedAt""#;
        let rows = sqlx::query(sql)
            .bind(ts(now))
            .bind(ts(lease_until))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(recurring).collect()
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
        .bind(ts(lease_until))
        .bind(done.next_run_at.map(ts))
        .bind(done.last_run_at.map(ts))
        .bind(done.last_error)
        .bind(ts(done.now))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
