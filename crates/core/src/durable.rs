//! The durable providers: jobs in a table of the app's own database (PostgreSQL or SQLite),
//! claimed as leases that a heartbeat renews, so the jobs of a crashed worker run again.
//!
//! [`DbQueue`] (here, with the provider trait's impl) holds what both databases share, by
//! concern: `enqueue.rs`, `claim.rs` (and receive), `settle.rs`, `maintenance.rs` (leases,
//! reaping, retention), `events.rs`, `admin.rs`. Beneath it, [`Jobs`] (`jobs.rs`) is the
//! backend, one implementation per database (`postgres.rs`, `sqlite.rs`), each over the
//! [`Table`] (`table.rs`) that runs the statements both share (`sql.rs`).

mod admin;
mod claim;
mod enqueue;
mod events;
mod jobs;
mod logs;
mod maintenance;
mod postgres;
mod settle;
mod sql;
mod sqlite;
mod table;

pub use enqueue::{Insert, Inserted};
pub use jobs::Jobs;
pub use postgres::PgJobs;
pub use settle::Lease;
pub use sqlite::SqliteJobs;
pub use table::Table;

use crate::admin::{JobFilter, JobPage};
use crate::config::{PostgresConfig, RetentionConfig, SqliteConfig};
use crate::error::{QueueError, Result};
use crate::events::{Delivered, EventKind, EventRecord, Signals};
use crate::job::{Job, NewJob, QueueStats, ReceivedJob};
use crate::joblog::{JobLogs, LogLine};
use crate::lock;
use crate::provider::QueueProvider;
use async_trait::async_trait;
use enqueue::{enqueue_loop, inserts, EnqueueReq, ENQUEUE_BATCH};
use events::publish_loop;
use maintenance::maintenance;
use serde_json::value::RawValue;
use settle::{parse_receipt, settle_loop, Settle, SettleReq};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use uuid::Uuid;

/// Largest visibility timeout accepted, in seconds (12 h, as on SQS).
pub use crate::config::MAX_VISIBILITY_TIMEOUT_S as MAX_VISIBILITY_SECONDS;
/// Connections a busy worker uses at once on the `work` pool: a claim, a settlement batch and a
/// lease renewal or event publication.
const WORK_CONNECTIONS: usize = 3;

/// What the background tasks reach through a weak reference.
pub struct Shared {
    wake: Notify,
    /// Wakes so far: what a receiver saw of the queue holds while this is unchanged.
    wakes: AtomicU64,
    /// Ends the background tasks at close.
    stop: Notify,
    closed: AtomicBool,
    /// Tells this process's workers of cancelled running jobs and stalled leases.
    signals: Signals,
}

impl Shared {
    /// Wake every idle receiver of this provider.
    pub fn wake(&self) {
        self.wakes.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_waiters();
    }
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn shut(&self) -> bool {
        let was = self.closed.swap(true, Ordering::AcqRel);
        self.wake.notify_waiters();
        self.stop.notify_waiters();
        was
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.shut();
    }
}

struct Inner {
    backend: Box<dyn Jobs>,
    enqueue_tx: Mutex<Option<mpsc::UnboundedSender<EnqueueReq>>>,
    shared: Arc<Shared>,
    lease_ms: u64,
    retention: RetentionConfig,
    /// Attempts handed out by this provider and not settled: the heartbeat renews them.
    held: Mutex<HashMap<Uuid, Held>>,
    /// Events to publish for other processes (postgres with `publishEvents`); `None` when
    /// nothing is published.
    publish_tx: Option<mpsc::UnboundedSender<Vec<EventRecord>>>,
    settle_tx: Mutex<Option<mpsc::UnboundedSender<SettleReq>>>,
    settler: Mutex<Option<tokio::task::JoinHandle<()>>>,
    enqueuer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Whether a receive has come: the first starts the wake-ups from other processes and
    /// warms the worker's pool (see [`Pool::warm`](crate::db::Pool::warm)).
    receiving: AtomicBool,
    /// What the last receive saw of the queue, valid while no wake has come since.
    quiet: Mutex<Option<Quiet>>,
    /// `ctx.log` lines waiting for their batch (`logs.rs`).
    logs: logs::LogBatches,
}

