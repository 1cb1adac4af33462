//! The durable providers: jobs in a table of the app's own database (PostgreSQL or SQLite),
//! claimed as leases that a heartbeat renews, so the jobs of a crashed worker run again.
//!
//! [`DbQueue`] holds what both databases share — receipts, the heartbeat, batched
//! settlement, wake-ups, lease reaping and retention — over [`Jobs`], the table, which runs
//! one statement per operation (`sql.rs`, written once with the dialect's named pieces).
//! `postgres.rs` and `sqlite.rs` hold only what one database has and the other has not.

mod jobs;
mod postgres;
mod sql;
mod sqlite;

pub use jobs::Jobs;

use crate::admin::{Cursor, JobFilter, JobPage};
use crate::config::{PostgresConfig, RetentionConfig, SqliteConfig};
use crate::error::{QueueError, Result};
use crate::events::{self, Delivered, EventKind, EventRecord, Signal, Signals};
use crate::job::{
    has_retries_left, retry_backoff_ms, Job, JobOptions, JobStatus, NewJob, QueueStats, ReceivedJob,
};
use crate::provider::QueueProvider;
use async_trait::async_trait;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use uuid::Uuid;

/// Largest visibility timeout accepted, in seconds (12 h, as on SQS).
pub const MAX_VISIBILITY_SECONDS: u32 = 43_200;
/// Jobs inserted in one statement at most by the enqueue batcher; a bulk this big goes alone.
const ENQUEUE_BATCH: usize = 1000;
/// Receipts settled in one statement at most.
const SETTLE_BATCH: usize = 1000;
/// Connections a busy worker uses at once on the `work` pool: a claim, a settlement batch and a
/// lease renewal or event publication.
const WORK_CONNECTIONS: usize = 3;
/// Rows one retention statement deletes at most.
const PURGE_BATCH: i64 = 1000;
/// How long queued events gather before one NOTIFY statement publishes them.
const PUBLISH_WINDOW: Duration = Duration::from_millis(5);
/// How often expired leases are looked for.
const REAP_EVERY: Duration = Duration::from_millis(500);
/// How often finished jobs past their retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// A job as the backend inserts it: the id is made here, times are made by the database.
#[derive(Clone, Debug)]
pub struct Insert {
    pub id: Uuid,
    pub job_type: String,
    pub payload: Box<RawValue>,
    /// [`JobOptions`] as JSON text.
    pub options: String,
    pub job_options: JobOptions,
    pub priority: i64,
    pub max_retries: i64,
    /// Relative delay in ms (the database adds it to its clock).
    pub delay_ms: Option<i64>,
    /// Absolute due time in epoch ms (`scheduledFor`); wins over `delay_ms`.
    pub scheduled_for: Option<i64>,
    pub deduplication_key: Option<String>,
}

/// What the database decided for an inserted row; the rest of the job is what was sent.
pub struct Inserted {
    pub id: Uuid,
    pub status: JobStatus,
    pub created_at: i64,
    pub scheduled_for: Option<i64>,
}

impl Insert {
    fn job(&self, d: Inserted) -> Job {
        Job {
            id: self.id.hyphenated().to_string(),
            job_type: self.job_type.clone(),
            payload: self.payload.clone(),
            options: self.job_options.clone(),
            status: d.status,
            attempts: 0,
            created_at: d.created_at,
            scheduled_for: d.scheduled_for,
            started_at: None,
            completed_at: None,
            last_error: None,
            progress: None,
            result: None,
        }
    }
}

/// One attempt to settle: the job and the delivery its receipt names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    pub id: Uuid,
    pub delivery: i64,
}

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

/// Backoff after attempt `n` at index `n` (`n` capped at 16), for the SQL of `fail`.
fn backoff_table() -> Vec<i64> {
    (0..=16)
        .map(|n| i64::try_from(retry_backoff_ms(n)).unwrap_or(i64::MAX))
        .collect()
}

/// Stats from `(status as shown, count)` rows.
fn stats_from(rows: impl Iterator<Item = Result<(String, i64)>>) -> Result<QueueStats> {
    let mut s = QueueStats::default();
    for r in rows {
        let (status, n) = r?;
        let n = u64::try_from(n).unwrap_or(0);
        match status.as_str() {
            "pending" => s.pending += n,
            "scheduled" => s.scheduled += n,
            "processing" => s.processing += n,
            "completed" => s.completed += n,
            "failed" => s.failed += n,
            "dead" => s.dead += n,
            "cancelled" => s.cancelled += n,
            _ => {}
        }
    }
    Ok(s)
}

