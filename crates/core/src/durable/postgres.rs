//! What only PostgreSQL has: the connection (a durable pool and an asynchronous-commit one),
//! the migration under an advisory lock, wake-ups through LISTEN/NOTIFY, and the enqueue that
//! runs on a caller's connection inside its transaction. The statements are in `sql.rs`.

use super::jobs::Jobs;
use super::sql::{insert_from, Statements};
use super::table::Table;
use super::{Insert, Inserted, Shared};
use crate::config::{rule, PostgresConfig};
use crate::db::dialect::Dialect;
use crate::db::dialect::Kind;
use crate::db::migrate;
use crate::db::{pg_pool_options, Arg, Column, Pool};
use crate::error::{QueueError, Result};
use crate::events::{parse_cancel, Signal};
use crate::job::JobStatus;
use crate::pg_schema::{check_schema, quote_ident, split_schema, DEFAULT_SCHEMA};
use crate::redact_url as redact;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::{PgPool, Row as _};
use std::str::FromStr;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::mpsc;

/// The NOTIFY channel; the payload is the schema whose table changed.
const CHANNEL: &str = "chaaskit_queue";
/// The NOTIFY channel of job events (`createQueueEvents`); payloads name their schema.
const EVENTS_CHANNEL: &str = "chaaskit_queue_events";

/// Batches of at least this many jobs, none with a deduplication key, go in by `COPY` (below
/// it the two extra round trips cost more than the rows save).
const COPY_MIN: usize = 64;

/// The `postgres` provider's table: a durable pool and an asynchronous-commit one, LISTEN/NOTIFY
/// for wake-ups and events, `COPY` for large batches, the enqueue inside a caller's transaction.
pub struct PgJobs {
    table: Table,
    /// The schema (quoted into the statements; the NOTIFY payload).
    schema: String,
    /// The statement of an enqueue inside a caller's transaction.
    tx_insert: String,
    /// The `COPY` of a large batch without deduplication keys.
    copy_in: String,
}

