//! The scheduler's statements, written once for both databases: each operation is one SQL
//! text built from the shared columns and the [`Dialect`]'s pieces, bound the same way.

use super::{Claim, RecurringClaim, RecurringDone, RecurringJob, ScheduleStore, ScheduledJob};
use crate::db::dialect::{lease_ms, Dialect};
use crate::db::{Arg, Pool, Row};
use crate::error::{QueueError, Result};
use crate::job::Millis;
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::Duration;

const SCHEDULED_COLS: &str = r#""id", "type", "payload", "options", "scheduledFor", "status", "error", "createdAt", "updatedAt""#;
const RECURRING_COLS: &str = r#""id", "name", "type", "payload", "options", "schedule", "timezone", "enabled",
    "nextRunAt", "lastRunAt", "lastError", "createdAt", "updatedAt""#;

/// Every statement the store runs, made once for its dialect.
struct Statements {
    insert_scheduled: String,
    get_scheduled: String,
    cancel_scheduled: String,
    purge_finished: String,
    has_due: String,
    claim_scheduled: String,
    mark_enqueued: String,
    release_scheduled: String,
    upsert_recurring: String,
    get_recurring: String,
    enable_recurring: String,
    disable_recurring: String,
    delete_recurring: String,
    list_recurring: String,
    due_recurring: String,
    lease_recurring: String,
    finish_recurring: String,
    now: String,
}