/// The queue as a receive left it: at wake number `wakes`, a claim came back short (no
/// other job was due), and after `until` (when known) a look is due anyway: a delayed job's
/// due time, a held row's retry, or the fallback poll.
#[derive(Clone, Copy)]
struct Quiet {
    wakes: u64,
    until: Option<Instant>,
}

/// An attempt this provider handed out: its delivery, and what its events say.
#[derive(Clone, Copy)]
struct Held {
    delivery: i64,
    since: Instant,
    attempt: u32,
    /// No retries left: a failure makes the job dead.
    last: bool,
}

/// A durable queue provider over a [`Jobs`] table.
pub struct DbQueue {
    inner: Arc<Inner>,
}

/// The `postgres` provider.
pub type PostgresQueue = DbQueue;
/// The `sqlite` provider.
pub type SqliteQueue = DbQueue;

/// Check a visibility timeout (seconds) and return it in milliseconds.
fn lease_ms(visibility_timeout: u32) -> Result<u64> {
    if !(1..=MAX_VISIBILITY_SECONDS).contains(&visibility_timeout) {
        return Err(QueueError::invalid(format!(
            "providerConfig.visibilityTimeout must be an integer from 1 to {MAX_VISIBILITY_SECONDS} (seconds), got {visibility_timeout}"
        )));
    }
    Ok(u64::from(visibility_timeout) * 1000)
}

impl DbQueue {
    /// The `postgres` provider: connect (checking the database answers), migrate when
    /// `autoMigrate`, and start.
    pub async fn connect_postgres(config: PostgresConfig) -> Result<Arc<DbQueue>> {
        let lease = lease_ms(config.visibility_timeout)?;
        let backend = PgJobs::connect(&config).await?;
        if config.auto_migrate {
            backend.migrate().await?;
        }
        DbQueue::start(
            Box::new(backend),
            lease,
            config.retention,
            config.publish_events,
        )
        .await
    }

    /// The `sqlite` provider: open the file (creating it), migrate when `autoMigrate`, and start.
    pub async fn connect_sqlite(config: SqliteConfig) -> Result<Arc<DbQueue>> {
        let lease = lease_ms(config.visibility_timeout)?;
        let backend = SqliteJobs::connect(&config).await?;
        if config.auto_migrate {
            backend.migrate().await?;
        }
        DbQueue::start(Box::new(backend), lease, config.retention, false).await
    }

    async fn start(
        backend: Box<dyn Jobs>,
        lease_ms: u64,
        retention: RetentionConfig,
        publish: bool,
    ) -> Result<Arc<Self>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (etx, erx) = mpsc::unbounded_channel();
        let (publish_tx, publish_rx) = if publish {
            let (t, r) = mpsc::unbounded_channel();
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let inner = Arc::new(Inner {
            backend,
            enqueue_tx: Mutex::new(Some(etx)),
            shared: Arc::new(Shared {
                wake: Notify::new(),
                wakes: AtomicU64::new(0),
                stop: Notify::new(),
                closed: AtomicBool::new(false),
                signals: Signals::default(),
            }),
            lease_ms,
            retention,
            held: Mutex::new(HashMap::new()),
            publish_tx,
            settle_tx: Mutex::new(Some(tx)),
            settler: Mutex::new(None),
            enqueuer: Mutex::new(None),
            receiving: AtomicBool::new(false),
            quiet: Mutex::new(None),
            logs: logs::LogBatches::default(),
        });
        let settler = tokio::spawn(settle_loop(Arc::downgrade(&inner), rx));
        *lock(&inner.settler) = Some(settler);
        *lock(&inner.enqueuer) = Some(tokio::spawn(enqueue_loop(Arc::downgrade(&inner), erx)));
        // The connections concurrent enqueues use, made now rather than by the first enqueues
        // (which waited for them: the first 20–30 commits at 500 jobs/s took 8–50 ms).
        let (pool, n) = (
            inner.backend.table().pool.clone(),
            inner.backend.enqueue_concurrency(),
        );
        tokio::spawn(async move { pool.warm(n).await });
        tokio::spawn(maintenance(Arc::downgrade(&inner)));
        if let Some(rx) = publish_rx {
            tokio::spawn(publish_loop(Arc::downgrade(&inner), rx));
        }
        Ok(Arc::new(DbQueue { inner }))
    }

