//! The `QueueJob` table of either database: each operation runs its one statement from
//! [`Statements`], bound the same way on both. What only one database has (LISTEN/NOTIFY, COPY
//! and the in-transaction enqueue on PostgreSQL) is its [`Jobs`](super::Jobs) implementation,
//! in `postgres.rs` and `sqlite.rs`.

use super::settle::backoff_table;
use super::sql::{list_variant, Statements};
use super::{Insert, Inserted, Lease};
use crate::db::dialect::Dialect;
use crate::db::{Arg, Column, Pool, Row};
use crate::error::{QueueError, Result};
use crate::job::{Job, JobOptions, JobStatus, QueueStats};
use serde_json::value::RawValue;
use uuid::Uuid;

/// The jobs table on PostgreSQL or SQLite.
pub struct Table {
    pub(super) dialect: Dialect,
    /// Enqueues and reads: every commit durable.
    pub(super) pool: Pool,
    /// Claims, settlements, leases, retention (on PostgreSQL: asynchronous commit; on SQLite
    /// the same pool).
    pub(super) work: Pool,
    /// SQLite has one writer: this process's writes take turns here rather than in SQLite's
    /// busy handler, which sleeps. `None` on PostgreSQL, whose writers run side by side.
    write: Option<tokio::sync::Mutex<()>>,
    pub(super) sql: Statements,
    /// The redacted URL, for messages.
    pub(super) url: String,
}

