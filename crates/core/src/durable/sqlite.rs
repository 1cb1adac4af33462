//! The `QueueJob` statements on SQLite: each claim is one `UPDATE … RETURNING` (SQLite has one
//! writer at a time), batches cross as one JSON array read with `json_each`.

use super::{
    backoff_table, db_err, inserted_from_row, job_from_row, Backend, Insert, Inserted, Lease,
};
use crate::config::SqliteConfig;
use crate::error::{QueueError, Result};
use crate::job::{Job, JobStatus, QueueStats};
use crate::store::db::Pool;
use async_trait::async_trait;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{Executor, Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

const MIGRATION: &str = include_str!("../../../../migrations/sqlite/0002_queue.sql");
const ADMIN_MIGRATION: &str = include_str!("../../../../migrations/sqlite/0003_admin.sql");
/// An idle receiver looks this often (other processes sharing the file cannot wake it).
const POLL: Duration = Duration::from_millis(100);

/// SQLite's clock in epoch milliseconds.
const NOW: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

/// The job columns `job_from_row` reads.
fn cols() -> String {
    format!(
        r#""id", "type", "payload", "options",
        CASE WHEN "status" IN ('scheduled', 'failed') AND "runAt" <= {NOW} THEN 'pending' ELSE "status" END AS "status",
        "attempts", "deliveries", "priority", "seq", "runAt", "createdAt", "scheduledFor", "startedAt",
        "completedAt", "lastError", "progress", "result""#
    )
}

/// Every statement (the same set as on PostgreSQL).
struct Sql {
    insert: String,
    by_keys: String,
    claim: String,
    next_due: String,
    complete: String,
    fail: String,
    release: String,
    progress: String,
    extend: String,
    reap: String,
    purge: String,
    get: String,
    stats: String,
    list: String,
    retry: String,
    cancel: String,
    pause: String,
    unpause: String,
    unpause_all: String,
    paused: String,
}

impl Sql {
    fn new() -> Sql {
        let c = cols();
        let t = r#""QueueJob""#;
        let tp = r#""QueueJobPause""#;
        Sql {
            // $3/$4: the cursor's (createdAt, id), or NULL for the first page.
            list: format!(
                r#"SELECT {c} FROM {t}
                WHERE ($1 IS NULL OR "status" = $1) AND ($2 IS NULL OR "type" = $2)
                    AND ($3 IS NULL OR ("createdAt", "id") < ($3, $4))
                ORDER BY "createdAt" DESC, "id" DESC LIMIT $5"#
            ),
            // A dead job gives up its deduplication key for good: another job may hold it now.
            retry: format!(
                r#"UPDATE {t} SET "status" = 'pending', "runAt" = {NOW}, "completedAt" = NULL, "lockedUntil" = NULL,
                    "deduplicationKey" = CASE WHEN "status" = 'dead' THEN NULL ELSE "deduplicationKey" END
                WHERE "id" = $1 AND "status" IN ('dead', 'failed')"#
            ),
            cancel: format!(
                r#"UPDATE {t} SET "status" = 'cancelled', "completedAt" = {NOW}, "lockedUntil" = NULL, "deduplicationKey" = NULL
                WHERE "id" = $1 AND "status" IN ('pending', 'scheduled', 'failed', 'processing')"#
            ),
            pause: format!(
                r#"INSERT INTO {tp} ("type", "pausedAt") VALUES ($1, {NOW}) ON CONFLICT DO NOTHING"#
            ),
            unpause: format!(r#"DELETE FROM {tp} WHERE "type" = $1"#),
            unpause_all: format!(r#"DELETE FROM {tp}"#),
            paused: format!(r#"SELECT "type" FROM {tp} ORDER BY "type""#),
            // $1: [[id, type, payload, options, priority, maxRetries, delayMs, scheduledForMs, key], …]
            insert: format!(
                r#"INSERT INTO {t} ("id", "type", "payload", "options", "status", "priority", "maxRetries", "runAt", "scheduledFor", "deduplicationKey", "createdAt")
                SELECT jid, jtype, jpayload, joptions, CASE WHEN at > n THEN 'scheduled' ELSE 'pending' END,
                    jprio, jretries, max(at, n), CASE WHEN at > n THEN at END, jkey, n
                FROM (SELECT value ->> 0 AS jid, value ->> 1 AS jtype, value ->> 2 AS jpayload, value ->> 3 AS joptions,
                        value ->> 4 AS jprio, value ->> 5 AS jretries,
                        COALESCE(value ->> 7, {NOW} + COALESCE(value ->> 6, 0)) AS at,
                        value ->> 8 AS jkey, {NOW} AS n, key AS k
                      FROM json_each($1))
                WHERE true ORDER BY k
                ON CONFLICT DO NOTHING
                RETURNING "id", CASE WHEN "status" = 'scheduled' AND "runAt" <= {NOW} THEN 'pending' ELSE "status" END AS "status",
                    "createdAt", "scheduledFor""#
            ),
            by_keys: format!(
                r#"SELECT {c} FROM {t} WHERE "deduplicationKey" IN (SELECT value FROM json_each($1))
                AND "status" NOT IN ('completed', 'dead')"#
            ),
            claim: format!(
                r#"UPDATE {t} SET "status" = 'processing', "attempts" = "attempts" + 1,
                    "deliveries" = "deliveries" + 1, "startedAt" = {NOW}, "lockedUntil" = {NOW} + $2
                WHERE "seq" IN (SELECT q."seq" FROM {t} q
                    WHERE q."status" IN ('pending', 'scheduled', 'failed') AND q."runAt" <= {NOW}
                        -- Pauses: both subqueries run once per claim (no correlation), not per row.
                        AND NOT EXISTS (SELECT 1 FROM {tp} WHERE "type" = '')
                        AND q."type" NOT IN (SELECT "type" FROM {tp})
                    ORDER BY q."priority", q."runAt", q."seq" LIMIT $1)
                RETURNING {c}"#
            ),
            next_due: format!(
                r#"SELECT min("runAt") - {NOW} AS "ms" FROM {t} WHERE "status" IN ('scheduled', 'failed')"#
            ),
            // $1: [[id, delivery, result], …]
            complete: format!(
                r#"UPDATE {t} SET "status" = 'completed', "result" = u.jres, "completedAt" = {NOW}, "lockedUntil" = NULL
                FROM (SELECT value ->> 0 AS jid, value ->> 1 AS jd, value ->> 2 AS jres FROM json_each($1)) AS u
                WHERE {t}."id" = u.jid AND {t}."deliveries" = u.jd AND {t}."status" = 'processing'
                RETURNING "id", "deliveries""#
            ),
            // $1: [[id, delivery, error], …]; $2: the backoff table, index n after attempt n.
            fail: format!(
                r#"UPDATE {t} SET "lastError" = u.jerr, "lockedUntil" = NULL,
                    "status" = CASE WHEN "attempts" <= "maxRetries" THEN 'failed' ELSE 'dead' END,
                    "runAt" = CASE WHEN "attempts" <= "maxRetries"
                        THEN {NOW} + ($2 ->> min("attempts", 16)) ELSE "runAt" END,
                    "completedAt" = CASE WHEN "attempts" <= "maxRetries" THEN NULL ELSE {NOW} END
                FROM (SELECT value ->> 0 AS jid, value ->> 1 AS jd, value ->> 2 AS jerr FROM json_each($1)) AS u
                WHERE {t}."id" = u.jid AND {t}."deliveries" = u.jd AND {t}."status" = 'processing'
                RETURNING "id", "deliveries""#
            ),
            release: format!(
                r#"UPDATE {t} SET "status" = 'pending', "attempts" = max("attempts" - 1, 0), "lockedUntil" = NULL
                WHERE "id" = $1 AND "deliveries" = $2 AND "status" = 'processing'"#
            ),
            progress: format!(
                r#"UPDATE {t} SET "progress" = $3 WHERE "id" = $1 AND "deliveries" = $2"#
            ),
            // $1: [[id, delivery], …]
            extend: format!(
                r#"UPDATE {t} SET "lockedUntil" = {NOW} + $2
                FROM (SELECT value ->> 0 AS jid, value ->> 1 AS jd FROM json_each($1)) AS u
                WHERE {t}."id" = u.jid AND {t}."deliveries" = u.jd AND {t}."status" = 'processing'"#
            ),
            reap: format!(
                r#"UPDATE {t} SET "lockedUntil" = NULL,
                    "status" = CASE WHEN "attempts" <= "maxRetries" THEN 'pending' ELSE 'dead' END,
                    "completedAt" = CASE WHEN "attempts" <= "maxRetries" THEN NULL ELSE {NOW} END,
                    "lastError" = 'lease expired: the worker running this job stopped renewing its lease (crashed or lost)'
                WHERE "id" IN (SELECT "id" FROM {t} WHERE "status" = 'processing' AND "lockedUntil" <= {NOW} LIMIT 1000)"#
            ),
            purge: format!(
                r#"DELETE FROM {t} WHERE "id" IN (SELECT "id" FROM {t}
                    WHERE "status" = $1 AND "completedAt" < {NOW} - $2 LIMIT $3)"#
            ),
            get: format!(r#"SELECT {c} FROM {t} WHERE "id" = $1"#),
            stats: format!(
                r#"SELECT CASE WHEN "status" IN ('scheduled', 'failed') AND "runAt" <= {NOW} THEN 'pending' ELSE "status" END AS "s",
                    count(*) AS "n" FROM {t} GROUP BY 1"#
            ),
        }
    }
}

/// The jobs table in an SQLite file.
pub struct SqliteBackend {
    pool: SqlitePool,
    /// SQLite has one writer: this process's writes take turns here rather than in SQLite's
    /// busy handler, which sleeps.
    write: tokio::sync::Mutex<()>,
    sql: Sql,
    url: String,
}

impl SqliteBackend {
    /// A pool for `config.databaseUrl` (WAL, busy timeout; the file and its directory are
    /// created when missing), checked by one round trip.
    pub async fn connect(config: &SqliteConfig) -> Result<SqliteBackend> {
        let url = config.database_url.trim().to_owned();
        if !url.starts_with("sqlite:") {
            return Err(QueueError::invalid(format!(
                "providerConfig.databaseUrl must be a sqlite: URL when type is 'sqlite', got {url:?}"
            )));
        }
        let opts = SqliteConnectOptions::from_str(&url).map_err(|e| {
            QueueError::invalid(format!(
                "providerConfig.databaseUrl {url:?} is not valid: {e}"
            ))
        })?;
        let file = opts.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !url.contains(":memory:") && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    QueueError::Backend(format!(
                        "cannot create the directory {dir:?} of the queue database {url}: {e}"
                    ))
                })?;
            }
        }
        let pool = Pool::sqlite_pool(&url)?;
        let b = SqliteBackend {
            pool,
            write: tokio::sync::Mutex::new(()),
            sql: Sql::new(),
            url,
        };
        b.ping().await?;
        Ok(b)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn err(&self, what: &str) -> impl Fn(sqlx::Error) -> QueueError + '_ {
        let what = what.to_owned();
        move |e| QueueError::Backend(format!("queue database {} ({what}): {e}", self.url))
    }
}