enum Settle {
    Ack(Lease, Option<Box<RawValue>>),
    Fail(Lease, String),
}

struct SettleReq {
    op: Settle,
    done: oneshot::Sender<Result<bool>>,
}

/// Enqueues made while one insert runs go together in the next (one statement, one commit).
struct EnqueueReq {
    rows: Vec<Insert>,
    done: oneshot::Sender<Result<Vec<Job>>>,
}

struct Inner {
    backend: Jobs,
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
    /// warms the worker's pool (see [`Pool::warm`](crate::store::db::Pool::warm)).
    receiving: AtomicBool,
    /// What the last receive saw of the queue, valid while no wake has come since.
    quiet: Mutex<Option<Quiet>>,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

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
        let backend = Jobs::connect_postgres(&config).await?;
        if config.auto_migrate {
            backend.migrate_postgres().await?;
        }
        DbQueue::start(backend, lease, config.retention, config.publish_events).await
    }

    /// The `sqlite` provider: open the file (creating it), migrate when `autoMigrate`, and start.
    pub async fn connect_sqlite(config: SqliteConfig) -> Result<Arc<DbQueue>> {
        let lease = lease_ms(config.visibility_timeout)?;
        let backend = Jobs::connect_sqlite(&config).await?;
        if config.auto_migrate {
            backend.migrate_sqlite().await?;
        }
        DbQueue::start(backend, lease, config.retention, false).await
    }

    /// Enqueue inside a caller's transaction: the statement to run on the caller's connection
    /// with its one parameter (JSON text). Its one row's `jobs` column is the jobs as JSON, in
    /// order; a rolled-back transaction leaves no job, a committed one wakes the workers.
    pub fn transactional_enqueue(&self, jobs: Vec<NewJob>) -> Result<(String, String)> {
        self.check_open()?;
        let rows = inserts(jobs)?;
        let param: Vec<serde_json::Value> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::json!({
                    "jid": r.id.hyphenated().to_string(),
                    "jtype": r.job_type,
                    "jpayload": r.payload.get(),
                    "joptions": r.options,
                    "jprio": r.priority,
                    "jretries": r.max_retries,
                    "jdelay": r.delay_ms,
                    "jsched": r.scheduled_for,
                    "jkey": r.deduplication_key,
                    "jord": i,
                })
            })
            .collect();
        let sql = self.inner.backend.tx_insert.clone().ok_or_else(|| {
            QueueError::invalid(format!(
                "the tx option needs the postgres provider; this queue's provider is {}",
                self.inner.backend.name()
            ))
        })?;
        Ok((sql, serde_json::Value::Array(param).to_string()))
    }

    async fn start(
        backend: Jobs,
        lease_ms: u64,
        retention: RetentionConfig,
        publish: bool,
    ) -> Result<Arc<Self>> {
        backend.ping().await?;
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
        });
        let settler = tokio::spawn(settle_loop(Arc::downgrade(&inner), rx));
        *lock(&inner.settler) = Some(settler);
        *lock(&inner.enqueuer) = Some(tokio::spawn(enqueue_loop(Arc::downgrade(&inner), erx)));
        // The connections concurrent enqueues use, made now rather than by the first enqueues
        // (which waited for them: the first 20–30 commits at 500 jobs/s took 8–50 ms).
        let (pool, n) = (
            inner.backend.pool.clone(),
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
    pub fn backend(&self) -> &Jobs {
        &self.inner.backend
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

    /// Claim in a task of its own: a receive dropped mid-claim (a worker stopping) gives the
    /// claimed jobs straight back instead of stranding them until their leases end.
    async fn claim(&self, max: usize) -> Result<Vec<(Job, i64)>> {
        let (tx, rx) = oneshot::channel();
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let r = inner.backend.claim(max, inner.lease_ms).await;
            if let Err(Ok(jobs)) = tx.send(r) {
                for (job, delivery) in jobs {
                    if let Ok(id) = Uuid::try_parse(&job.id) {
                        let _ = inner.backend.release(Lease { id, delivery }).await;
                    }
                }
                inner.shared.wake();
            }
        });
        rx.await.map_err(|_| QueueError::Closed)?
    }

    /// Claim up to `max` jobs and hold them: the jobs a receive returns.
    async fn claim_received(&self, max: usize) -> Result<Vec<ReceivedJob>> {
        let claimed = match self.claim(max).await {
            // Closed while claiming: the pool is gone, and so are the jobs it held.
            Err(_) if self.inner.shared.is_closed() => return Ok(Vec::new()),
            r => r?,
        };
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let since = Instant::now();
        let publishing = self.inner.publish_tx.is_some();
        let mut active = Vec::new();
        let mut held = lock(&self.inner.held);
        let out = claimed
            .into_iter()
            .map(|(job, delivery)| {
                if let Ok(id) = Uuid::try_parse(&job.id) {
                    let h = Held {
                        delivery,
                        since,
                        attempt: job.attempts,
                        last: !has_retries_left(job.attempts, &job.options),
                    };
                    held.insert(id, h);
                }
                if publishing {
                    active.push(EventRecord::new(EventKind::Active, job.id.clone()));
                }
                let receipt_handle = format!("{}:{delivery}", job.id);
                ReceivedJob {
                    job,
                    receipt_handle,
                }
            })
            .collect();
        drop(held);
        self.inner.publish(active);
        Ok(out)
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.shared.is_closed() {
            return Err(QueueError::Closed);
        }
        Ok(())
    }

    async fn settle(&self, receipt: &str, op: impl FnOnce(Lease) -> Settle) -> Result<()> {
        let lease = parse_receipt(receipt)?;
        let (done, rx) = oneshot::channel();
        {
            let tx = lock(&self.inner.settle_tx);
            let tx = tx.as_ref().ok_or(QueueError::Closed)?;
            tx.send(SettleReq {
                op: op(lease),
                done,
            })
            .map_err(|_| QueueError::Closed)?;
        }
        let outcome = rx.await.map_err(|_| QueueError::Closed).and_then(|r| r);
        // Whatever the database said, this attempt is over here: stop renewing its lease (if
        // the write was lost, the job runs again once the lease ends).
        self.inner.forget(lease);
        if outcome? || self.was_cancelled(lease).await? {
            Ok(())
        } else {
            Err(QueueError::UnknownReceipt(receipt.to_owned()))
        }
    }

    /// Whether the job of an attempt that settled nothing was cancelled (its outcome is then
    /// discarded, not an error).
    async fn was_cancelled(&self, lease: Lease) -> Result<bool> {
        let job = self.inner.backend.get(lease.id).await?;
        Ok(job.is_some_and(|j| j.status == JobStatus::Cancelled))
    }
}