/// Ids as the text a batch binds.
fn id_texts<'a>(ids: impl Iterator<Item = &'a Uuid>) -> Vec<String> {
    ids.map(|id| id.hyphenated().to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

impl Table {
    /// The table of `sql` on `pool` (enqueues, reads) and `work` (the worker's bookkeeping);
    /// `one_writer`: writes of this process take turns (SQLite).
    pub(super) fn new(
        pool: Pool,
        work: Pool,
        sql: Statements,
        url: String,
        one_writer: bool,
    ) -> Table {
        Table {
            dialect: pool.dialect(),
            pool,
            work,
            write: one_writer.then(|| tokio::sync::Mutex::new(())),
            sql,
            url,
        }
    }

    /// A driver error, worded with the (redacted) URL and what was being done.
    pub(super) fn err(&self, what: &str) -> impl Fn(sqlx::Error) -> QueueError + '_ {
        let what = what.to_owned();
        move |e| QueueError::Backend(format!("queue database {} ({what}): {e}", self.url))
    }

    /// This process's turn to write (SQLite only; PostgreSQL writers run side by side).
    async fn turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    pub(super) async fn fetch(
        &self,
        pool: &Pool,
        sql: &str,
        args: &[Arg<'_>],
        what: &str,
    ) -> Result<Vec<Row>> {
        pool.fetch(sql, args).await.map_err(self.err(what))
    }

    pub(super) async fn write(
        &self,
        pool: &Pool,
        sql: &str,
        args: &[Arg<'_>],
        what: &str,
    ) -> Result<u64> {
        let _turn = self.turn().await;
        pool.execute(sql, args).await.map_err(self.err(what))
    }

    /// A write that returns rows.
    async fn write_rows(
        &self,
        pool: &Pool,
        sql: &str,
        args: &[Arg<'_>],
        what: &str,
    ) -> Result<Vec<Row>> {
        let _turn = self.turn().await;
        self.fetch(pool, sql, args, what).await
    }

    /// Run `sql` with the batch `cols` as its one parameter set; its rows.
    async fn batch(
        &self,
        pool: &Pool,
        sql: &str,
        cols: &[Column<'_>],
        what: &str,
    ) -> Result<Vec<Row>> {
        self.write_rows(pool, sql, &[Arg::Rows(cols)], what).await
    }

    /// Check the database answers, and is a version the queue supports.
    pub(super) async fn ping(&self) -> Result<()> {
        self.fetch(&self.pool, "SELECT 1", &[], "connecting")
            .await?;
        crate::db::migrate::check_version(&self.pool, &self.url)
            .await
            .map_err(QueueError::Backend)
    }

    /// Insert; rows whose deduplication key is taken by an unfinished job are skipped.
    /// Returns what the database decided for the inserted rows, in any order.
    pub(super) async fn insert(&self, jobs: &[&Insert]) -> Result<Vec<Inserted>> {
        let keys = jobs.iter().any(|j| j.deduplication_key.is_some());
        let ids = id_texts(jobs.iter().map(|j| &j.id));
        let cols = [
            Column::Text(strs(&ids)),
            Column::Text(jobs.iter().map(|j| j.job_type.as_str()).collect()),
            Column::Text(jobs.iter().map(|j| j.payload.get()).collect()),
            Column::Text(jobs.iter().map(|j| j.options.as_str()).collect()),
            Column::Int(jobs.iter().map(|j| j.priority).collect()),
            Column::Int(jobs.iter().map(|j| j.max_retries).collect()),
            Column::OptInt(jobs.iter().map(|j| j.delay_ms).collect()),
            Column::OptInt(jobs.iter().map(|j| j.scheduled_for).collect()),
            Column::OptText(
                jobs.iter()
                    .map(|j| j.deduplication_key.as_deref())
                    .collect(),
            ),
        ];
        let sql = if keys {
            &self.sql.insert
        } else {
            &self.sql.insert_plain
        };
        let rows = self.batch(&self.pool, sql, &cols, "enqueueing").await?;
        rows.iter().map(inserted_from_row).collect()
    }

    /// The unfinished jobs holding these deduplication keys.
    pub(super) async fn by_dedup_keys(&self, keys: &[String]) -> Result<Vec<Job>> {
        let cols = [Column::Text(strs(keys))];
        let rows = self
            .batch(&self.pool, &self.sql.by_keys, &cols, "deduplicating")
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Lease up to `max` due jobs for `lease_ms`, skipping rows other claimers hold; in
    /// claim order (priority, due time, arrival), each with its delivery number.
    pub(super) async fn claim(&self, max: usize, lease_ms: u64) -> Result<Vec<(Job, i64)>> {
        let args = [
            Arg::Int(i64::try_from(max).unwrap_or(i64::MAX)),
            Arg::Int(i64::try_from(lease_ms).unwrap_or(i64::MAX)),
        ];
        let rows = self
            .write_rows(&self.work, &self.sql.claim, &args, "claiming jobs")
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let key: (i64, i64, i64) = (r.get("priority")?, r.get("runAt")?, r.get("seq")?);
            out.push((key, job_from_row(r)?, r.get::<i64>("deliveries")?));
        }
        out.sort_by_key(|(k, _, _)| *k);
        Ok(out.into_iter().map(|(_, j, d)| (j, d)).collect())
    }

    /// Milliseconds until the next delayed or backing-off job is due, by the database clock.
    pub(super) async fn next_due_ms(&self) -> Result<Option<i64>> {
        let rows = self
            .fetch(&self.work, &self.sql.next_due, &[], "looking for due jobs")
            .await?;
        match rows.first() {
            Some(r) => r.get("ms"),
            None => Ok(None),
        }
    }

    /// Complete these attempts with their results; returns the leases that matched.
    pub(super) async fn complete(&self, done: &[(Lease, Option<&RawValue>)]) -> Result<Vec<Lease>> {
        // In id order, so concurrent settlers lock rows in the same order.
        let mut sorted: Vec<&(Lease, Option<&RawValue>)> = done.iter().collect();
        sorted.sort_by_key(|(l, _)| l.id);
        let ids = id_texts(sorted.iter().map(|(l, _)| &l.id));
        let cols = [
            Column::Text(strs(&ids)),
            Column::Int(sorted.iter().map(|(l, _)| l.delivery).collect()),
            Column::OptText(sorted.iter().map(|(_, r)| r.map(RawValue::get)).collect()),
        ];
        let rows = self
            .batch(&self.work, &self.sql.complete, &cols, "acknowledging")
            .await?;
        leases(&rows)
    }

    /// Fail these attempts (back off, or dead when out of retries); returns those matched.
    pub(super) async fn fail(&self, failed: &[(Lease, &str)]) -> Result<Vec<Lease>> {
        let mut sorted: Vec<&(Lease, &str)> = failed.iter().collect();
        sorted.sort_by_key(|(l, _)| l.id);
        let ids = id_texts(sorted.iter().map(|(l, _)| &l.id));
        let cols = [
            Column::Text(strs(&ids)),
            Column::Int(sorted.iter().map(|(l, _)| l.delivery).collect()),
            Column::Text(sorted.iter().map(|(_, e)| *e).collect()),
        ];
        let backoff = serde_json::to_string(&backoff_table())
            .map_err(|e| QueueError::Backend(e.to_string()))?;
        let args = [Arg::Text(&backoff), Arg::Rows(&cols)];
        let rows = self
            .write_rows(&self.work, &self.sql.fail, &args, "failing")
            .await?;
        leases(&rows)
    }

    /// Give an attempt back: pending at once, its attempt not counted.
    pub(super) async fn release(&self, lease: Lease) -> Result<bool> {
        let id = lease.id.hyphenated().to_string();
        let args = [Arg::Text(&id), Arg::Int(lease.delivery)];
        Ok(self
            .write(&self.work, &self.sql.release, &args, "releasing")
            .await?
            == 1)
    }

    /// Store progress on the attempt's job; also just after the attempt ended, since the
    /// worker may settle the outcome before the progress it reported first.
    pub(super) async fn set_progress(&self, lease: Lease, percent: f64) -> Result<bool> {
        let id = lease.id.hyphenated().to_string();
        let args = [
            Arg::Text(&id),
            Arg::Int(lease.delivery),
            Arg::Float(percent),
        ];
        Ok(self
            .write(&self.work, &self.sql.progress, &args, "storing progress")
            .await?
            == 1)
    }

    /// Move the leases of these attempts `lease_ms` past the database's now; returns the
    /// leases still held (the others were settled, cancelled or reclaimed meanwhile).
    pub(super) async fn extend(&self, held: &[Lease], lease_ms: u64) -> Result<Vec<Lease>> {
        let ids = id_texts(held.iter().map(|l| &l.id));
        let cols = [
            Column::Text(strs(&ids)),
            Column::Int(held.iter().map(|l| l.delivery).collect()),
        ];
        let args = [
            Arg::Int(i64::try_from(lease_ms).unwrap_or(i64::MAX)),
            Arg::Rows(&cols),
        ];
        let rows = self
            .write_rows(&self.work, &self.sql.extend, &args, "renewing leases")
            .await?;
        leases(&rows)
    }

    /// Expired leases: pending again, or dead when out of retries. Returns those jobs.
    pub(super) async fn reap(&self) -> Result<Vec<Job>> {
        let rows = self
            .write_rows(&self.work, &self.sql.reap, &[], "reclaiming expired leases")
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// The jobs of these ids that exist, in any order.
    pub(super) async fn by_ids(&self, ids: &[Uuid]) -> Result<Vec<Job>> {
        let ids = id_texts(ids.iter());
        let cols = [Column::Text(strs(&ids))];
        self.fetch(
            &self.pool,
            &self.sql.by_ids,
            &[Arg::Rows(&cols)],
            "reading jobs",
        )
        .await?
        .iter()
        .map(job_from_row)
        .collect()
    }

    /// Delete up to `limit` jobs of `status` finished more than `older_than_ms` ago.
    pub(super) async fn purge(
        &self,
        status: JobStatus,
        older_than_ms: u64,
        limit: i64,
    ) -> Result<u64> {
        let args = [
            Arg::Text(status.as_str()),
            Arg::Int(i64::try_from(older_than_ms).map_or(i64::MIN, |ms| -ms)),
            Arg::Int(limit),
        ];
        self.write(&self.work, &self.sql.purge, &args, "purging finished jobs")
            .await
    }

    pub(super) async fn get(&self, id: Uuid) -> Result<Option<Job>> {
        let id = id.hyphenated().to_string();
        let rows = self
            .fetch(
                &self.pool,
                &self.sql.get,
                &[Arg::Text(&id)],
                "reading a job",
            )
            .await?;
        rows.first().map(job_from_row).transpose()
    }

    pub(super) async fn stats(&self) -> Result<QueueStats> {
        let rows = self
            .fetch(&self.pool, &self.sql.stats, &[], "counting jobs")
            .await?;
        super::admin::stats_from(
            rows.iter()
                .map(|r| Ok((r.get::<String>("s")?, r.get::<i64>("n")?))),
        )
    }

    /// Up to `limit` jobs of `status` and `job_type` (any when `None`), newest first by
    /// (`createdAt`, id), after `after`.
    pub(super) async fn list(
        &self,
        status: Option<JobStatus>,
        job_type: Option<&str>,
        after: Option<(i64, Uuid)>,
        limit: i64,
    ) -> Result<Vec<Job>> {
        let after_id = after.map(|a| a.1.hyphenated().to_string());
        let args = [
            Arg::OptText(status.map(JobStatus::as_str)),
            Arg::OptText(job_type),
            Arg::OptInt(after.map(|a| a.0)),
            Arg::OptText(after_id.as_deref()),
            Arg::Int(limit),
        ];
        let rows = self
            .fetch(
                &self.pool,
                &self.sql.list[list_variant(status.is_some(), job_type.is_some(), after.is_some())],
                &args,
                "listing jobs",
            )
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Run `sql` on the job `id` (its one parameter); whether it changed the job.
    async fn write_job(&self, sql: &str, id: Uuid, what: &str) -> Result<bool> {
        let id = id.hyphenated().to_string();
        Ok(self.write(&self.pool, sql, &[Arg::Text(&id)], what).await? > 0)
    }

    /// A dead or failed job pending now, attempts kept; whether it was one.
    pub(super) async fn retry(&self, id: Uuid) -> Result<bool> {
        self.write_job(&self.sql.retry, id, "retrying a job").await
    }

    /// A pending, scheduled, failed or processing job `cancelled`; whether it was one.
    pub(super) async fn cancel(&self, id: Uuid) -> Result<bool> {
        self.write_job(&self.sql.cancel, id, "cancelling a job")
            .await
    }

    /// Pause `key` (a job type; `""` for every type), or resume it when `paused` is false.
    pub(super) async fn set_paused(&self, key: &str, paused: bool) -> Result<()> {
        let sql = if paused {
            &self.sql.pause
        } else {
            &self.sql.unpause
        };
        self.write(&self.pool, sql, &[Arg::Text(key)], "pausing or resuming")
            .await
            .map(drop)
    }

    /// Resume everything.
    pub(super) async fn resume_all(&self) -> Result<()> {
        self.write(&self.pool, &self.sql.unpause_all, &[], "resuming")
            .await
            .map(drop)
    }

    /// The paused keys, sorted.
    pub(super) async fn paused(&self) -> Result<Vec<String>> {
        let rows = self
            .fetch(&self.pool, &self.sql.paused, &[], "reading pauses")
            .await?;
        rows.iter().map(|r| r.get::<String>("type")).collect()
    }

    pub(super) async fn close(&self) {
        for pool in [&self.work, &self.pool] {
            match pool {
                Pool::Pg(p) => p.close().await,
                Pool::Sqlite(p) => p.close().await,
            }
        }
    }
}

fn leases(rows: &[Row]) -> Result<Vec<Lease>> {
    rows.iter()
        .map(|r| {
            let id: String = r.get("id")?;
            Ok(Lease {
                id: Uuid::try_parse(&id)
                    .map_err(|e| QueueError::Backend(format!("queue database: bad id: {e}")))?,
                delivery: r.get("deliveries")?,
            })
        })
        .collect()
}

/// A job from the columns of `sql::cols` (times as epoch milliseconds, the status as shown).
fn job_from_row(row: &Row) -> Result<Job> {
    let raw = |text: String, col: &str| {
        RawValue::from_string(text).map_err(|e| {
            QueueError::Backend(format!("queue database: column {col} is not JSON: {e}"))
        })
    };
    let options: JobOptions =
        serde_json::from_str(&row.get::<String>("options")?).unwrap_or_default();
    Ok(Job {
        id: row.get("id")?,
        job_type: row.get("type")?,
        payload: raw(row.get("payload")?, "payload")?,
        options,
        status: parse_status(&row.get::<String>("status")?)?,
        attempts: u32::try_from(row.get::<i64>("attempts")?).unwrap_or(0),
        created_at: row.get("createdAt")?,
        scheduled_for: row.get("scheduledFor")?,
        started_at: row.get("startedAt")?,
        completed_at: row.get("completedAt")?,
        last_error: row.get("lastError")?,
        progress: row.get("progress")?,
        result: row
            .get::<Option<String>>("result")?
            .map(|t| raw(t, "result"))
            .transpose()?,
    })
}

/// The columns `id`, `status`, `createdAt`, `scheduledFor` of an inserted row.
fn inserted_from_row(row: &Row) -> Result<Inserted> {
    let id: String = row.get("id")?;
    Ok(Inserted {
        id: Uuid::try_parse(&id)
            .map_err(|e| QueueError::Backend(format!("queue database: bad id {id:?}: {e}")))?,
        status: parse_status(&row.get::<String>("status")?)?,
        created_at: row.get("createdAt")?,
        scheduled_for: row.get("scheduledFor")?,
    })
}

/// A `status` column read back, refused when the database holds a status we never write.
fn parse_status(s: &str) -> Result<JobStatus> {
    JobStatus::parse(s)
        .ok_or_else(|| QueueError::Backend(format!("queue database: unknown job status {s:?}")))
}
