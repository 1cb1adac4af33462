//! The `QueueJob` statements on PostgreSQL: claims with `FOR UPDATE SKIP LOCKED`, batches as
//! `unnest` arrays, times from `now()`, and wake-ups through LISTEN/NOTIFY.

use super::{
    backoff_table, db_err, inserted_from_row, job_from_row, Backend, Insert, Inserted, Lease,
    Shared,
};
use crate::config::PostgresConfig;
use crate::error::{QueueError, Result};
use crate::job::{Job, JobStatus, QueueStats};
use crate::redact_url as redact;
use async_trait::async_trait;
use serde_json::value::RawValue;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Executor, PgPool, Row};
use std::str::FromStr;
use std::sync::Weak;
use std::time::Duration;
use uuid::Uuid;

const MIGRATION: &str = include_str!("../../../../migrations/postgres/0002_queue.sql");
const ADMIN_MIGRATION: &str = include_str!("../../../../migrations/postgres/0003_admin.sql");
/// Key of the migration lock (the scheduler migration's, so the two never interleave).
const MIGRATION_LOCK: i64 = 7_283_641_093;
/// The NOTIFY channel; the payload is the schema whose table changed.
const CHANNEL: &str = "chaaskit_queue";
/// An idle receiver looks at the table at least this often, in case a notification was lost.
const FALLBACK_POLL: Duration = Duration::from_secs(2);
/// How long a call waits for a connection before it fails (the database is down).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Epoch milliseconds of a `timestamptz` expression.
fn ms(expr: &str) -> String {
    format!("(EXTRACT(EPOCH FROM {expr}) * 1000)::int8")
}