impl Inner {
    /// Insert `rows`; returns their jobs in order (for a deduplicated row, the unfinished job
    /// holding its key; if that job finished between the insert and the look-up, insert again).
    async fn insert_all(&self, rows: &[&Insert]) -> Result<Vec<Job>> {
        let b = &self.backend;
        let mut by_id: HashMap<Uuid, Job> = HashMap::with_capacity(rows.len());
        let mut todo: Vec<&Insert> = rows.to_vec();
        let mut by_key: HashMap<String, Job> = HashMap::new();
        for _ in 0..3 {
            let sent: HashMap<Uuid, &Insert> = todo.iter().map(|r| (r.id, *r)).collect();
            for d in b.insert(&todo).await? {
                if let Some(r) = sent.get(&d.id) {
                    by_id.insert(d.id, r.job(d));
                }
            }
            let missing: Vec<&Insert> = todo
                .into_iter()
                .filter(|r| !by_id.contains_key(&r.id))
                .collect();
            let keys: Vec<String> = missing
                .iter()
                .filter_map(|r| r.deduplication_key.clone())
                .filter(|k| !by_key.contains_key(k))
                .collect();
            if !keys.is_empty() {
                for j in b.by_dedup_keys(&keys).await? {
                    if let Some(k) = j.options.deduplication_key.clone() {
                        by_key.insert(k, j);
                    }
                }
            }
            todo = missing
                .into_iter()
                .filter(|r| {
                    !r.deduplication_key
                        .as_ref()
                        .is_some_and(|k| by_key.contains_key(k))
                })
                .collect();
            if todo.is_empty() {
                break;
            }
        }
        if !todo.is_empty() {
            return Err(QueueError::Backend(format!(
                "{} job(s) were neither queued nor deduplicated (their deduplication keys kept changing hands); nothing else failed",
                todo.len()
            )));
        }
        self.shared.wake();
        rows.iter()
            .map(|r| {
                by_id
                    .remove(&r.id)
                    .or_else(|| {
                        r.deduplication_key
                            .as_ref()
                            .and_then(|k| by_key.get(k).cloned())
                    })
                    .ok_or_else(|| QueueError::Backend("the database lost a queued job".into()))
            })
            .collect()
    }