impl Statements {
    fn new(d: Dialect) -> Statements {
        let now = d.utc_clock();
        Statements {
            insert_scheduled: format!(
                r#"INSERT INTO "ScheduledJob" ({SCHEDULED_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#
            ),
            get_scheduled: format!(
                r#"SELECT {SCHEDULED_COLS} FROM "ScheduledJob" WHERE "id" = $1"#
            ),
            cancel_scheduled: format!(
                r#"UPDATE "ScheduledJob" SET "status" = 'cancelled', "updatedAt" = {now}
                WHERE "id" = $1 AND "status" = 'scheduled'"#
            ),
            // By primary key from a list made first (an `IN (SELECT …)` may be hash-joined
            // against a scan of the table); deleters in several processes skip each other.
            purge_finished: format!(
                r#"DELETE FROM "ScheduledJob" WHERE {picked}"#,
                picked = d.among(
                    r#""id""#,
                    &format!(
                        r#"SELECT "id" FROM "ScheduledJob" f WHERE "status" IN ('enqueued', 'cancelled')
                    AND "updatedAt" < {before} LIMIT $2{lock}"#,
                        before = d.utc_clock_plus("$1"),
                        lock = d.lock_of("f"),
                    )
                )
            ),
            has_due: format!(
                r#"SELECT
                EXISTS (SELECT 1 FROM "ScheduledJob" WHERE "status" = 'scheduled' AND "scheduledFor" <= {now})
                OR EXISTS (SELECT 1 FROM "ScheduledJob" WHERE "status" = 'enqueuing' AND "updatedAt" <= {stale}) AS "scheduled",
                EXISTS (SELECT 1 FROM "RecurringJob" WHERE "enabled" = TRUE AND "nextRunAt" <= {now}) AS "recurring""#,
                stale = d.utc_clock_plus("$1"),
            ),
            // By primary key from a list made first, as the queue claims: an `IN (SELECT …)`
            // may be hash-joined against a scan of the whole table.
            claim_scheduled: format!(
                r#"UPDATE "ScheduledJob" SET "status" = 'enqueuing', "updatedAt" = {now}
                WHERE {picked}
                RETURNING {SCHEDULED_COLS}"#,
                picked = d.among(
                    r#""id""#,
                    &format!(
                        r#"SELECT "id" FROM "ScheduledJob" c
                    WHERE ("status" = 'scheduled' AND "scheduledFor" <= {now}) OR ("status" = 'enqueuing' AND "updatedAt" <= {stale})
                    ORDER BY "scheduledFor" LIMIT $2{lock}"#,
                        stale = d.utc_clock_plus("$1"),
                        lock = d.lock_of("c"),
                    )
                ),
            ),
            mark_enqueued: format!(
                r#"UPDATE "ScheduledJob" SET "status" = 'enqueued', "error" = NULL, "updatedAt" = {now}
                WHERE {ids} AND "status" = 'enqueuing' AND "updatedAt" = $2"#,
                ids = d.among(r#""id""#, &d.json_texts("$1")),
            ),
            release_scheduled: format!(
                r#"UPDATE "ScheduledJob" SET "status" = $3, "error" = $4, "updatedAt" = {now}
                WHERE "id" = $1 AND "status" = 'enqueuing' AND "updatedAt" = $2"#
            ),
            upsert_recurring: format!(
                r#"INSERT INTO "RecurringJob" ({RECURRING_COLS})
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                ON CONFLICT ("name") DO UPDATE SET "type" = EXCLUDED."type", "payload" = EXCLUDED."payload",
                    "options" = EXCLUDED."options", "schedule" = EXCLUDED."schedule", "timezone" = EXCLUDED."timezone",
                    "enabled" = EXCLUDED."enabled", "nextRunAt" = EXCLUDED."nextRunAt",
                    "lastError" = EXCLUDED."lastError", "updatedAt" = EXCLUDED."updatedAt"
                RETURNING {RECURRING_COLS}"#
            ),
            get_recurring: format!(
                r#"SELECT {RECURRING_COLS} FROM "RecurringJob" WHERE "name" = $1"#
            ),
            enable_recurring: format!(
                r#"UPDATE "RecurringJob" SET "enabled" = TRUE, "nextRunAt" = $2, "updatedAt" = {now} WHERE "name" = $1"#
            ),
            disable_recurring: format!(
                r#"UPDATE "RecurringJob" SET "enabled" = FALSE, "updatedAt" = {now} WHERE "name" = $1"#
            ),
            delete_recurring: r#"DELETE FROM "RecurringJob" WHERE "name" = $1"#.to_owned(),
            list_recurring: format!(
                r#"SELECT {RECURRING_COLS} FROM "RecurringJob" ORDER BY "name""#
            ),
            due_recurring: format!(
                r#"SELECT {RECURRING_COLS} FROM "RecurringJob" r WHERE "enabled" = TRUE AND "nextRunAt" <= {now}
                ORDER BY "nextRunAt" LIMIT $1{lock}"#,
                lock = d.lock_of("r"),
            ),
            lease_recurring: format!(
                r#"UPDATE "RecurringJob" SET "nextRunAt" = {until}, "updatedAt" = {now}
                WHERE {ids}
                RETURNING "id", "nextRunAt", "updatedAt""#,
                until = d.utc_clock_plus("$2"),
                ids = d.among(r#""id""#, &d.json_texts("$1")),
            ),
            finish_recurring: format!(
                r#"UPDATE "RecurringJob" SET "nextRunAt" = $3, "lastRunAt" = COALESCE($4, "lastRunAt"),
                    "lastError" = $5, "updatedAt" = {now}
                WHERE "id" = $1 AND "nextRunAt" = $2"#
            ),
            now: format!(r#"SELECT {now} AS "now""#),
        }
    }
}

/// `ScheduledJob`/`RecurringJob` on PostgreSQL or SQLite.
pub struct SqlStore {
    pool: Pool,
    sql: Statements,
    /// PostgreSQL: the schema the URL's `?schema=` named (the pool's `search_path`), created
    /// by `migrate` when missing; `None` for the server's default.
    schema: Option<String>,
}

impl SqlStore {
    pub(crate) fn new(pool: Pool, schema: Option<String>) -> SqlStore {
        let sql = Statements::new(pool.dialect());
        SqlStore { pool, sql, schema }
    }
}

fn scheduled(row: &Row) -> Result<ScheduledJob> {
    Ok(ScheduledJob {
        id: row.get("id")?,
        job_type: row.get("type")?,
        payload: row.get("payload")?,
        options: row.get("options")?,
        scheduled_for: row.time("scheduledFor")?,
        status: row.get("status")?,
        error: row.get("error")?,
        created_at: row.time("createdAt")?,
        updated_at: row.time("updatedAt")?,
    })
}

fn recurring(row: &Row) -> Result<RecurringJob> {
    Ok(RecurringJob {
        id: row.get("id")?,
        name: row.get("name")?,
        job_type: row.get("type")?,
        payload: row.get("payload")?,
        options: row.get("options")?,
        schedule: row.get("schedule")?,
        timezone: row.get("timezone")?,
        enabled: row.get("enabled")?,
        next_run_at: row.opt_time("nextRunAt")?,
        last_run_at: row.opt_time("lastRunAt")?,
        last_error: row.get("lastError")?,
        created_at: row.time("createdAt")?,
        updated_at: row.time("updatedAt")?,
    })
}

fn json_ids<S: AsRef<str>>(ids: &[S]) -> Result<String> {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&ids).map_err(|e| QueueError::Store(e.to_string()))
}

#[async_trait]
impl ScheduleStore for SqlStore {
    fn backend(&self) -> &'static str {
        self.pool.dialect().name()
    }

    async fn migrate(&self) -> Result<()> {
        let label = format!("scheduler database ({})", self.pool.dialect().name());
        // On PostgreSQL, the URL's `?schema=` (the pool's search_path) is where the tables go.
        let schema = self.schema.as_deref();
        crate::db::migrate::migrate(&self.pool, schema, crate::db::migrate::SCHEDULER, &label)
            .await
            .map_err(QueueError::Store)
    }

    async fn now(&self) -> Result<Millis> {
        let rows = self.pool.fetch(&self.sql.now, &[]).await?;
        rows.first()
            .ok_or_else(|| QueueError::Store("scheduler database: no clock reading".into()))?
            .time("now")
    }

    async fn insert_scheduled(&self, j: &ScheduledJob) -> Result<()> {
        let args = [
            Arg::Text(&j.id),
            Arg::Text(&j.job_type),
            Arg::Text(&j.payload),
            Arg::Text(&j.options),
            Arg::Time(j.scheduled_for),
            Arg::Text(&j.status),
            Arg::OptText(j.error.as_deref()),
            Arg::Time(j.created_at),
            Arg::Time(j.updated_at),
        ];
        self.pool.execute(&self.sql.insert_scheduled, &args).await?;
        Ok(())
    }

    async fn get_scheduled(&self, id: &str) -> Result<Option<ScheduledJob>> {
        let rows = self
            .pool
            .fetch(&self.sql.get_scheduled, &[Arg::Text(id)])
            .await?;
        rows.first().map(scheduled).transpose()
    }

    async fn cancel_scheduled(&self, id: &str) -> Result<bool> {
        let n = self
            .pool
            .execute(&self.sql.cancel_scheduled, &[Arg::Text(id)])
            .await?;
        Ok(n == 1)
    }

    async fn purge_finished(&self, older_than_ms: u64, limit: i64) -> Result<u64> {
        let back = i64::try_from(older_than_ms).map_or(i64::MIN, |ms| -ms);
        let args = [Arg::Int(back), Arg::Int(limit)];
        Ok(self.pool.execute(&self.sql.purge_finished, &args).await?)
    }

    async fn has_due(&self, lease: Duration) -> Result<(bool, bool)> {
        let rows = self
            .pool
            .fetch(&self.sql.has_due, &[Arg::Int(-lease_ms(lease))])
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| QueueError::Store("scheduler database: no answer to has_due".into()))?;
        Ok((row.get("scheduled")?, row.get("recurring")?))
    }