/// The job columns `job_from_row` reads, from the table aliased `p` (or unaliased for "").
fn cols(p: &str) -> String {
    format!(
        r#"{p}"id"::text AS "id", {p}"type" AS "type", {p}"payload"::text AS "payload",
        {p}"options"::text AS "options",
        CASE WHEN {p}"status" IN ('scheduled', 'failed') AND {p}"runAt" <= now() THEN 'pending' ELSE {p}"status" END AS "status",
        {p}"attempts" AS "attempts", {p}"deliveries" AS "deliveries", {p}"priority" AS "priority",
        {p}"seq" AS "seq", {runat} AS "runAt", {created} AS "createdAt", {sched} AS "scheduledFor",
        {started} AS "startedAt", {completed} AS "completedAt", {p}"lastError" AS "lastError",
        {p}"progress" AS "progress", {p}"result"::text AS "result""#,
        runat = ms(&format!(r#"{p}"runAt""#)),
        created = ms(&format!(r#"{p}"createdAt""#)),
        sched = ms(&format!(r#"{p}"scheduledFor""#)),
        started = ms(&format!(r#"{p}"startedAt""#)),
        completed = ms(&format!(r#"{p}"completedAt""#)),
    )
}

/// Every statement, with the schema-qualified table name filled in once.
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
    tx_insert: String,
    list: String,
    retry: String,
    cancel: String,
    pause: String,
    unpause: String,
    unpause_all: String,
    paused: String,
}

/// A job as one JSON object (the `Job` shape; `scheduledFor` etc. `null` when unset), from the
/// table aliased `p`.
fn job_json(p: &str) -> String {
    format!(
        r#"json_build_object('id', {p}."id"::text, 'type', {p}."type", 'payload', {p}."payload", 'options', {p}."options",
        'status', CASE WHEN {p}."status" IN ('scheduled', 'failed') AND {p}."runAt" <= now() THEN 'pending' ELSE {p}."status" END,
        'attempts', {p}."attempts", 'createdAt', {created}, 'scheduledFor', {sched})"#,
        created = ms(&format!(r#"{p}."createdAt""#)),
        sched = ms(&format!(r#"{p}."scheduledFor""#)),
    )
}

impl Sql {
    fn new(t: &str, tp: &str) -> Sql {
        let c = cols("");
        let cj = cols("j.");
        let inserted = format!(
            r#""id"::text AS "id", CASE WHEN "status" = 'scheduled' AND "runAt" <= now() THEN 'pending' ELSE "status" END AS "status",
            {} AS "createdAt", {} AS "scheduledFor""#,
            ms(r#""createdAt""#),
            ms(r#""scheduledFor""#)
        );
        Sql {
            // $3/$4: the cursor's (createdAt in epoch ms, id), or NULL for the first page.
            list: format!(
                // ORDER BY names the table's columns: bare "createdAt"/"id" would be the output
                // columns (epoch ms, text), which no index has, so 1M jobs were sorted per page.
                r#"SELECT {c} FROM {t} AS l
                WHERE ($1::text IS NULL OR "status" = $1) AND ($2::text IS NULL OR "type" = $2)
                    AND ($3::int8 IS NULL OR ("createdAt", "id") < (timestamptz 'epoch' + $3 * interval '1 millisecond', $4::uuid))
                ORDER BY l."createdAt" DESC, l."id" DESC LIMIT $5"#
            ),
            // A dead job gives up its deduplication key for good: another job may hold it now.
            retry: format!(
                r#"UPDATE {t} SET "status" = 'pending', "runAt" = now(), "completedAt" = NULL, "lockedUntil" = NULL,
                    "deduplicationKey" = CASE WHEN "status" = 'dead' THEN NULL ELSE "deduplicationKey" END
                WHERE "id" = $1::uuid AND "status" IN ('dead', 'failed')"#
            ),
            cancel: format!(
                r#"UPDATE {t} SET "status" = 'cancelled', "completedAt" = now(), "lockedUntil" = NULL, "deduplicationKey" = NULL
                WHERE "id" = $1::uuid AND "status" IN ('pending', 'scheduled', 'failed', 'processing')"#
            ),
            pause: format!(r#"INSERT INTO {tp} ("type") VALUES ($1) ON CONFLICT DO NOTHING"#),
            unpause: format!(r#"DELETE FROM {tp} WHERE "type" = $1"#),
            unpause_all: format!(r#"DELETE FROM {tp}"#),
            paused: format!(r#"SELECT "type" FROM {tp} ORDER BY "type""#),
            // The insert on a caller's connection, inside its transaction: one JSON text
            // parameter (any client binds that), one row back whose "jobs" is the jobs as JSON,
            // in input order (an existing unfinished job for a deduplicated item).
            tx_insert: format!(
                r#"WITH u AS (
                    SELECT * FROM json_to_recordset($1::json) AS x(jid uuid, jtype text, jpayload text, joptions text,
                        jprio int8, jretries int8, jdelay int8, jsched int8, jkey text, jord int8)),
                ins AS (
                    INSERT INTO {t} ("id", "type", "payload", "options", "status", "priority", "maxRetries", "runAt", "scheduledFor", "deduplicationKey")
                    SELECT u.jid, u.jtype, u.jpayload::json, u.joptions::json,
                        CASE WHEN r.at > now() THEN 'scheduled' ELSE 'pending' END, u.jprio, u.jretries,
                        GREATEST(r.at, now()), CASE WHEN r.at > now() THEN r.at END, u.jkey
                    FROM u CROSS JOIN LATERAL (SELECT COALESCE(to_timestamp(u.jsched / 1000.0),
                        now() + COALESCE(u.jdelay, 0) * interval '1 millisecond') AS at) r
                    ORDER BY u.jord
                    ON CONFLICT DO NOTHING
                    RETURNING *),
                out AS (
                    SELECT u.jord, {ji} AS j FROM u JOIN ins i ON i."id" = u.jid
                    UNION ALL
                    SELECT u.jord, {je} FROM u JOIN {t} e ON e."deduplicationKey" = u.jkey
                        AND e."status" NOT IN ('completed', 'dead')
                    WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins."id" = u.jid)
                    UNION ALL
                    SELECT u.jord, {jd} FROM u JOIN ins d ON d."deduplicationKey" = u.jkey
                    WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins."id" = u.jid))
                SELECT COALESCE(json_agg(j ORDER BY jord), '[]'::json)::text AS "jobs" FROM out"#,
                ji = job_json("i"),
                je = job_json("e"),
                jd = job_json("d"),
            ),
            insert: format!(
                r#"INSERT INTO {t} ("id", "type", "payload", "options", "status", "priority", "maxRetries", "runAt", "scheduledFor", "deduplicationKey")
                SELECT u.jid, u.jtype, u.jpayload::json, u.joptions::json,
                    CASE WHEN r.at > now() THEN 'scheduled' ELSE 'pending' END, u.jprio, u.jretries,
                    GREATEST(r.at, now()), CASE WHEN r.at > now() THEN r.at END, u.jkey
                FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::text[])
                    WITH ORDINALITY AS u(jid, jtype, jpayload, joptions, jprio, jretries, jdelay, jsched, jkey, jord)
                CROSS JOIN LATERAL (SELECT COALESCE(to_timestamp(u.jsched / 1000.0),
                    now() + COALESCE(u.jdelay, 0) * interval '1 millisecond') AS at) r
                ORDER BY u.jord
                ON CONFLICT DO NOTHING
                RETURNING {inserted}"#
            ),
            by_keys: format!(
                r#"SELECT {c} FROM {t} WHERE "deduplicationKey" = ANY($1) AND "status" NOT IN ('completed', 'dead')"#
            ),
            claim: format!(
                r#"WITH c AS (
                    SELECT q."id" FROM {t} q
                    WHERE q."status" IN ('pending', 'scheduled', 'failed') AND q."runAt" <= now()
                        -- Pauses: each subquery runs once per claim (a one-time filter, a hashed set), and
                        -- the claim still walks its index (a correlated NOT EXISTS made it a hash anti-join).
                        AND NOT EXISTS (SELECT 1 FROM {tp} WHERE "type" = '')
                        AND q."type" NOT IN (SELECT "type" FROM {tp})
                    ORDER BY q."priority", q."runAt", q."seq" LIMIT $1 FOR UPDATE OF q SKIP LOCKED)
                UPDATE {t} j SET "status" = 'processing', "attempts" = j."attempts" + 1,
                    "deliveries" = j."deliveries" + 1, "startedAt" = now(),
                    "lockedUntil" = now() + $2 * interval '1 millisecond'
                FROM c WHERE j."id" = c."id"
                RETURNING {cj}"#
            ),
            next_due: format!(
                r#"SELECT {} AS "ms" FROM {t} WHERE "status" IN ('scheduled', 'failed')"#,
                ms(r#"(min("runAt") - now())"#)
            ),
            complete: format!(
                r#"UPDATE {t} j SET "status" = 'completed', "result" = u.jres::json, "completedAt" = now(), "lockedUntil" = NULL
                FROM unnest($1::uuid[], $2::int8[], $3::text[]) AS u(jid, jd, jres)
                WHERE j."id" = u.jid AND j."deliveries" = u.jd AND j."status" = 'processing'
                RETURNING j."id"::text AS "id", j."deliveries" AS "deliveries""#
            ),
            // $4 is the backoff table: element n+1 is the backoff after attempt n.
            fail: format!(
                r#"UPDATE {t} j SET "lastError" = u.jerr, "lockedUntil" = NULL,
                    "status" = CASE WHEN j."attempts" <= j."maxRetries" THEN 'failed' ELSE 'dead' END,
                    "runAt" = CASE WHEN j."attempts" <= j."maxRetries"
                        THEN now() + ($4::int8[])[LEAST(j."attempts", 16) + 1] * interval '1 millisecond'
                        ELSE j."runAt" END,
                    "completedAt" = CASE WHEN j."attempts" <= j."maxRetries" THEN NULL ELSE now() END
                FROM unnest($1::uuid[], $2::int8[], $3::text[]) AS u(jid, jd, jerr)
                WHERE j."id" = u.jid AND j."deliveries" = u.jd AND j."status" = 'processing'
                RETURNING j."id"::text AS "id", j."deliveries" AS "deliveries""#
            ),
            release: format!(
                r#"UPDATE {t} SET "status" = 'pending', "attempts" = GREATEST("attempts" - 1, 0), "lockedUntil" = NULL
                WHERE "id" = $1::uuid AND "deliveries" = $2 AND "status" = 'processing'"#
            ),
            progress: format!(
                r#"UPDATE {t} SET "progress" = $3 WHERE "id" = $1::uuid AND "deliveries" = $2"#
            ),
            // Rows being settled are skipped, not waited for.
            extend: format!(
                r#"UPDATE {t} j SET "lockedUntil" = now() + $3 * interval '1 millisecond'
                FROM (SELECT x."id" FROM {t} x JOIN unnest($1::uuid[], $2::int8[]) AS u(jid, jd)
                      ON x."id" = u.jid AND x."deliveries" = u.jd
                      WHERE x."status" = 'processing' FOR UPDATE OF x SKIP LOCKED) s
                WHERE j."id" = s."id""#
            ),
            reap: format!(
                r#"UPDATE {t} SET "lockedUntil" = NULL,
                    "status" = CASE WHEN "attempts" <= "maxRetries" THEN 'pending' ELSE 'dead' END,
                    "completedAt" = CASE WHEN "attempts" <= "maxRetries" THEN NULL ELSE now() END,
                    "lastError" = 'lease expired: the worker running this job stopped renewing its lease (crashed or lost)'
                WHERE "id" IN (SELECT "id" FROM {t} WHERE "status" = 'processing' AND "lockedUntil" <= now()
                               LIMIT 1000 FOR UPDATE SKIP LOCKED)"#
            ),
            purge: format!(
                r#"DELETE FROM {t} WHERE "id" IN (SELECT "id" FROM {t}
                    WHERE "status" = $1 AND "completedAt" < now() - $2 * interval '1 millisecond' LIMIT $3)"#
            ),
            get: format!(r#"SELECT {c} FROM {t} WHERE "id" = $1::uuid"#),
            stats: format!(
                r#"SELECT CASE WHEN "status" IN ('scheduled', 'failed') AND "runAt" <= now() THEN 'pending' ELSE "status" END AS "s",
                    count(*)::int8 AS "n" FROM {t} GROUP BY 1"#
            ),
        }
    }
}

/// `"name"` with inner quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The jobs table on PostgreSQL.
pub struct PostgresBackend {
    /// Enqueues and reads: every commit durable.
    pool: PgPool,
    /// Claims, settlements, leases, retention: asynchronous commit.
    work: PgPool,
    schema: String,
    sql: Sql,
    url: String,
}

impl PostgresBackend {
    /// A pool for `config` (its URL, else `DATABASE_URL`), checked by one round trip.
    pub async fn connect(config: &PostgresConfig) -> Result<PostgresBackend> {
        let url = match config.database_url.as_deref().map(str::trim) {
            Some(u) if !u.is_empty() => u.to_owned(),
            _ => std::env::var("DATABASE_URL")
                .ok()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    QueueError::invalid(
                        "providerConfig.databaseUrl is required when type is 'postgres' and DATABASE_URL is not set",
                    )
                })?,
        };
        let shown = redact(&url);
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(QueueError::invalid(format!(
                "providerConfig.databaseUrl must be a postgres:// or postgresql:// URL, got {shown:?}"
            )));
        }
        let schema = config.schema.trim();
        if schema.is_empty() || schema.len() > 63 || schema.contains('\0') {
            return Err(QueueError::invalid(format!(
                "providerConfig.schema must be a PostgreSQL identifier of 1 to 63 bytes, got {:?}",
                config.schema
            )));
        }
        let opts = PgConnectOptions::from_str(&url).map_err(|e| {
            QueueError::invalid(format!(
                "providerConfig.databaseUrl {shown:?} is not valid: {e}"
            ))
        })?;
        let unreachable =
            |e| QueueError::Backend(format!("cannot reach the queue database {shown}: {e}"));
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts.clone())
            .await
            .map_err(unreachable)?;
        // The worker's bookkeeping commits without waiting for the WAL flush (a flush costs
        // milliseconds per commit): a database crash may forget its last moments, and then a
        // claimed or finished job simply runs again, as after any crash. Enqueues stay durable.
        let work = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(opts.options([("synchronous_commit", "off")]));
        let table = format!("{}.\"QueueJob\"", quote_ident(schema));
        let pauses = format!("{}.\"QueueJobPause\"", quote_ident(schema));
        Ok(PostgresBackend {
            pool,
            work,
            schema: schema.to_owned(),
            sql: Sql::new(&table, &pauses),
            url: shown,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The statement of [`crate::durable::PostgresQueue::transactional_enqueue`].
    pub fn tx_insert_sql(&self) -> &str {
        &self.sql.tx_insert
    }

    /// The schema-qualified table name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    fn err(&self, what: &str) -> impl Fn(sqlx::Error) -> QueueError + '_ {
        let what = what.to_owned();
        move |e| QueueError::Backend(format!("queue database {} ({what}): {e}", self.url))
    }
}

fn leases(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<Lease>> {
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

#[async_trait]
impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<()> {
        let err = self.err("migrating");
        let q = quote_ident(&self.schema);
        // One simple-protocol query runs as one transaction: the lock holds to the end.
        let sql = format!(
            "SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock({MIGRATION_LOCK}); CREATE SCHEMA IF NOT EXISTS {q}; SET LOCAL search_path TO {q};\n{MIGRATION}\n{ADMIN_MIGRATION}"
        );
        let mut conn = self.pool.acquire().await.map_err(&err)?;
        conn.execute(sql.as_str()).await.map_err(&err)?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(self.err("connecting"))?;
        Ok(())
    }

    async fn insert(&self, jobs: &[&Insert]) -> Result<Vec<Inserted>> {
        let n = jobs.len();
        let (mut ids, mut types, mut payloads, mut options) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut prios, mut retries, mut delays, mut scheds, mut keys) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for j in jobs {
            ids.push(j.id.hyphenated().to_string());
            types.push(j.job_type.as_str());
            payloads.push(j.payload.get());
            options.push(j.options.as_str());
            prios.push(j.priority);
            retries.push(j.max_retries);
            delays.push(j.delay_ms);
            scheds.push(j.scheduled_for);
            keys.push(j.deduplication_key.as_deref());
        }
        let rows = sqlx::query(&self.sql.insert)
            .bind(ids)
            .bind(types)
            .bind(payloads)
            .bind(options)
            .bind(prios)
            .bind(retries)
            .bind(delays)
            .bind(scheds)
            .bind(keys)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("enqueueing"))?;
        rows.iter().map(inserted_from_row).collect()
    }

    async fn by_dedup_keys(&self, keys: &[String]) -> Result<Vec<Job>> {
        let rows = sqlx::query(&self.sql.by_keys)
            .bind(keys)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("deduplicating"))?;
        rows.iter().map(job_from_row).collect()
    }

    async fn claim(&self, max: usize, lease_ms: u64) -> Result<Vec<(Job, i64)>> {
        let rows = sqlx::query(&self.sql.claim)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .bind(lease_ms as f64)
            .fetch_all(&self.work)
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
            .fetch_one(&self.work)
            .await
            .map_err(self.err("looking for due jobs"))?;
        row.try_get("ms").map_err(db_err)
    }

    async fn complete(&self, done: &[(Lease, Option<&RawValue>)]) -> Result<Vec<Lease>> {
        let mut sorted: Vec<&(Lease, Option<&RawValue>)> = done.iter().collect();
        sorted.sort_by_key(|(l, _)| l.id);
        let rows = sqlx::query(&self.sql.complete)
            .bind(
                sorted
                    .iter()
                    .map(|(l, _)| l.id.hyphenated().to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(sorted.iter().map(|(l, _)| l.delivery).collect::<Vec<_>>())
            .bind(
                sorted
                    .iter()
                    .map(|(_, r)| r.map(RawValue::get))
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&self.work)
            .await
            .map_err(self.err("acknowledging"))?;
        leases(&rows)
    }

    async fn fail(&self, failed: &[(Lease, &str)]) -> Result<Vec<Lease>> {
        let mut sorted: Vec<&(Lease, &str)> = failed.iter().collect();
        sorted.sort_by_key(|(l, _)| l.id);
        let rows = sqlx::query(&self.sql.fail)
            .bind(
                sorted
                    .iter()
                    .map(|(l, _)| l.id.hyphenated().to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(sorted.iter().map(|(l, _)| l.delivery).collect::<Vec<_>>())
            .bind(sorted.iter().map(|(_, e)| *e).collect::<Vec<_>>())
            .bind(backoff_table())
            .fetch_all(&self.work)
            .await
            .map_err(self.err("failing"))?;
        leases(&rows)
    }

    async fn release(&self, lease: Lease) -> Result<bool> {
        let r = sqlx::query(&self.sql.release)
            .bind(lease.id.hyphenated().to_string())
            .bind(lease.delivery)
            .execute(&self.work)
            .await
            .map_err(self.err("releasing"))?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_progress(&self, lease: Lease, percent: f64) -> Result<bool> {
        let r = sqlx::query(&self.sql.progress)
            .bind(lease.id.hyphenated().to_string())
            .bind(lease.delivery)
            .bind(percent)
            .execute(&self.work)
            .await
            .map_err(self.err("storing progress"))?;
        Ok(r.rows_affected() == 1)
    }

    async fn extend(&self, leases: &[Lease], lease_ms: u64) -> Result<()> {
        sqlx::query(&self.sql.extend)
            .bind(
                leases
                    .iter()
                    .map(|l| l.id.hyphenated().to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(leases.iter().map(|l| l.delivery).collect::<Vec<_>>())
            .bind(lease_ms as f64)
            .execute(&self.work)
            .await
            .map_err(self.err("renewing leases"))?;
        Ok(())
    }

    async fn reap(&self) -> Result<u64> {
        let r = sqlx::query(&self.sql.reap)
            .execute(&self.work)
            .await
            .map_err(self.err("reclaiming expired leases"))?;
        Ok(r.rows_affected())
    }

    async fn purge(&self, status: JobStatus, older_than_ms: u64, limit: i64) -> Result<u64> {
        let r = sqlx::query(&self.sql.purge)
            .bind(status.as_str())
            .bind(older_than_ms as f64)
            .bind(limit)
            .execute(&self.work)
            .await
            .map_err(self.err("purging finished jobs"))?;
        Ok(r.rows_affected())
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
        let r = sqlx::query(&self.sql.retry)
            .bind(id.hyphenated().to_string())
            .execute(&self.pool)
            .await
            .map_err(self.err("retrying a job"))?;
        Ok(r.rows_affected() > 0)
    }

    async fn cancel(&self, id: Uuid) -> Result<bool> {
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
        sqlx::query(sql)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(self.err("pausing or resuming"))?;
        Ok(())
    }

    async fn resume_all(&self) -> Result<()> {
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

    async fn notify_others(&self) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&self.schema)
            .execute(&self.pool)
            .await
            .map_err(self.err("notifying workers"))?;
        Ok(())
    }

    fn listen(&self, wake: Weak<Shared>) {
        let pool = self.pool.clone();
        let schema = self.schema.clone();
        let url = self.url.clone();
        tokio::spawn(async move {
            let mut retry = Duration::from_millis(100);
            'connect: loop {
                let listener = async {
                    let mut l = PgListener::connect_with(&pool).await?;
                    l.listen(CHANNEL).await?;
                    Ok::<_, sqlx::Error>(l)
                };
                let mut listener = match listener.await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(
                            "queue database {url}: LISTEN failed, retrying in {} ms: {e}",
                            retry.as_millis()
                        );
                        if !pause(&wake, retry).await {
                            return;
                        }
                        retry = (retry * 2).min(Duration::from_secs(10));
                        continue 'connect;
                    }
                };
                retry = Duration::from_millis(100);
                // Something may have been queued while no one listened.
                match wake.upgrade() {
                    Some(s) if !s.is_closed() => s.wake(),
                    _ => return,
                }
                loop {
                    let Some(shared) = wake.upgrade() else { return };
                    let got = {
                        let stop = shared.stop.notified();
                        tokio::pin!(stop);
                        stop.as_mut().enable();
                        if shared.is_closed() {
                            return;
                        }
                        tokio::select! {
                        r = listener.try_recv() => r,
                        _ = &mut stop => return,
                        }
                    };
                    match got {
                        Ok(Some(n)) => {
                            if n.payload() == schema {
                                shared.wake();
                            }
                        }
                        // The connection dropped (it reconnects on the next call): anything
                        // may have been missed, so look.
                        Ok(None) => shared.wake(),
                        Err(_) if shared.is_closed() => return,
                        Err(e) => {
                            tracing::warn!("queue database {url}: LISTEN connection failed: {e}");
                            shared.wake();
                            drop(shared);
                            if !pause(&wake, retry).await {
                                return;
                            }
                            continue 'connect;
                        }
                    }
                }
            }
        });
    }

    fn fallback_poll(&self) -> Duration {
        FALLBACK_POLL
    }

    /// Each enqueue waits for its commit's WAL flush; several in flight share flushes.
    fn enqueue_concurrency(&self) -> usize {
        4
    }

    async fn close(&self) {
        self.work.close().await;
        self.pool.close().await;
    }
}

/// Sleep `d` unless the provider closes first; false when it is gone or closed.
async fn pause(wake: &Weak<Shared>, d: Duration) -> bool {
    let Some(shared) = wake.upgrade() else {
        return false;
    };
    let stop = shared.stop.notified();
    tokio::pin!(stop);
    stop.as_mut().enable();
    if shared.is_closed() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = &mut stop => return false,
    }
    !shared.is_closed()
}
