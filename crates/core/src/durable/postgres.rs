//! What only PostgreSQL has: the connection (a durable pool and an asynchronous-commit one),
//! the migration under an advisory lock, wake-ups through LISTEN/NOTIFY, and the enqueue that
//! runs on a caller's connection inside its transaction. The statements are in `sql.rs`.

use super::jobs::Jobs;
use super::sql::{insert_from, Statements};
use super::{Insert, Inserted, Shared};
use crate::config::PostgresConfig;
use crate::error::{QueueError, Result};
use crate::events::{parse_cancel, Signal};
use crate::job::JobStatus;
use crate::redact_url as redact;
use crate::store::db::Pool;
use crate::store::dialect::Dialect;
use crate::store::migrate::{self, quote_ident};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Row as _};
use std::str::FromStr;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::mpsc;

/// The NOTIFY channel; the payload is the schema whose table changed.
pub(super) const CHANNEL: &str = "chaaskit_queue";
/// The NOTIFY channel of job events (`createQueueEvents`); payloads name their schema.
pub(super) const EVENTS_CHANNEL: &str = "chaaskit_queue_events";
/// How long a call waits for a connection before it fails (the database is down).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Batches of at least this many jobs, none with a deduplication key, go in by `COPY` (below
/// it the two extra round trips cost more than the rows save).
pub(super) const COPY_MIN: usize = 64;

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

impl Jobs {
    /// A pool for `config` (its URL, else `DATABASE_URL`), checked by one round trip.
    pub(super) async fn connect_postgres(config: &PostgresConfig) -> Result<Jobs> {
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
        let d = Dialect::Postgres;
        let mut jobs = Jobs::new(
            d,
            Pool::Pg(pool),
            Pool::Pg(work),
            Statements::new(d, &table, &pauses),
            schema.to_owned(),
            shown,
        );
        jobs.tx_insert = Some(tx_insert(&table));
        jobs.copy_in = Some(format!(
            r#"COPY {table} ("id", "type", "payload", "options", "status", "priority", "maxRetries", "runAt", "scheduledFor", "createdAt") FROM STDIN WITH (FORMAT binary)"#
        ));
        Ok(jobs)
    }

    /// Insert `jobs` (none carries a deduplication key) with one `COPY … FROM STDIN`, about
    /// twice as fast as the `INSERT … SELECT unnest(…)` of the same rows. What that INSERT
    /// computes from the database clock is computed here from the same clock, read just
    /// before. The COPY is its own transaction (one statement: all rows or none), so a batch
    /// costs a clock read and the COPY, with no BEGIN and COMMIT round trips.
    pub(super) async fn insert_copy(
        &self,
        copy_in: &str,
        jobs: &[&Insert],
    ) -> Result<Vec<Inserted>> {
        let Pool::Pg(pool) = &self.pool else {
            return Err(QueueError::Backend("COPY needs PostgreSQL".into()));
        };
        let err = self.err("enqueueing");
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

    /// Apply the queue's migrations not yet in the schema's ledger (see `store::migrate`).
    pub(super) async fn migrate_postgres(&self) -> Result<()> {
        migrate::migrate(&self.pool, Some(&self.schema), migrate::QUEUE, &self.url)
            .await
            .map_err(QueueError::Backend)
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
pub(super) fn listen(pool: PgPool, schema: String, url: String, wake: Weak<Shared>) {
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
pub(super) async fn listen_events(
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