    async fn claim_scheduled(&self, lease: Duration, limit: i64) -> Result<Claim<ScheduledJob>> {
        let args = [Arg::Int(-lease_ms(lease)), Arg::Int(limit)];
        let rows = self.pool.fetch(&self.sql.claim_scheduled, &args).await?;
        let mut claim = Claim::default();
        for row in &rows {
            match scheduled(row) {
                Ok(job) => claim.rows.push(job),
                Err(e) => claim.set_aside(row.get("id"), row.time("updatedAt"), e),
            }
        }
        Ok(claim)
    }

    async fn mark_enqueued(&self, ids: &[String], claimed_at: Millis) -> Result<u64> {
        let ids = json_ids(ids)?;
        let args = [Arg::Text(&ids), Arg::Time(claimed_at)];
        Ok(self.pool.execute(&self.sql.mark_enqueued, &args).await?)
    }

    async fn release_scheduled(
        &self,
        id: &str,
        claimed_at: Millis,
        status: &str,
        error: &str,
    ) -> Result<bool> {
        let args = [
            Arg::Text(id),
            Arg::Time(claimed_at),
            Arg::Text(status),
            Arg::Text(error),
        ];
        Ok(self
            .pool
            .execute(&self.sql.release_scheduled, &args)
            .await?
            == 1)
    }