    /// Errors of background work that raced `close` are expected: drop them.
    fn ignore_if_closed(&self, e: QueueError) -> Result<()> {
        if self.shared.is_closed() {
            Ok(())
        } else {
            Err(e)
        }
    }

    fn forget(&self, lease: Lease) {
        let mut held = lock(&self.held);
        if held.get(&lease.id).map(|h| h.delivery) == Some(lease.delivery) {
            held.remove(&lease.id);
        }
    }

    /// The events with their jobs as stored now, in order; events of jobs gone are dropped.
    async fn deliver(&self, records: Vec<EventRecord>) -> Result<Vec<Delivered>> {
        let mut ids: Vec<Uuid> = records
            .iter()
            .filter_map(|r| Uuid::try_parse(&r.id).ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let jobs: HashMap<String, Job> = self
            .backend
            .by_ids(&ids)
            .await?
            .into_iter()
            .map(|j| (j.id.clone(), j))
            .collect();
        Ok(records
            .into_iter()
            .filter_map(|record| {
                let job = jobs.get(&record.id)?.clone();
                Some(Delivered { record, job })
            })
            .collect())
    }

    /// Queue events for other processes (nothing when this provider does not publish).
    fn publish(&self, records: Vec<EventRecord>) {
        if let Some(tx) = &self.publish_tx {
            if !records.is_empty() {
                let _ = tx.send(records);
            }
        }
    }

    /// The events of settled attempts: `completed` for `acked`, `failed` (then `dead` when
    /// out of retries) for `failed`.
    fn publish_settled(&self, acked: &[Lease], failed: &[Lease]) {
        if self.publish_tx.is_none() {
            return;
        }
        let held = lock(&self.held);
        let mut out = Vec::with_capacity(acked.len() + failed.len());
        let info = |l: &Lease| {
            held.get(&l.id)
                .filter(|h| h.delivery == l.delivery)
                .copied()
        };
        for l in acked {
            let mut r = EventRecord::new(EventKind::Completed, l.id.hyphenated().to_string());
            if let Some(h) = info(l) {
                r.duration_ms = Some(h.since.elapsed().as_millis() as u64);
            }
            out.push(r);
        }
        for l in failed {
            let id = l.id.hyphenated().to_string();
            let h = info(l);
            let last = h.is_some_and(|h| h.last);
            let mut r = EventRecord::new(EventKind::Failed, id.clone());
            r.attempt = h.map(|h| h.attempt);
            r.will_retry = Some(!last);
            out.push(r);
            if last {
                out.push(EventRecord::new(EventKind::Dead, id));
            }
        }
        drop(held);
        self.publish(out);
    }

    async fn reap(&self) -> Result<u64> {
        let jobs = self.backend.reap().await?;
        let n = jobs.len() as u64;
        if n > 0 {
            tracing::warn!(
                jobs = n,
                "{n} job(s) whose worker stopped renewing its lease are visible again (or dead when out of retries)"
            );
            self.shared.wake();
            self.publish(
                jobs.iter()
                    .map(|j| EventRecord::new(EventKind::Stalled, j.id.clone()))
                    .collect(),
            );
            for j in jobs {
                self.shared.signals.send(Signal::Stalled(Box::new(j)));
            }
            self.backend.notify_others().await?;
        }
        Ok(n)
    }

    async fn purge(&self) -> Result<u64> {
        let mut total = 0;
        for (status, keep) in [
            (JobStatus::Completed, self.retention.completed),
            (JobStatus::Dead, self.retention.dead),
            (JobStatus::Cancelled, self.retention.cancelled),
        ] {
            loop {
                let n = self.backend.purge(status, keep, PURGE_BATCH).await?;
                total += n;
                if n < PURGE_BATCH as u64 || self.shared.is_closed() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(total)
    }

    /// [`Inner::purge`], then, when it deleted rows, [`Jobs::vacuum_if_unattended`].
    async fn purge_and_tidy(&self) -> Result<u64> {
        let n = self.purge().await?;
        if n > 0 {
            self.backend.vacuum_if_unattended().await?;
        }
        Ok(n)
    }

    /// Renew the held leases. One that no longer matches was settled meanwhile, reclaimed, or
    /// cancelled: a cancel whose notification was lost is told to the workers from here.
    async fn heartbeat(&self) -> Result<()> {
        let leases: Vec<Lease> = lock(&self.held)
            .iter()
            .map(|(&id, h)| Lease {
                id,
                delivery: h.delivery,
            })
            .collect();
        if leases.is_empty() {
            return Ok(());
        }
        let kept: std::collections::HashSet<Lease> = self
            .backend
            .extend(&leases, self.lease_ms)
            .await?
            .into_iter()
            .collect();
        let lost: Vec<Uuid> = {
            let held = lock(&self.held);
            leases
                .iter()
                .filter(|l| !kept.contains(l))
                // Still held: not settled here in between.
                .filter(|l| held.get(&l.id).map(|h| h.delivery) == Some(l.delivery))
                .map(|l| l.id)
                .collect()
        };
        if lost.is_empty() {
            return Ok(());
        }
        for job in self.backend.by_ids(&lost).await? {
            if job.status == JobStatus::Cancelled {
                self.shared.signals.send(Signal::Cancelled(job.id));
            }
        }
        Ok(())
    }
}

/// `"<uuid>:<delivery>"`.
fn parse_receipt(receipt: &str) -> Result<Lease> {
    let unknown = || QueueError::UnknownReceipt(receipt.to_owned());
    let (id, delivery) = receipt.rsplit_once(':').ok_or_else(unknown)?;
    Ok(Lease {
        id: Uuid::try_parse(id).map_err(|_| unknown())?,
        delivery: delivery.parse().map_err(|_| unknown())?,
    })
}

/// Heartbeat (a third of the lease), lease reaping and retention, until the provider goes.
async fn maintenance(inner: Weak<Inner>) {
    let Some(beat) = inner
        .upgrade()
        .map(|i| Duration::from_millis((i.lease_ms / 3).clamp(100, 10_000)))
    else {
        return;
    };
    let tick = beat.min(REAP_EVERY);
    let mut last_beat = Instant::now();
    let mut last_reap = Instant::now() - REAP_EVERY;
    let mut last_purge = Instant::now() - PURGE_EVERY;
    let mut purging: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        {
            let Some(i) = inner.upgrade() else { return };
            if i.shared.is_closed() {
                return;
            }
            let now = Instant::now();
            if now - last_beat >= beat {
                last_beat = now;
                if let Err(e) = i.heartbeat().await.or_else(|e| i.ignore_if_closed(e)) {
                    tracing::warn!("queue heartbeat failed; retrying at the next tick: {e}");
                }
            }
            if now - last_reap >= REAP_EVERY {
                last_reap = now;
                if let Err(e) = i.reap().await.map(drop).or_else(|e| i.ignore_if_closed(e)) {
                    tracing::warn!("reclaiming expired leases failed: {e}");
                }
            }
            // In a task of its own, so that a long purge never holds up a heartbeat.
            if now - last_purge >= PURGE_EVERY && purging.as_ref().is_none_or(|t| t.is_finished()) {
                last_purge = now;
                let i = i.clone();
                purging = Some(tokio::spawn(async move {
                    let r = i.purge_and_tidy().await.map(drop);
                    if let Err(e) = r.or_else(|e| i.ignore_if_closed(e)) {
                        tracing::warn!("purging finished jobs failed: {e}");
                    }
                }));
            }
        }
        tokio::time::sleep(tick).await;
    }
}

/// Inserts enqueues in batches, [`Jobs::enqueue_concurrency`] at once; when a merged batch fails,
/// each request is tried alone, so one caller's bad job fails only that caller.
async fn enqueue_loop(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<EnqueueReq>) {
    let Some(width) = inner
        .upgrade()
        .map(|i| i.backend.enqueue_concurrency().max(1))
    else {
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(width));
    let mut running = tokio::task::JoinSet::new();
    while let Some(first) = rx.recv().await {
        // Wait for a free slot first: what arrives meanwhile joins this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let mut n = first.rows.len();
        let mut batch = vec![first];
        while n < ENQUEUE_BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.rows.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let Some(i) = inner.upgrade() else {
            for r in batch {
                let _ = r.done.send(Err(QueueError::Closed));
            }
            break;
        };
        running.spawn(async move {
            insert_batch(&i, batch).await;
            drop(slot);
        });
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

/// One batch of enqueues in one statement; when it fails, each request alone.
async fn insert_batch(i: &Inner, batch: Vec<EnqueueReq>) {
    if batch.len() == 1 {
        for r in batch {
            let out = i.insert_all(&r.rows.iter().collect::<Vec<_>>()).await;
            let _ = r.done.send(out);
        }
        return;
    }
    let rows: Vec<&Insert> = batch.iter().flat_map(|r| r.rows.iter()).collect();
    let merged = i.insert_all(&rows).await;
    drop(rows);
    match merged {
        Ok(jobs) => {
            let mut jobs = jobs.into_iter();
            for r in batch {
                let mine: Vec<Job> = jobs.by_ref().take(r.rows.len()).collect();
                let _ = r.done.send(Ok(mine));
            }
        }
        Err(_) => {
            for r in batch {
                let out = i.insert_all(&r.rows.iter().collect::<Vec<_>>()).await;
                let _ = r.done.send(out);
            }
        }
    }
}

/// Publishes queued events: whatever was queued while one NOTIFY statement ran goes in the
/// next, in payloads of at most [`events::MAX_NOTIFY_BYTES`].
async fn publish_loop(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Vec<EventRecord>>) {
    while let Some(mut records) = rx.recv().await {
        // Gather for a moment: a NOTIFY takes PostgreSQL's notification-queue lock at commit,
        // so under load fewer, fuller payloads cost the workers less.
        tokio::time::sleep(PUBLISH_WINDOW).await;
        while let Ok(more) = rx.try_recv() {
            records.extend(more);
        }
        let Some(i) = inner.upgrade() else { return };
        let payloads = events::encode(&i.backend.schema, &records);
        if let Err(e) = i.backend.publish(&payloads).await {
            if !i.shared.is_closed() {
                tracing::warn!(
                    "queue events: publishing {} event(s) failed: {e}",
                    records.len()
                );
            }
        }
    }
}

/// Settles attempts in batches: whatever is queued while one statement runs goes in the next.
async fn settle_loop(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<SettleReq>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < SETTLE_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let Some(i) = inner.upgrade() else {
            for r in batch {
                let _ = r.done.send(Err(QueueError::Closed));
            }
            return;
        };
        let (acks, fails): (Vec<SettleReq>, Vec<SettleReq>) = batch
            .into_iter()
            .partition(|r| matches!(r.op, Settle::Ack(..)));
        if !acks.is_empty() {
            let rows: Vec<(Lease, Option<&RawValue>)> = acks
                .iter()
                .filter_map(|r| match &r.op {
                    Settle::Ack(l, res) => Some((*l, res.as_deref())),
                    Settle::Fail(..) => None,
                })
                .collect();
            let r = i.backend.complete(&rows).await;
            if let Ok(done) = &r {
                // Before the replies: each caller forgets its lease once answered.
                i.publish_settled(done, &[]);
            }
            reply(acks, r, |r| match &r.op {
                Settle::Ack(l, _) | Settle::Fail(l, _) => *l,
            });
        }
        if !fails.is_empty() {
            let rows: Vec<(Lease, &str)> = fails
                .iter()
                .filter_map(|r| match &r.op {
                    Settle::Fail(l, e) => Some((*l, e.as_str())),
                    Settle::Ack(..) => None,
                })
                .collect();
            let r = i.backend.fail(&rows).await;
            if let Ok(done) = &r {
                i.publish_settled(&[], done);
            }
            reply(fails, r, |r| match &r.op {
                Settle::Ack(l, _) | Settle::Fail(l, _) => *l,
            });
            // A retry may be due before an idle receiver's next look.
            i.shared.wake();
        }
    }
}

fn reply(reqs: Vec<SettleReq>, r: Result<Vec<Lease>>, lease: impl Fn(&SettleReq) -> Lease) {
    match r {
        Ok(matched) => {
            let matched: std::collections::HashSet<Lease> = matched.into_iter().collect();
            for req in reqs {
                let ok = matched.contains(&lease(&req));
                let _ = req.done.send(Ok(ok));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for req in reqs {
                let _ = req.done.send(Err(QueueError::Backend(msg.clone())));
            }
        }
    }
}

/// The rows to insert for `jobs`, ids made here.
fn inserts(jobs: Vec<NewJob>) -> Result<Vec<Insert>> {
    jobs.into_iter()
        .map(|j| {
            let o = j.options.job_options();
            let options = serde_json::to_string(&o).map_err(|e| {
                QueueError::invalid(format!("job options are not serialisable: {e}"))
            })?;
            Ok(Insert {
                id: Uuid::now_v7(),
                job_type: j.job_type,
                payload: j.payload,
                options,
                job_options: o.clone(),
                priority: i64::from(o.priority),
                max_retries: i64::from(o.max_retries),
                delay_ms: j
                    .options
                    .delay
                    .filter(|&d| d > 0)
                    .map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
                scheduled_for: j.options.scheduled_for,
                deduplication_key: o.deduplication_key,
            })
        })
        .collect()
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
        let deadline = Instant::now() + wait;
        let b = &self.inner.backend;
        if !self.inner.receiving.swap(true, Ordering::AcqRel) {
            // Only a process that receives listens: in one that only enqueues, every job's
            // NOTIFY woke a database backend and this process for nothing. (The listener
            // wakes the receivers once it listens, for what was queued before.)
            b.listen(Arc::downgrade(&self.inner.shared));
            // A worker's first jobs claim, settle, renew and publish at once: without this their
            // handlers waited for those connections to be made (the first 50 jobs at 500 jobs/s
            // started 20–100 ms late, the whole p99 of the latency benchmark).
            b.work.warm(WORK_CONNECTIONS).await;
        }
        loop {
            let woken = self.inner.shared.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if max == 0 || self.inner.shared.is_closed() {
                return Ok(Vec::new());
            }
            // Nothing has changed here since a claim came back short: on PostgreSQL, where every
            // change that makes a job claimable wakes (here or by NOTIFY), no claim until then,
            // which at 500 jobs/s was every other one a worker made. Other processes on an
            // SQLite file cannot wake this one: there a look is a claim, and an idle one (the
            // fallback poll) skips the due-time lookup, which only a wake here can change
            // sooner than the next poll.
            let wakes = self.inner.shared.wakes.load(Ordering::Acquire);
            let quiet = (*lock(&self.inner.quiet)).filter(|q| q.wakes == wakes);
            let hears = b.hears_other_processes();
            let now = Instant::now();
            let known = match quiet {
                Some(Quiet { until: Some(u), .. }) if now < u => Some(u),
                Some(Quiet { until: None, .. }) if hears => None,
                _ => {
                    let claimed = self.claim_received(max).await?;
                    if !claimed.is_empty() {
                        if claimed.len() < max {
                            *lock(&self.inner.quiet) = Some(Quiet { wakes, until: None });
                        }
                        return Ok(claimed);
                    }
                    if self.inner.shared.is_closed() {
                        return Ok(Vec::new());
                    }
                    match quiet {
                        Some(Quiet { until: Some(_), .. }) if !hears => {
                            let until = Instant::now() + b.fallback_poll();
                            *lock(&self.inner.quiet) = Some(Quiet {
                                wakes,
                                until: Some(until),
                            });
                            Some(until)
                        }
                        _ => None,
                    }
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let until = match known {
                Some(u) => u,
                None => {
                    let mut until = now + b.fallback_poll();
                    let next = match b.next_due_ms().await {
                        Err(_) if self.inner.shared.is_closed() => return Ok(Vec::new()),
                        r => r?,
                    };
                    if let Some(ms) = next {
                        // Due rows another claimer holds are skipped: look again soon, not at once.
                        until = until.min(now + Duration::from_millis(ms.max(10) as u64));
                    }
                    *lock(&self.inner.quiet) = Some(Quiet {
                        wakes,
                        until: Some(until),
                    });
                    until
                }
            };
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep_until(until.min(deadline)) => {}
            }
        }
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
        let released = self.inner.backend.release(lease).await;
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
        if self.inner.backend.set_progress(lease, percent).await? {
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

    async fn get_job(&self, id: &str) -> Result<Option<Job>> {
        match Uuid::try_parse(id) {
            Ok(id) => self.inner.backend.get(id).await,
            Err(_) => Ok(None),
        }
    }

    async fn stats(&self) -> Result<QueueStats> {
        self.inner.backend.stats().await
    }

    async fn list_jobs(&self, filter: JobFilter) -> Result<JobPage> {
        let limit = filter.limit()?;
        let after = match filter.position()? {
            None => None,
            Some(c) => Some((
                c.created_at,
                Uuid::try_parse(&c.id).map_err(|_| {
                    QueueError::invalid(format!(
                        "cursor must be a nextCursor returned by listJobs, got {:?}",
                        filter.cursor.as_deref().unwrap_or_default()
                    ))
                })?,
            )),
        };
        let want = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let mut jobs = self
            .inner
            .backend
            .list(filter.status, filter.job_type.as_deref(), after, want)
            .await?;
        let more = jobs.len() > limit;
        jobs.truncate(limit);
        let next_cursor = if more {
            jobs.last().map(|j| Cursor::after(j).encode())
        } else {
            None
        };
        Ok(JobPage { jobs, next_cursor })
    }

    async fn retry_job(&self, id: &str) -> Result<bool> {
        let Ok(id) = Uuid::try_parse(id) else {
            return Ok(false);
        };
        let retried = self.inner.backend.retry(id).await?;
        if retried {
            self.inner.shared.wake();
            self.inner.backend.notify_others().await?;
        }
        Ok(retried)
    }

    async fn cancel_job(&self, id: &str) -> Result<bool> {
        let Ok(uuid) = Uuid::try_parse(id) else {
            return Ok(false);
        };
        if !self.inner.backend.cancel(uuid).await? {
            return Ok(false);
        }
        // A worker running it here aborts at once; one in another process (PostgreSQL) when
        // the notification arrives, or at its next heartbeat if it is lost.
        let id = uuid.hyphenated().to_string();
        self.inner
            .shared
            .signals
            .send(Signal::Cancelled(id.clone()));
        self.inner.backend.notify_cancel(&id).await?;
        Ok(true)
    }

    async fn pause(&self, job_type: Option<&str>) -> Result<()> {
        self.inner
            .backend
            .set_paused(job_type.unwrap_or(""), true)
            .await
    }

    async fn resume(&self, job_type: Option<&str>) -> Result<()> {
        match job_type {
            Some(t) => self.inner.backend.set_paused(t, false).await?,
            None => self.inner.backend.resume_all().await?,
        }
        self.inner.shared.wake();
        self.inner.backend.notify_others().await
    }

    async fn paused(&self) -> Result<Vec<Option<String>>> {
        let keys = self.inner.backend.paused().await?;
        Ok(keys
            .into_iter()
            .map(|k| (!k.is_empty()).then_some(k))
            .collect())
    }

    fn signals(&self) -> Option<&Signals> {
        Some(&self.inner.shared.signals)
    }

    async fn subscribe_events(&self) -> Result<mpsc::UnboundedReceiver<Vec<Delivered>>> {
        self.check_open()?;
        let mut raw = self
            .inner
            .backend
            .listen_events(Arc::downgrade(&self.inner.shared))
            .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some(first) = raw.recv().await {
                let Some(i) = inner.upgrade() else { return };
                // Whatever else has arrived goes in the same read.
                let mut records = Vec::new();
                let mut next = Some(first);
                while let Some(p) = next {
                    if let Some(r) = events::decode(&i.backend.schema, &p) {
                        records.extend(r);
                    }
                    next = raw.try_recv().ok();
                }
                if records.is_empty() {
                    continue;
                }
                let delivered = match i.deliver(records).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!("queue events: reading the jobs of a notification failed; its events are dropped: {e}");
                        continue;
                    }
                };
                if !delivered.is_empty() && tx.send(delivered).is_err() {
                    return;
                }
            }
        });
        Ok(rx)
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
        self.inner.backend.close().await;
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