fn leases(rows: &[SqliteRow]) -> Result<Vec<Lease>> {
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("id").map_err(db_err)?;
            Ok(Lease {
                id: Uuid::try_parse(&id)
                    .map_err(|e| QueueError::Backend(format!("queue database: bad id: {e}")))?,
                delivery: r.try_get("deliveries").map_err(db_err)?,
            })
        })
        .collect()
}

fn lease_json(l: &Lease) -> Value {
    json!([l.id.hyphenated().to_string(), l.delivery])
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        let err = self.err("migrating");
        let mut conn = self.pool.acquire().await.map_err(&err)?;
        // BEGIN IMMEDIATE takes the write lock first, so concurrent starts run one by one.
        conn.execute("BEGIN IMMEDIATE").await.map_err(&err)?;
        let mut r = conn.execute(MIGRATION).await;
        if r.is_ok() {
            r = conn.execute(ADMIN_MIGRATION).await;
        }
        let end = if r.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let e = conn.execute(end).await;
        r.map_err(&err)?;
        e.map_err(&err)?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(self.err("opening"))?;
        Ok(())
    }

    async fn insert(&self, jobs: &[&Insert]) -> Result<Vec<Inserted>> {
        let _turn = self.write.lock().await;
        let rows: Vec<Value> = jobs
            .iter()
            .map(|j| {
                json!([
                    j.id.hyphenated().to_string(),
                    j.job_type,
                    j.payload.get(),
                    j.options,
                    j.priority,
                    j.max_retries,
                    j.delay_ms,
                    j.scheduled_for,
                    j.deduplication_key
                ])
            })
            .collect();
        let rows = sqlx::query(&self.sql.insert)
            .bind(Value::Array(rows).to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("enqueueing"))?;
        rows.iter().map(inserted_from_row).collect()
    }

    async fn by_dedup_keys(&self, keys: &[String]) -> Result<Vec<Job>> {
        let rows = sqlx::query(&self.sql.by_keys)
            .bind(json!(keys).to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("deduplicating"))?;
        rows.iter().map(job_from_row).collect()
    }

    async fn claim(&self, max: usize, lease_ms: u64) -> Result<Vec<(Job, i64)>> {
        let _turn = self.write.lock().await;
        let rows = sqlx::query(&self.sql.claim)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .bind(i64::try_from(lease_ms).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("claiming jobs"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let key: (i64, i64, i64) = (
                r.try_get("priority").map_err(db_err)?,
                r.try_get("runAt").map_err(db_err)?,
                r.try_get("seq").map_err(db_err)?,
            );
            let delivery: i64 = r.try_get("deliveries").map_err(db_err)?;
            out.push((key, job_from_row(r)?, delivery));
        }
        out.sort_by_key(|(k, _, _)| *k);
        Ok(out.into_iter().map(|(_, j, d)| (j, d)).collect())
    }

    async fn next_due_ms(&self) -> Result<Option<i64>> {
        let row = sqlx::query(&self.sql.next_due)
            .fetch_one(&self.pool)
            .await
            .map_err(self.err("looking for due jobs"))?;
        row.try_get("ms").map_err(db_err)
    }

    async fn complete(&self, done: &[(Lease, Option<&RawValue>)]) -> Result<Vec<Lease>> {
        let _turn = self.write.lock().await;
        let rows: Vec<Value> = done
            .iter()
            .map(|(l, r)| {
                json!([
                    l.id.hyphenated().to_string(),
                    l.delivery,
                    r.map(RawValue::get)
                ])
            })
            .collect();
        let rows = sqlx::query(&self.sql.complete)
            .bind(Value::Array(rows).to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("acknowledging"))?;
        leases(&rows)
    }

    async fn fail(&self, failed: &[(Lease, &str)]) -> Result<Vec<Lease>> {
        let _turn = self.write.lock().await;
        let rows: Vec<Value> = failed
            .iter()
            .map(|(l, e)| json!([l.id.hyphenated().to_string(), l.delivery, e]))
            .collect();
        let rows = sqlx::query(&self.sql.fail)
            .bind(Value::Array(rows).to_string())
            .bind(json!(backoff_table()).to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("failing"))?;
        leases(&rows)
    }

    async fn release(&self, lease: Lease) -> Result<bool> {
        let _turn = self.write.lock().await;
        let r = sqlx::query(&self.sql.release)
            .bind(lease.id.hyphenated().to_string())
            .bind(lease.delivery)
            .execute(&self.pool)
            .await
            .map_err(self.err("releasing"))?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_progress(&self, lease: Lease, percent: f64) -> Result<bool> {
        let _turn = self.write.lock().await;
        let r = sqlx::query(&self.sql.progress)
            .bind(lease.id.hyphenated().to_string())
            .bind(lease.delivery)
            .bind(percent)
            .execute(&self.pool)
            .await
            .map_err(self.err("storing progress"))?;
        Ok(r.rows_affected() == 1)
    }

    async fn extend(&self, leases: &[Lease], lease_ms: u64) -> Result<()> {
        let _turn = self.write.lock().await;
        let rows: Vec<Value> = leases.iter().map(lease_json).collect();
        sqlx::query(&self.sql.extend)
            .bind(Value::Array(rows).to_string())
            .bind(i64::try_from(lease_ms).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(self.err("renewing leases"))?;
        Ok(())
    }

    async fn reap(&self) -> Result<u64> {
        let _turn = self.write.lock().await;
        let r = sqlx::query(&self.sql.reap)
            .execute(&self.pool)
            .await
            .map_err(self.err("reclaiming expired leases"))?;
        Ok(r.rows_affected())
    }

    async fn purge(&self, status: JobStatus, older_than_ms: u64, limit: i64) -> Result<u64> {
        let _turn = self.write.lock().await;
        let r = sqlx::query(&self.sql.purge)
            .bind(status.as_str())
            .bind(i64::try_from(older_than_ms).unwrap_or(i64::MAX))
            .bind(limit)
            .execute(&self.pool)
            .await
            .map_err(self.err("purging finished jobs"))?;
        Ok(r.rows_affected())
    }

    async fn list(
        &self,
        status: Option<JobStatus>,
        job_type: Option<&str>,
        after: Option<(i64, Uuid)>,
        limit: i64,
    ) -> Result<Vec<Job>> {
        let rows = sqlx::query(&self.sql.list)
            .bind(status.map(JobStatus::as_str))
            .bind(job_type)
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1.hyphenated().to_string()))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("listing jobs"))?;
        rows.iter().map(job_from_row).collect()
    }

    async fn retry(&self, id: Uuid) -> Result<bool> {
        let _turn = self.write.lock().await;
        let r = sqlx::query(&self.sql.retry)
            .bind(id.hyphenated().to_string())
            .execute(&self.pool)
            .await
            .map_err(self.err("retrying a job"))?;
        Ok(r.rows_affected() > 0)
    }

    async fn cancel(&self, id: Uuid) -> Result<bool> {
        let _turn = self.write.lock().await;
        let r = sqlx::query(&self.sql.cancel)
            .bind(id.hyphenated().to_string())
            .execute(&self.pool)
            .await
            .map_err(self.err("cancelling a job"))?;
        Ok(r.rows_affected() > 0)
    }

    async fn set_paused(&self, key: &str, paused: bool) -> Result<()> {
        let sql = if paused {
            &self.sql.pause
        } else {
            &self.sql.unpause
        };
        let _turn = self.write.lock().await;
        sqlx::query(sql)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(self.err("pausing or resuming"))?;
        Ok(())
    }

    async fn resume_all(&self) -> Result<()> {
        let _turn = self.write.lock().await;
        sqlx::query(&self.sql.unpause_all)
            .execute(&self.pool)
            .await
            .map_err(self.err("resuming"))?;
        Ok(())
    }

    async fn paused(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(&self.sql.paused)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("reading pauses"))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("type").map_err(db_err))
            .collect()
    }

    async fn get(&self, id: Uuid) -> Result<Option<Job>> {
        let row = sqlx::query(&self.sql.get)
            .bind(id.hyphenated().to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("reading a job"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn stats(&self) -> Result<QueueStats> {
        let rows = sqlx::query(&self.sql.stats)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("counting jobs"))?;
        super::stats_from(rows.iter().map(|r| {
            Ok((
                r.try_get::<String, _>("s").map_err(db_err)?,
                r.try_get::<i64, _>("n").map_err(db_err)?,
            ))
        }))
    }

    async fn notify_others(&self) -> Result<()> {
        Ok(())
    }

    fn fallback_poll(&self) -> Duration {
        POLL
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