    async fn upsert_recurring(&self, j: &RecurringJob) -> Result<RecurringJob> {
        let args = [
            Arg::Text(&j.id),
            Arg::Text(&j.name),
            Arg::Text(&j.job_type),
            Arg::Text(&j.payload),
            Arg::Text(&j.options),
            Arg::Text(&j.schedule),
            Arg::Text(&j.timezone),
            Arg::Flag(j.enabled),
            Arg::OptTime(j.next_run_at),
            Arg::OptTime(j.last_run_at),
            Arg::OptText(j.last_error.as_deref()),
            Arg::Time(j.created_at),
            Arg::Time(j.updated_at),
        ];
        let rows = self.pool.fetch(&self.sql.upsert_recurring, &args).await?;
        rows.first().map(recurring).unwrap_or_else(|| {
            Err(QueueError::Store(
                "scheduler database: upsert returned no row".into(),
            ))
        })
    }

    async fn get_recurring(&self, name: &str) -> Result<Option<RecurringJob>> {
        let rows = self
            .pool
            .fetch(&self.sql.get_recurring, &[Arg::Text(name)])
            .await?;
        rows.first().map(recurring).transpose()
    }

    async fn enable_recurring(&self, name: &str, next_run_at: Option<Millis>) -> Result<bool> {
        let args = [Arg::Text(name), Arg::OptTime(next_run_at)];
        Ok(self.pool.execute(&self.sql.enable_recurring, &args).await? == 1)
    }

    async fn disable_recurring(&self, name: &str) -> Result<bool> {
        let n = self
            .pool
            .execute(&self.sql.disable_recurring, &[Arg::Text(name)])
            .await?;
        Ok(n == 1)
    }

    async fn delete_recurring(&self, name: &str) -> Result<bool> {
        let n = self
            .pool
            .execute(&self.sql.delete_recurring, &[Arg::Text(name)])
            .await?;
        Ok(n == 1)
    }

    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        let rows = self.pool.fetch(&self.sql.list_recurring, &[]).await?;
        rows.iter().map(recurring).collect()
    }

    async fn claim_recurring(&self, lease: Duration, limit: i64) -> Result<Claim<RecurringClaim>> {
        let mut tx = self.pool.begin(self.pool.dialect().begin_claim()).await?;
        let due = tx
            .fetch(&self.sql.due_recurring, &[Arg::Int(limit)])
            .await?;
        if due.is_empty() {
            tx.commit().await?;
            return Ok(Claim::default());
        }
        let mut ids = Vec::with_capacity(due.len());
        let due: Vec<&Row> = due
            .iter()
            .filter(|row| match row.get::<String>("id") {
                Ok(id) => {
                    ids.push(id);
                    true
                }
                Err(e) => {
                    tracing::error!(error = %e, "a due RecurringJob row has no readable id; skipped");
                    false
                }
            })
            .collect();
        let json = json_ids(&ids)?;
        let args = [Arg::Text(&json), Arg::Int(lease_ms(lease))];
        let leased = tx.fetch(&self.sql.lease_recurring, &args).await?;
        tx.commit().await?;
        let mut leases = HashMap::with_capacity(leased.len());
        for row in &leased {
            let id: String = row.get("id")?;
            leases.insert(id, (row.time("nextRunAt")?, row.time("updatedAt")?));
        }
        let mut claim = Claim::default();
        for (row, id) in due.into_iter().zip(ids) {
            // Not leased: the row is not ours (it cannot happen inside the transaction).
            let Some(&(lease_until, claimed_at)) = leases.get(&id) else {
                continue;
            };
            match recurring(row) {
                Ok(job) => claim.rows.push(RecurringClaim {
                    job,
                    claimed_at,
                    lease_until,
                }),
                Err(e) => claim.set_aside(Ok(id), Ok(lease_until), e),
            }
        }
        Ok(claim)
    }

    async fn finish_recurring(
        &self,
        id: &str,
        lease_until: Millis,
        done: RecurringDone<'_>,
    ) -> Result<bool> {
        let args = [
            Arg::Text(id),
            Arg::Time(lease_until),
            Arg::OptTime(done.next_run_at),
            Arg::OptTime(done.last_run_at),
            Arg::OptText(done.last_error),
        ];
        Ok(self.pool.execute(&self.sql.finish_recurring, &args).await? == 1)
    }
}