    /// The table, for tests and tools.
    pub fn backend(&self) -> &dyn Jobs {
        self.inner.backend.as_ref()
    }

    /// Attempts this provider has handed out and not settled.
    pub fn held_count(&self) -> usize {
        lock(&self.inner.held).len()
    }

    /// Expire leases now (the background task does this every half second).
    pub async fn reap_expired(&self) -> Result<u64> {
        self.inner.reap().await
    }

    /// Purge finished jobs past their retention now, then vacuum the table if the server will
    /// not (what the background task does every minute); how many jobs were deleted.
    pub async fn purge_finished(&self) -> Result<u64> {
        self.inner.purge_and_tidy().await
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.shared.is_closed() {
            return Err(QueueError::Closed);
        }
        Ok(())
    }
}

impl Inner {
    /// Errors of background work that raced `close` are expected: drop them.
    fn ignore_if_closed(&self, e: QueueError) -> Result<()> {
        if self.shared.is_closed() {
            Ok(())
        } else {
            Err(e)
        }
    }
}

#[async_trait]
impl QueueProvider for DbQueue {
    fn name(&self) -> &'static str {
        self.inner.backend.name()
    }

    async fn enqueue(&self, job: NewJob) -> Result<Job> {
        let mut jobs = self.enqueue_bulk(vec![job]).await?;
        jobs.pop()
            .ok_or_else(|| QueueError::Backend("the database returned no job".into()))
    }

    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        self.check_open()?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = inserts(jobs)?;
        if rows.len() >= ENQUEUE_BATCH {
            return self
                .inner
                .insert_all(&rows.iter().collect::<Vec<_>>())
                .await;
        }
        let (done, rx) = oneshot::channel();
        {
            let tx = lock(&self.inner.enqueue_tx);
            let tx = tx.as_ref().ok_or(QueueError::Closed)?;
            tx.send(EnqueueReq { rows, done })
                .map_err(|_| QueueError::Closed)?;
        }
        rx.await.map_err(|_| QueueError::Closed)?
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>> {
        self.receive_jobs(max, wait).await
    }

    /// As many as run: a claim is one statement whatever its size, so a worker's next batch
    /// is claimed while the last one runs (with no-op jobs at concurrency 24 on SQLite, the
    /// default's 10 left the claims too small to keep up).
    fn prefetch(&self, concurrency: usize) -> usize {
        concurrency.min(100)
    }

    async fn acknowledge(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()> {
        self.settle(receipt, |l| Settle::Ack(l, result)).await
    }

    async fn fail(&self, receipt: &str, error: &str) -> Result<()> {
        self.settle(receipt, |l| Settle::Fail(l, error.to_owned()))
            .await
    }

    async fn release(&self, receipt: &str) -> Result<()> {
        let lease = parse_receipt(receipt)?;
        let released = self.inner.backend.table().release(lease).await;
        self.inner.forget(lease);
        if !released? {
            if self.was_cancelled(lease).await? {
                return Ok(());
            }
            return Err(QueueError::UnknownReceipt(receipt.to_owned()));
        }
        self.inner.shared.wake();
        self.inner.backend.notify_others().await
    }

    async fn set_progress(&self, receipt: &str, percent: f64) -> Result<()> {
        let lease = parse_receipt(receipt)?;
        if self
            .inner
            .backend
            .table()
            .set_progress(lease, percent)
            .await?
        {
            if self.inner.publish_tx.is_some() {
                let mut r =
                    EventRecord::new(EventKind::Progress, lease.id.hyphenated().to_string());
                r.percent = Some(percent);
                self.inner.publish(vec![r]);
            }
            Ok(())
        } else {
            Err(QueueError::UnknownReceipt(receipt.to_owned()))
        }
    }

    async fn append_log(&self, receipt: &str, line: LogLine) -> Result<()> {
        let b = &self.inner.backend;
        let lease = parse_receipt(receipt)?;
        self.inner
            .logs
            .of(b.table(), b.schema())
            .append(lease, line)
            .await
    }

    async fn get_job_logs(&self, id: &str) -> Result<Option<JobLogs>> {
        let b = &self.inner.backend;
        match Uuid::try_parse(id) {
            Ok(id) => self.inner.logs.of(b.table(), b.schema()).read(id).await,
            Err(_) => Ok(None),
        }
    }

    async fn get_job(&self, id: &str) -> Result<Option<Job>> {
        match Uuid::try_parse(id) {
            Ok(id) => self.inner.backend.table().get(id).await,
            Err(_) => Ok(None),
        }
    }

    async fn stats(&self) -> Result<QueueStats> {
        self.inner.backend.table().stats().await
    }

    async fn list_jobs(&self, filter: JobFilter) -> Result<JobPage> {
        self.list_page(filter).await
    }

    async fn retry_job(&self, id: &str) -> Result<bool> {
        self.retry_one(id).await
    }

    async fn cancel_job(&self, id: &str) -> Result<bool> {
        self.cancel_one(id).await
    }

    async fn pause(&self, job_type: Option<&str>) -> Result<()> {
        self.inner
            .backend
            .table()
            .set_paused(job_type.unwrap_or(""), true)
            .await
    }

    async fn resume(&self, job_type: Option<&str>) -> Result<()> {
        match job_type {
            Some(t) => self.inner.backend.table().set_paused(t, false).await?,
            None => self.inner.backend.table().resume_all().await?,
        }
        self.inner.shared.wake();
        self.inner.backend.notify_others().await
    }

    async fn paused(&self) -> Result<Vec<Option<String>>> {
        let keys = self.inner.backend.table().paused().await?;
        Ok(keys
            .into_iter()
            .map(|k| (!k.is_empty()).then_some(k))
            .collect())
    }

    fn signals(&self) -> Option<&Signals> {
        Some(&self.inner.shared.signals)
    }

    async fn subscribe_events(&self) -> Result<mpsc::UnboundedReceiver<Vec<Delivered>>> {
        self.events().await
    }

    async fn close(&self) -> Result<()> {
        if self.inner.shared.shut() {
            return Ok(());
        }
        // Let queued enqueues and settlements finish, then close the pool.
        drop(lock(&self.inner.enqueue_tx).take());
        drop(lock(&self.inner.settle_tx).take());
        let tasks = [
            lock(&self.inner.enqueuer).take(),
            lock(&self.inner.settler).take(),
        ];
        for t in tasks.into_iter().flatten() {
            let _ = t.await;
        }
        self.inner.backend.table().close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip_and_junk_is_unknown() {
        let id = Uuid::now_v7();
        let l = parse_receipt(&format!("{id}:7")).unwrap();
        assert_eq!(l, Lease { id, delivery: 7 });
        for bad in ["", "x:1", &format!("{id}"), &format!("{id}:x")] {
            assert!(matches!(
                parse_receipt(bad),
                Err(QueueError::UnknownReceipt(_))
            ));
        }
    }

    #[test]
    fn visibility_timeout_is_bounded() {
        assert_eq!(lease_ms(30).unwrap(), 30_000);
        assert!(lease_ms(0)
            .unwrap_err()
            .to_string()
            .contains("providerConfig.visibilityTimeout"));
        assert!(lease_ms(MAX_VISIBILITY_SECONDS + 1).is_err());
    }
}