/// A job as one JSON object (the `Job` shape; `scheduledFor` etc. `null` when unset), from the
/// table aliased `p`.
fn job_json(p: &str) -> String {
    let d = Dialect::Postgres;
    format!(
        r#"json_build_object('id', {p}."id"::text, 'type', {p}."type", 'payload', {p}."payload", 'options', {p}."options",
        'status', CASE WHEN {p}."status" IN ('scheduled', 'failed') AND {p}."runAt" <= now() THEN 'pending' ELSE {p}."status" END,
        'attempts', {p}."attempts", 'createdAt', {created}, 'scheduledFor', {sched})"#,
        created = d.epoch_ms(&format!(r#"{p}."createdAt""#)),
        sched = d.epoch_ms(&format!(r#"{p}."scheduledFor""#)),
    )
}

/// The insert on a caller's connection, inside its transaction: one JSON text parameter (any
/// client binds that), one row back whose "jobs" is the jobs as JSON, in input order (an
/// existing unfinished job for a deduplicated item).
fn tx_insert(t: &str) -> String {
    format!(
        r#"WITH u AS (
            SELECT * FROM json_to_recordset($1::json) AS x(jid uuid, jtype text, jpayload text, joptions text,
                jprio int8, jretries int8, jdelay int8, jsched int8, jkey text, jord int8)),
        ins AS ({insert}),
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
        insert = insert_from(Dialect::Postgres, t, "u", "*", true),
        ji = job_json("i"),
        je = job_json("e"),
        jd = job_json("d"),
    )
}

impl PgJobs {
    /// A pool for `config` (its URL, else `DATABASE_URL`), checked by one round trip.
    pub(super) async fn connect(config: &PostgresConfig) -> Result<PgJobs> {
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
        rule::scheme_url_of(url.as_str().into(), &["postgres", "postgresql"])
            .map_err(|e| QueueError::invalid(e.at("providerConfig.databaseUrl").to_string()))?;
        // Prisma's `?schema=` names the schema too; an explicit `schema` wins over it.
        let (url, url_schema) = split_schema(&url, "providerConfig.databaseUrl")?;
        let schema = match config.schema.as_deref() {
            Some(s) => check_schema(s.trim(), "providerConfig.schema")?,
            None => url_schema.as_deref().unwrap_or(DEFAULT_SCHEMA),
        };
        let opts = PgConnectOptions::from_str(&url).map_err(|e| {
            QueueError::invalid(format!(
                "providerConfig.databaseUrl {shown:?} is not valid: {e}"
            ))
        })?;
        let unreachable =
            |e| QueueError::Backend(format!("cannot reach the queue database {shown}: {e}"));
        let pool = pg_pool_options(8)
            .connect_with(opts.clone())
            .await
            .map_err(unreachable)?;
        // The worker's bookkeeping commits without waiting for the WAL flush (a flush costs
        // milliseconds per commit): a database crash may forget its last moments, and then a
        // claimed or finished job simply runs again, as after any crash. Enqueues stay durable.
        let work =
            pg_pool_options(4).connect_lazy_with(opts.options([("synchronous_commit", "off")]));
        let table = format!("{}.\"QueueJob\"", quote_ident(schema));
        let pauses = format!("{}.\"QueueJobPause\"", quote_ident(schema));
        let jobs = PgJobs {
            table: Table::new(
                Pool::Pg(pool),
                Pool::Pg(work),
                Statements::new(Dialect::Postgres, &table, &pauses),
                shown,
                false,
            ),
            schema: schema.to_owned(),
            tx_insert: tx_insert(&table),
            copy_in: format!(
                r#"COPY {table} ("id", "type", "payload", "options", "status", "priority", "maxRetries", "runAt", "scheduledFor", "createdAt") FROM STDIN WITH (FORMAT binary)"#
            ),
        };
        jobs.table.ping().await?;
        Ok(jobs)
    }

    /// Insert `jobs` (none carries a deduplication key) with one `COPY … FROM STDIN`, about
    /// twice as fast as the `INSERT … SELECT unnest(…)` of the same rows. What that INSERT
    /// computes from the database clock is computed here from the same clock, read just
    /// before. The COPY is its own transaction (one statement: all rows or none), so a batch
    /// costs a clock read and the COPY, with no BEGIN and COMMIT round trips.
    async fn insert_copy(&self, jobs: &[&Insert]) -> Result<Vec<Inserted>> {
        let Pool::Pg(pool) = &self.table.pool else {
            return Err(QueueError::Backend("COPY needs PostgreSQL".into()));
        };
        let copy_in = self.copy_in.as_str();
        let err = self.table.err("enqueueing");
        let mut conn = pool.acquire().await.map_err(&err)?;
        // now() in µs, and as a TIMESTAMPTZ(3) column stores it, in ms.
        let clock = sqlx::query(
            "SELECT CAST(EXTRACT(EPOCH FROM now()) * 1000000 AS BIGINT) AS us, CAST(EXTRACT(EPOCH FROM CAST(now() AS TIMESTAMPTZ(3))) * 1000 AS BIGINT) AS ms",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(&err)?;
        let (now_us, now_ms): (i64, i64) = (
            clock.try_get("us").map_err(&err)?,
            clock.try_get("ms").map_err(&err)?,
        );
        let mut data = CopyBinary::new(jobs.len() * 200);
        let mut out = Vec::with_capacity(jobs.len());
        for j in jobs {
            let due = copy_due(j, now_us, now_ms);
            let (status, run_at) = match due {
                Some(at) => (JobStatus::Scheduled, at),
                None => (JobStatus::Pending, now_ms),
            };
            data.row(10);
            data.bytes(j.id.as_bytes());
            data.bytes(j.job_type.as_bytes());
            data.bytes(j.payload.get().as_bytes());
            data.bytes(j.options.as_bytes());
            data.bytes(status.as_str().as_bytes());
            data.int(j.priority);
            data.int(j.max_retries);
            data.time(run_at);
            match due {
                Some(at) => data.time(at),
                None => data.null(),
            }
            data.time(now_ms);
            out.push(Inserted {
                id: j.id,
                status,
                created_at: now_ms,
                scheduled_for: due,
            });
        }
        let data = data.finish()?;
        let mut copy = conn.copy_in_raw(copy_in).await.map_err(&err)?;
        if let Err(e) = copy.send(data).await {
            let _ = copy.abort(e.to_string()).await;
            return Err(err(e));
        }
        copy.finish().await.map_err(&err)?;
        Ok(out)
    }

    /// `SELECT pg_notify($1, $2)`.
    async fn notify(&self, channel: &str, payload: &str, what: &str) -> Result<()> {
        let args = [Arg::Text(channel), Arg::Text(payload)];
        let t = &self.table;
        t.fetch(&t.pool, "SELECT pg_notify($1, $2)", &args, what)
            .await
            .map(drop)
    }
}

#[async_trait]
impl Jobs for PgJobs {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn table(&self) -> &Table {
        &self.table
    }

    fn schema(&self) -> &str {
        &self.schema
    }

    /// Apply the queue's migrations not yet in the schema's ledger (see `store::migrate`).
    async fn migrate(&self) -> Result<()> {
        migrate::migrate(
            &self.table.pool,
            Some(&self.schema),
            migrate::QUEUE,
            &self.table.url,
        )
        .await
        .map_err(QueueError::Backend)
    }

    /// Batches of [`COPY_MIN`] jobs or more without deduplication keys go in by `COPY`.
    async fn insert(&self, jobs: &[&Insert]) -> Result<Vec<Inserted>> {
        if jobs.len() >= COPY_MIN && jobs.iter().all(|j| j.deduplication_key.is_none()) {
            return self.insert_copy(jobs).await;
        }
        self.table.insert(jobs).await
    }

    /// `VACUUM` the table when the server's autovacuum is off (else it does this itself), so
    /// that a queue under steady load keeps a bounded size.
    async fn vacuum_if_unattended(&self) -> Result<bool> {
        let t = &self.table;
        let Some(vacuum) = &t.sql.vacuum else {
            return Ok(false);
        };
        let rows = t
            .fetch(
                &t.work,
                "SELECT current_setting('autovacuum') AS \"on\"",
                &[],
                "reading the autovacuum setting",
            )
            .await?;
        let on = rows
            .first()
            .map(|r| r.get::<String>("on"))
            .transpose()?
            .unwrap_or_default();
        if on == "on" {
            return Ok(false);
        }
        t.work
            .script(vacuum)
            .await
            .map_err(t.err("vacuuming the jobs table"))?;
        Ok(true)
    }

    /// NOTIFY on the wake-up channel, with the schema.
    async fn notify_others(&self) -> Result<()> {
        self.notify(CHANNEL, &self.schema, "notifying workers")
            .await
    }

    /// NOTIFY on the wake-up channel, with the schema and the job.
    async fn notify_cancel(&self, id: &str) -> Result<()> {
        let payload = crate::events::cancel_payload(&self.schema, id);
        self.notify(CHANNEL, &payload, "notifying a cancel").await
    }

    /// NOTIFY on the events channel, one notification per payload, in one statement.
    async fn publish(&self, payloads: &[String]) -> Result<()> {
        if payloads.is_empty() {
            return Ok(());
        }
        let t = &self.table;
        let cols = [Column::Text(payloads.iter().map(String::as_str).collect())];
        let sql = format!(
            "SELECT pg_notify($1, u.p) FROM {}",
            t.dialect.rows(2, &[("p", Kind::Text)])
        );
        let args = [Arg::Text(EVENTS_CHANNEL), Arg::Rows(&cols)];
        t.fetch(&t.pool, &sql, &args, "publishing events")
            .await
            .map(drop)
    }

    async fn listen_events(&self, shared: Weak<Shared>) -> Result<mpsc::UnboundedReceiver<String>> {
        let Pool::Pg(pool) = &self.table.pool else {
            return Err(QueueError::Backend("LISTEN needs PostgreSQL".into()));
        };
        listen_events(pool.clone(), self.table.url.clone(), shared).await
    }

    fn listen(&self, wake: Weak<Shared>) {
        if let Pool::Pg(pool) = &self.table.pool {
            listen(
                pool.clone(),
                self.schema.clone(),
                self.table.url.clone(),
                wake,
            );
        }
    }

    fn hears_other_processes(&self) -> bool {
        true
    }

    /// Woken by NOTIFY; polls only for a lost one.
    fn fallback_poll(&self) -> Duration {
        Duration::from_secs(2)
    }

    /// Each enqueue waits for its commit's WAL flush; several in flight share flushes.
    fn enqueue_concurrency(&self) -> usize {
        4
    }

    fn tx_insert(&self) -> Option<&str> {
        Some(&self.tx_insert)
    }
}

/// When a job the INSERT would make `scheduled` is due (epoch ms), or None when it is due
/// now: its `scheduledFor`, else the clock plus its delay, if later than the clock (`now_us`,
/// and `now_ms` as stored).
fn copy_due(j: &Insert, now_us: i64, now_ms: i64) -> Option<i64> {
    match (j.scheduled_for, j.delay_ms) {
        (Some(at), _) => (at.saturating_mul(1000) > now_us).then_some(at),
        (None, Some(d)) if d > 0 => Some(now_ms.saturating_add(d)),
        _ => None,
    }
}

/// Rows in `COPY`'s binary format: no escaping, and dates and numbers as PostgreSQL keeps them
/// (parsing date text is most of what a text `COPY` costs the server per row).
struct CopyBinary {
    data: Vec<u8>,
    /// A field too long for the format (over 2 GiB).
    too_long: bool,
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

impl CopyBinary {
    fn new(capacity: usize) -> CopyBinary {
        let mut b = Vec::with_capacity(capacity + 21);
        b.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        b.extend_from_slice(&0i32.to_be_bytes()); // flags
        b.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyBinary {
            data: b,
            too_long: false,
        }
    }

    /// Start a row of `fields` fields.
    fn row(&mut self, fields: i16) {
        self.data.extend_from_slice(&fields.to_be_bytes());
    }

    fn bytes(&mut self, v: &[u8]) {
        let len = i32::try_from(v.len()).unwrap_or_else(|_| {
            self.too_long = true;
            0
        });
        self.data.extend_from_slice(&len.to_be_bytes());
        self.data.extend_from_slice(v);
    }

    fn int(&mut self, v: i64) {
        self.data.extend_from_slice(&8i32.to_be_bytes());
        self.data.extend_from_slice(&v.to_be_bytes());
    }

    /// A `TIMESTAMPTZ` of epoch ms.
    fn time(&mut self, ms: i64) {
        self.int(ms.saturating_mul(1000).saturating_sub(PG_EPOCH_US));
    }

    fn null(&mut self) {
        self.data.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn finish(mut self) -> Result<Vec<u8>> {
        if self.too_long {
            return Err(QueueError::invalid("a job's field is over 2 GiB"));
        }
        self.data.extend_from_slice(&(-1i16).to_be_bytes());
        Ok(self.data)
    }
}

/// Wake `wake`'s receivers on every NOTIFY for `schema` until the provider closes; a lost
/// connection reconnects with backoff and wakes them (a notification may have been missed).
fn listen(pool: PgPool, schema: String, url: String, wake: Weak<Shared>) {
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
                        } else if let Some(id) = parse_cancel(&schema, n.payload()) {
                            shared.signals.send(Signal::Cancelled(id.to_owned()));
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

/// LISTEN on the events channel (resolves once listening) and forward its payloads until the
/// receiver is dropped or the provider closes; a lost connection reconnects with backoff
/// (what was sent meanwhile is missed).
async fn listen_events(
    pool: PgPool,
    url: String,
    shared: Weak<Shared>,
) -> Result<mpsc::UnboundedReceiver<String>> {
    let connect = |pool: PgPool| async move {
        let mut l = PgListener::connect_with(&pool).await?;
        l.listen(EVENTS_CHANNEL).await?;
        Ok::<_, sqlx::Error>(l)
    };
    let mut listener = connect(pool.clone())
        .await
        .map_err(|e| QueueError::Backend(format!("queue database {url}: LISTEN failed: {e}")))?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut retry = Duration::from_millis(100);
        loop {
            let Some(s) = shared.upgrade() else { return };
            let got = {
                let stop = s.stop.notified();
                tokio::pin!(stop);
                stop.as_mut().enable();
                if s.is_closed() {
                    return;
                }
                tokio::select! {
                    r = listener.try_recv() => r,
                    _ = &mut stop => return,
                    _ = tx.closed() => return,
                }
            };
            match got {
                Ok(Some(n)) => {
                    retry = Duration::from_millis(100);
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(
                        "queue database {url}: events LISTEN failed, reconnecting in {} ms: {e}",
                        retry.as_millis()
                    );
                    loop {
                        if !pause(&shared, retry).await || tx.is_closed() {
                            return;
                        }
                        retry = (retry * 2).min(Duration::from_secs(10));
                        match connect(pool.clone()).await {
                            Ok(l) => {
                                listener = l;
                                break;
                            }
                            Err(e) => {
                                tracing::warn!("queue database {url}: events LISTEN failed: {e}")
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(rx)
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
