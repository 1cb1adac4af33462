//! The scheduler: one-time and recurring jobs kept in a database and handed to the queue
//! provider when due, exactly once across any number of scheduler instances.
//!
//! How a row is claimed (so a crash cannot lose it):
//! - `ScheduledJob`: a due `scheduled` row becomes `enqueuing` with `updatedAt = claim time`
//!   (one atomic `UPDATE`), is enqueued, then becomes `enqueued`. An `enqueuing` row whose
//!   claim is older than the lease (default 5 minutes) is claimed again, so a scheduler that
//!   died between claim and enqueue delays the job by the lease but never loses it.
//!   `enqueuing` is internal: callers see such a row as `scheduled`.
//! - `RecurringJob`: a due row's `nextRunAt` moves to `now + lease` (the claim), the run is
//!   enqueued, then `nextRunAt` moves to the next future occurrence. Missed occurrences give
//!   one catch-up run, not a burst.
//!
//! Claims and leases are timed by the database's clock, not this host's (see [`crate::store`]).
//!
//! If enqueueing fails the row goes back to `scheduled` (or its occurrence back to due) with
//! the error stored, and is retried at the next poll. A row that can never be enqueued (a
//! payload that is not JSON, a job the provider refuses, a schedule or zone that does not
//! parse, a column that cannot be read) gets its `error`/`lastError` and is set aside
//! (`cancelled`, or no `nextRunAt`); the poll goes on with the other rows. If the database
//! fails after the provider took the job, the "enqueued" write is kept in memory and retried
//! before the next claim, so the job is not enqueued twice while this process lives.

use crate::config::SchedulerConfig;
use crate::error::{QueueError, Result};
use crate::job::{now_ms, EnqueueOptions, Job, JobStatus, Millis, NewJob, MAX_TIMER_MS};
use crate::lock;
use crate::provider::{DelaySink, SharedProvider};
use crate::schedule::Schedule;
use crate::store::{
    self, Claim, RecurringClaim, RecurringDone, RecurringJob, ScheduledJob, SharedStore,
    Unreadable, STATUS_CANCELLED, STATUS_ENQUEUING, STATUS_SCHEDULED,
};
use async_trait::async_trait;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, UnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long a claim holds a row before another scheduler may take it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);
/// Rows claimed per database round trip; a poll drains the whole backlog in such batches.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// Knobs beyond [`SchedulerConfig`] (tests shorten the lease, or skew the host's clock).
#[derive(Clone, Copy, Debug)]
pub struct SchedulerTuning {
    pub lease: Duration,
    pub batch_size: usize,
    /// This host's clock: the `createdAt`/`updatedAt` of the rows this scheduler creates, as
    /// Prisma's client sets them. Claims, leases and next runs never read it.
    pub clock: fn() -> Millis,
}

impl Default for SchedulerTuning {
    fn default() -> Self {
        SchedulerTuning {
            lease: DEFAULT_LEASE,
            batch_size: DEFAULT_BATCH_SIZE,
            clock: now_ms,
        }
    }
}

/// `registerRecurring`'s input.
#[derive(Clone, Debug)]
pub struct RecurringInput {
    pub name: String,
    pub job_type: String,
    pub payload: Box<RawValue>,
    /// Cron expression or `every N unit`.
    pub schedule: String,
    /// IANA zone; `UTC` when `None`.
    pub timezone: Option<String>,
    pub options: EnqueueOptions,
}

/// What one poll enqueued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollOutcome {
    pub scheduled: usize,
    pub recurring: usize,
    /// Rows whose enqueue failed (kept for the next poll).
    pub failed: usize,
}

/// The scheduler. Cheap to clone; clones share one instance.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    provider: SharedProvider,
    store: SharedStore,
    config: SchedulerConfig,
    tuning: SchedulerTuning,
    /// Writes that must follow enqueues already made, kept while the database is failing.
    pending: Mutex<Vec<Pending>>,
    /// One poll at a time per instance.
    poll_lock: tokio::sync::Mutex<()>,
    /// Set once the tables are known to exist (`autoMigrate` runs on first use).
    migrated: tokio::sync::OnceCell<()>,
    running: Mutex<Option<Running>>,
    /// When a poll last purged finished rows (`scheduler.retention`).
    purged_at: Mutex<Option<std::time::Instant>>,
}

/// How often a poll purges finished `ScheduledJob` rows, at most.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Rows deleted per purge statement.
const PURGE_BATCH: i64 = 1000;

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

enum Pending {
    Enqueued {
        ids: Vec<String>,
        claimed_at: Millis,
    },
    Recurring {
        id: String,
        lease_until: Millis,
        next_run_at: Option<Millis>,
        /// Set only when the run was enqueued.
        last_run_at: Option<Millis>,
        last_error: Option<String>,
    },
}

/// The options column as the old scheduler wrote it (`JSON.stringify(options || {})`),
/// read leniently: unknown or malformed fields are ignored and defaults apply.
pub fn parse_stored_options(text: &str) -> EnqueueOptions {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let (traceparent, tracestate) = crate::job::trace_context(
        v.get("traceparent").and_then(Value::as_str),
        v.get("tracestate").and_then(Value::as_str),
    );
    let num = |k: &str| {
        v.get(k).and_then(|x| {
            x.as_u64().or_else(|| {
                x.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f.round() as u64)
            })
        })
    };
    EnqueueOptions {
        max_retries: num("maxRetries").map(|n| n.min(u32::MAX as u64) as u32),
        timeout: num("timeout").map(|n| n.min(MAX_TIMER_MS)),
        priority: num("priority").map(|n| n.min(u32::MAX as u64) as u32),
        deduplication_key: v
            .get("deduplicationKey")
            .and_then(Value::as_str)
            .map(str::to_owned),
        traceparent,
        tracestate,
        ..Default::default()
    }
}

/// The options column for new rows: the job options the caller gave, as JSON.
pub fn format_stored_options(o: &EnqueueOptions) -> String {
    let mut m = Map::new();
    if let Some(n) = o.max_retries {
        m.insert("maxRetries".into(), n.into());
    }
    if let Some(n) = o.timeout {
        m.insert("timeout".into(), n.into());
    }
    if let Some(n) = o.priority {
        m.insert("priority".into(), n.into());
    }
    if let Some(k) = &o.deduplication_key {
        m.insert("deduplicationKey".into(), k.clone().into());
    }
    // The trace context of the call that scheduled the job, so its run continues that trace.
    let (tp, ts) = crate::job::trace_context(o.traceparent.as_deref(), o.tracestate.as_deref());
    if let Some(tp) = tp {
        m.insert("traceparent".into(), tp.into());
    }
    if let Some(ts) = ts {
        m.insert("tracestate".into(), ts.into());
    }
    Value::Object(m).to_string()
}

fn new_job(job_type: &str, payload: &str, options: &str) -> Result<NewJob> {
    let payload = RawValue::from_string(payload.to_owned())
        .map_err(|e| QueueError::invalid(format!("stored payload is not JSON: {e}")))?;
    Ok(NewJob::new(
        job_type,
        payload,
        parse_stored_options(options),
    ))
}

/// Run schedule parsing or arithmetic for `schedule`, turning a panic in it into an error
/// naming the schedule (logged at error level): one bad schedule never ends a poll.
fn guarded<T>(schedule: &str, f: impl FnOnce() -> Result<T> + UnwindSafe) -> Result<T> {
    catch_unwind(f).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        tracing::error!(schedule, panic = %why, "the schedule parser panicked");
        Err(QueueError::invalid(format!(
            "invalid schedule {schedule:?}: the parser failed ({why})"
        )))
    })
}

/// The first run after `now` of `schedule` in `timezone`; `None` when it never matches.
fn next_after(schedule: &str, timezone: &str, now: Millis) -> Result<Option<Millis>> {
    guarded(schedule, || {
        Ok(Schedule::parse(schedule, timezone)?.next_after(now))
    })
}

/// The run after the claimed `occurrence`, skipping what was missed up to `now`.
fn next_run(
    schedule: &str,
    timezone: &str,
    occurrence: Millis,
    now: Millis,
) -> Result<Option<Millis>> {
    guarded(schedule, || {
        Ok(Schedule::parse(schedule, timezone)?.next_run(occurrence, now))
    })
}

/// Whether an enqueue error means the job as stored can never be enqueued (the provider
/// refused its type, payload or options), rather than that the provider failed this time.
fn permanent(e: &QueueError) -> bool {
    matches!(e, QueueError::Invalid(_))
}

/// The rule every provider applies to a job type ([`crate::job::job_type_of`]).
fn check_type(job_type: &str) -> Result<()> {
    crate::job::check_name("type", job_type)
}

/// The same rule for a recurring job's name.
fn check_job_name(name: &str) -> Result<()> {
    crate::job::check_name("name", name)
}

impl Scheduler {
    pub fn new(provider: SharedProvider, store: SharedStore, config: SchedulerConfig) -> Scheduler {
        Scheduler::with_tuning(provider, store, config, SchedulerTuning::default())
    }

    pub fn with_tuning(
        provider: SharedProvider,
        store: SharedStore,
        config: SchedulerConfig,
        tuning: SchedulerTuning,
    ) -> Scheduler {
        let tuning = SchedulerTuning {
            batch_size: tuning.batch_size.max(1),
            ..tuning
        };
        Scheduler {
            inner: Arc::new(Inner {
                provider,
                store,
                config,
                tuning,
                pending: Mutex::new(Vec::new()),
                poll_lock: tokio::sync::Mutex::new(()),
                migrated: tokio::sync::OnceCell::new(),
                running: Mutex::new(None),
                purged_at: Mutex::new(None),
            }),
        }
    }

    /// A scheduler on the database `config` names (see [`store::resolve_url`]). Call inside
    /// a tokio runtime; no connection is made until first use.
    pub fn open(provider: SharedProvider, config: SchedulerConfig) -> Result<Scheduler> {
        let store = store::open_for(&config)?;
        Ok(Scheduler::new(provider, store, config))
    }

    pub fn store(&self) -> &SharedStore {
        &self.inner.store
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.inner.config
    }

    /// Create the scheduler's tables if they are missing.
    pub async fn migrate(&self) -> Result<()> {
        self.inner.store.migrate().await?;
        let _ = self.inner.migrated.set(());
        Ok(())
    }

    /// With `autoMigrate`, make the tables before the first use of the database.
    async fn ready(&self) -> Result<()> {
        if self.inner.config.auto_migrate && !self.inner.migrated.initialized() {
            self.inner
                .migrated
                .get_or_try_init(|| self.inner.store.migrate())
                .await?;
        }
        Ok(())
    }

    /// Whether the poll task is alive: false before `start`, after `stop`, and if the task
    /// ended for any other reason.
    pub fn is_running(&self) -> bool {
        lock(&self.inner.running)
            .as_ref()
            .is_some_and(|r| !r.task.is_finished())
    }

    /// Make the tables (when `autoMigrate`), take over long delays from the provider, and poll at
    /// once and then every `pollInterval` on a background task. A second call does nothing.
    pub async fn start(&self) -> Result<()> {
        if self.is_running() {
            tracing::warn!("scheduler already started");
            return Ok(());
        }
        self.ready().await?;
        let mut running = lock(&self.inner.running);
        if running.as_ref().is_some_and(|r| !r.task.is_finished()) {
            return Ok(());
        }
        self.inner
            .provider
            .set_delay_sink(Some(Arc::new(self.clone())));
        let (stop, mut stopped) = watch::channel(false);
        let me = self.clone();
        let interval = Duration::from_millis(self.inner.config.poll_interval.max(1));
        let task = tokio::spawn(async move {
            loop {
                // Each poll on a task of its own: even a panic in it ends only that poll.
                let poll = tokio::spawn({
                    let me = me.clone();
                    async move { me.poll_once().await }
                });
                match poll.await {
                    Ok(Ok(o)) if o != PollOutcome::default() => tracing::debug!(
                        scheduled = o.scheduled,
                        recurring = o.recurring,
                        failed = o.failed,
                        "scheduler poll"
                    ),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "scheduler poll failed; retrying at the next poll")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "scheduler poll panicked; polling goes on")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stopped.changed() => break,
                }
            }
        });
        *running = Some(Running { stop, task });
        tracing::info!(
            backend = self.inner.store.backend(),
            poll_interval_ms = interval.as_millis() as u64,
            "scheduler started"
        );
        Ok(())
    }

    /// Stop polling (a poll in progress finishes first) and hand long delays back.
    pub async fn stop(&self) {
        let Some(running) = lock(&self.inner.running).take() else {
            return;
        };
        self.inner.provider.set_delay_sink(None);
        let _ = running.stop.send(true);
        if let Err(e) = running.task.await {
            tracing::error!(error = %e, "scheduler task ended abnormally");
        }
        tracing::info!("scheduler stopped");
    }

    /// Store a one-time job to be enqueued at `at`.
    pub async fn schedule(
        &self,
        job_type: &str,
        payload: &RawValue,
        at: Millis,
        options: &EnqueueOptions,
    ) -> Result<ScheduledJob> {
        check_type(job_type)?;
        self.ready().await?;
        let now = (self.inner.tuning.clock)();
        let job = ScheduledJob {
            id: Uuid::new_v4().to_string(),
            job_type: job_type.to_owned(),
            payload: payload.get().to_owned(),
            options: format_stored_options(options),
            scheduled_for: at,
            status: STATUS_SCHEDULED.to_owned(),
            error: None,
            created_at: now,
            updated_at: now,
        };
        self.inner.store.insert_scheduled(&job).await?;
        Ok(job)
    }

    /// A one-time job by id (a row being enqueued shows as `scheduled`).
    pub async fn get_scheduled_job(&self, id: &str) -> Result<Option<ScheduledJob>> {
        self.ready().await?;
        let mut row = self.inner.store.get_scheduled(id).await?;
        if let Some(r) = row.as_mut().filter(|r| r.status == STATUS_ENQUEUING) {
            r.status = STATUS_SCHEDULED.to_owned();
        }
        Ok(row)
    }

    /// Cancel a one-time job; true only if it was still `scheduled`.
    pub async fn cancel_scheduled_job(&self, id: &str) -> Result<bool> {
        self.ready().await?;
        self.inner.store.cancel_scheduled(id).await
    }

    /// Insert or replace the recurring job named `input.name`: validates the schedule and
    /// time zone, enables it, clears `lastError` and computes `nextRunAt`.
    pub async fn register_recurring(&self, input: RecurringInput) -> Result<RecurringJob> {
        check_job_name(&input.name)?;
        check_type(&input.job_type)?;
        let timezone = input
            .timezone
            .unwrap_or_else(|| crate::schedule::DEFAULT_TIME_ZONE.to_owned());
        // Refuse a bad schedule before touching the database.
        guarded(&input.schedule, || {
            Schedule::parse(&input.schedule, &timezone)
        })?;
        self.ready().await?;
        let next = next_after(&input.schedule, &timezone, self.inner.store.now().await?)?
            .ok_or_else(|| {
                QueueError::invalid(format!(
                    "invalid schedule {:?}: it never matches a date",
                    input.schedule
                ))
            })?;
        let now = (self.inner.tuning.clock)();
        let row = RecurringJob {
            id: Uuid::new_v4().to_string(),
            name: input.name,
            job_type: input.job_type,
            payload: input.payload.get().to_owned(),
            options: format_stored_options(&input.options),
            schedule: input.schedule,
            timezone,
            enabled: true,
            next_run_at: Some(next),
            last_run_at: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        };
        self.inner.store.upsert_recurring(&row).await
    }

    /// Enable a recurring job, computing `nextRunAt` afresh; false when no job has the name.
    pub async fn enable_recurring(&self, name: &str) -> Result<bool> {
        check_job_name(name)?;
        self.ready().await?;
        let Some(row) = self.inner.store.get_recurring(name).await? else {
            return Ok(false);
        };
        let now = self.inner.store.now().await?;
        let next = next_after(&row.schedule, &row.timezone, now)?;
        self.inner.store.enable_recurring(name, next).await
    }

    pub async fn disable_recurring(&self, name: &str) -> Result<bool> {
        check_job_name(name)?;
        self.ready().await?;
        self.inner.store.disable_recurring(name).await
    }

    pub async fn delete_recurring(&self, name: &str) -> Result<bool> {
        check_job_name(name)?;
        self.ready().await?;
        self.inner.store.delete_recurring(name).await
    }

    /// Every recurring job, sorted by name.
    pub async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        self.ready().await?;
        self.inner.store.list_recurring().await
    }

    /// Enqueue everything due now: all due one-time jobs and recurring occurrences, in
    /// batches, until none is left (or a whole batch fails to enqueue).
    pub async fn poll_once(&self) -> Result<PollOutcome> {
        self.ready().await?;
        let _one = self.inner.poll_lock.lock().await;
        self.flush_pending().await?;
        let mut out = PollOutcome::default();
        let batch = self.inner.tuning.batch_size;
        let lease = self.inner.tuning.lease;
        let (scheduled_due, recurring_due) = self.inner.store.has_due(lease).await?;
        if scheduled_due {
            let (ok, failed) = self.drain_scheduled(batch, lease).await?;
            out.scheduled += ok;
            out.failed += failed;
        }
        if recurring_due {
            let (ok, failed) = self.drain_recurring(batch, lease).await?;
            out.recurring += ok;
            out.failed += failed;
        }
        let due = lock(&self.inner.purged_at).is_none_or(|at| at.elapsed() >= PURGE_EVERY);
        if due {
            *lock(&self.inner.purged_at) = Some(std::time::Instant::now());
            self.purge_finished().await?;
        }
        Ok(out)
    }

    /// Delete the enqueued and cancelled one-time rows older than `scheduler.retention` (polls
    /// do this once a minute); returns rows deleted.
    pub async fn purge_finished(&self) -> Result<u64> {
        self.ready().await?;
        let mut total = 0;
        loop {
            let n = self
                .inner
                .store
                .purge_finished(self.inner.config.retention, PURGE_BATCH)
                .await?;
            total += n;
            if n < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// Claim and enqueue due one-time rows batch by batch until none is left or a whole
    /// batch fails; returns (enqueued, failed).
    async fn drain_scheduled(&self, batch: usize, lease: Duration) -> Result<(usize, usize)> {
        let (mut ok, mut failed) = (0, 0);
        loop {
            let claim = self
                .inner
                .store
                .claim_scheduled(lease, batch as i64)
                .await?;
            let claimed = claim.rows.len() + claim.unreadable.len();
            let (o, f) = self.enqueue_scheduled(claim).await?;
            ok += o;
            failed += f;
            if claimed < batch || o == 0 {
                return Ok((ok, failed));
            }
        }
    }

    /// The same for recurring occurrences.
    async fn drain_recurring(&self, batch: usize, lease: Duration) -> Result<(usize, usize)> {
        let (mut ok, mut failed) = (0, 0);
        loop {
            let claim = self
                .inner
                .store
                .claim_recurring(lease, batch as i64)
                .await?;
            let claimed = claim.rows.len() + claim.unreadable.len();
            let (o, f) = self.enqueue_recurring(claim).await?;
            ok += o;
            failed += f;
            if claimed < batch || o == 0 {
                return Ok((ok, failed));
            }
        }
    }

    /// Enqueue claimed one-time rows; returns (enqueued, failed). A row that can never be
    /// enqueued becomes `cancelled` with its error; one that failed otherwise goes back to
    /// `scheduled` with its error, for the next poll.
    async fn enqueue_scheduled(&self, claim: Claim<ScheduledJob>) -> Result<(usize, usize)> {
        let Claim { rows, unreadable } = claim;
        let jobs: Vec<Result<NewJob>> = rows
            .iter()
            .map(|r| new_job(&r.job_type, &r.payload, &r.options))
            .collect();
        let results = self.enqueue_all(jobs).await;
        let store = &self.inner.store;
        // Enqueued ids by claim token (one token per claim).
        let mut done: BTreeMap<Millis, Vec<String>> = BTreeMap::new();
        let mut failures: Vec<(String, Millis, &str, String)> = unreadable
            .into_iter()
            .map(|u: Unreadable| (u.id, u.token, STATUS_CANCELLED, u.error))
            .collect();
        for (row, res) in rows.into_iter().zip(results) {
            match res {
                Ok(()) => done.entry(row.updated_at).or_default().push(row.id),
                Err(e) => {
                    let status = if permanent(&e) {
                        STATUS_CANCELLED
                    } else {
                        STATUS_SCHEDULED
                    };
                    failures.push((row.id, row.updated_at, status, e.to_string()));
                }
            }
        }
        let ok = done.values().map(Vec::len).sum();
        // Record the enqueues first: they must not be repeated.
        let mut groups = done.into_iter();
        while let Some((claimed_at, ids)) = groups.next() {
            if let Err(e) = store.mark_enqueued(&ids, claimed_at).await {
                let mut pending = lock(&self.inner.pending);
                pending.push(Pending::Enqueued { ids, claimed_at });
                pending
                    .extend(groups.map(|(claimed_at, ids)| Pending::Enqueued { ids, claimed_at }));
                return Err(e);
            }
        }
        if let Some((id, _, status, error)) = failures.first() {
            tracing::warn!(failed = failures.len(), first_id = %id, first_status = %status, %error, "scheduled jobs could not be enqueued; cancelled when they never can be, else retried at the next poll");
        }
        // A failed release leaves the row claimed: it comes back when the lease ends.
        for (id, claimed_at, status, error) in &failures {
            store
                .release_scheduled(id, *claimed_at, status, error)
                .await?;
        }
        Ok((ok, failures.len()))
    }

    /// Enqueue claimed recurring occurrences; returns (enqueued, failed). Times come from the
    /// claim (the database's clock). A row whose schedule does not parse is not run: it gets
    /// `lastError` and no `nextRunAt` until it is registered again.
    async fn enqueue_recurring(&self, claim: Claim<RecurringClaim>) -> Result<(usize, usize)> {
        let Claim { rows, unreadable } = claim;
        let mut writes: Vec<Pending> = Vec::with_capacity(rows.len() + unreadable.len());
        let mut failed = unreadable.len();
        for u in unreadable {
            tracing::warn!(id = %u.id, error = %u.error, "recurring job cannot be read; it will not run until registered again");
            writes.push(Pending::Recurring {
                id: u.id,
                lease_until: u.token,
                next_run_at: None,
                last_run_at: None,
                last_error: Some(u.error),
            });
        }
        // The next run of each row, or why there is none.
        let mut runnable = Vec::with_capacity(rows.len());
        for c in rows {
            let occurrence = c.job.next_run_at.unwrap_or(c.claimed_at);
            match next_run(&c.job.schedule, &c.job.timezone, occurrence, c.claimed_at) {
                Ok(next) => runnable.push((c, occurrence, next)),
                Err(e) => {
                    failed += 1;
                    tracing::warn!(name = %c.job.name, error = %e, "recurring job has an invalid schedule; it will not run until registered again");
                    writes.push(Pending::Recurring {
                        id: c.job.id,
                        lease_until: c.lease_until,
                        next_run_at: None,
                        last_run_at: None,
                        last_error: Some(e.to_string()),
                    });
                }
            }
        }
        let jobs = runnable
            .iter()
            .map(|(c, _, _)| new_job(&c.job.job_type, &c.job.payload, &c.job.options))
            .collect();
        let results = self.enqueue_all(jobs).await;
        let mut ok = 0;
        for ((c, occurrence, next), res) in runnable.into_iter().zip(results) {
            let (next_run_at, last_run_at, last_error) = match res {
                Ok(()) => {
                    ok += 1;
                    (next, Some(c.claimed_at), None)
                }
                Err(e) => {
                    failed += 1;
                    if permanent(&e) {
                        tracing::warn!(name = %c.job.name, error = %e, "recurring job can never be enqueued as stored; skipping this run");
                        (next, None, Some(e.to_string()))
                    } else {
                        tracing::warn!(name = %c.job.name, error = %e, "recurring job could not be enqueued; retrying at the next poll");
                        // Due again at once; lastRunAt kept.
                        (Some(occurrence), None, Some(e.to_string()))
                    }
                }
            };
            writes.push(Pending::Recurring {
                id: c.job.id,
                lease_until: c.lease_until,
                next_run_at,
                last_run_at,
                last_error,
            });
        }
        self.write_pending(writes).await?;
        Ok((ok, failed))
    }

    /// Enqueue many jobs: in one provider call when possible, else one by one so a single
    /// bad job does not hold back the rest. A result per input, in order.
    async fn enqueue_all(&self, jobs: Vec<Result<NewJob>>) -> Vec<Result<()>> {
        let provider = &self.inner.provider;
        if jobs.is_empty() {
            return Vec::new();
        }
        if jobs.iter().all(|j| j.is_ok()) {
            let batch: Vec<NewJob> = jobs
                .iter()
                .filter_map(|j| j.as_ref().ok().cloned())
                .collect();
            let n = batch.len();
            match provider.enqueue_bulk(batch).await {
                Ok(_) => return (0..n).map(|_| Ok(())).collect(),
                // Validation failed before anything was queued: find the culprit(s) below.
                Err(QueueError::Invalid(_)) => {}
                Err(e) => {
                    let msg = e.to_string();
                    return (0..n)
                        .map(|_| Err(QueueError::Backend(msg.clone())))
                        .collect();
                }
            }
        }
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            out.push(match job {
                Ok(j) => provider.enqueue(j).await.map(|_| ()),
                Err(e) => Err(e),
            });
        }
        out
    }

    /// Write recurring results; on a database error keep the unwritten ones for later.
    async fn write_pending(&self, writes: Vec<Pending>) -> Result<()> {
        let mut iter = writes.into_iter();
        while let Some(w) = iter.next() {
            if let Err(e) = self.write_one(&w).await {
                let mut pending = lock(&self.inner.pending);
                pending.push(w);
                pending.extend(iter);
                return Err(e);
            }
        }
        Ok(())
    }

    async fn write_one(&self, w: &Pending) -> Result<()> {
        let store = &self.inner.store;
        match w {
            Pending::Enqueued { ids, claimed_at } => {
                store.mark_enqueued(ids, *claimed_at).await?;
            }
            Pending::Recurring {
                id,
                lease_until,
                next_run_at,
                last_run_at,
                last_error,
            } => {
                let done = RecurringDone {
                    next_run_at: *next_run_at,
                    last_run_at: *last_run_at,
                    last_error: last_error.as_deref(),
                };
                if !store.finish_recurring(id, *lease_until, done).await? {
                    tracing::debug!(id = %id, "recurring job changed while it was being enqueued; keeping the change");
                }
            }
        }
        Ok(())
    }

    /// Retry writes left over from a poll the database failed.
    async fn flush_pending(&self) -> Result<()> {
        let writes = std::mem::take(&mut *lock(&self.inner.pending));
        if writes.is_empty() {
            return Ok(());
        }
        tracing::info!(
            count = writes.len(),
            "writing scheduler results left over from a database error"
        );
        self.write_pending(writes).await
    }
}

#[async_trait]
impl DelaySink for Scheduler {
    async fn schedule_at(&self, job: NewJob, at: Millis) -> Result<Job> {
        let row = self
            .schedule(&job.job_type, &job.payload, at, &job.options)
            .await?;
        Ok(Job {
            id: row.id,
            job_type: job.job_type,
            payload: job.payload,
            options: job.options.job_options(),
            status: JobStatus::Scheduled,
            attempts: 0,
            created_at: row.created_at,
            scheduled_for: Some(at),
            started_at: None,
            completed_at: None,
            last_error: None,
            progress: None,
            result: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_options_parse_leniently() {
        let o = parse_stored_options(
            r#"{"maxRetries":5,"timeout":30000.0,"priority":"high","delay":99}"#,
        );
        assert_eq!(o.max_retries, Some(5));
        assert_eq!(o.timeout, Some(30_000));
        assert_eq!(o.priority, None);
        assert_eq!(o.delay, None);
        assert_eq!(parse_stored_options("{}"), EnqueueOptions::default());
        assert_eq!(parse_stored_options("not json"), EnqueueOptions::default());
        assert_eq!(parse_stored_options("null"), EnqueueOptions::default());
        let d = parse_stored_options(r#"{"deduplicationKey":"k","maxRetries":-1}"#);
        assert_eq!(d.deduplication_key.as_deref(), Some("k"));
        assert_eq!(d.max_retries, None);
    }

    #[test]
    fn stored_options_round_trip() {
        let o = EnqueueOptions {
            max_retries: Some(2),
            priority: Some(1),
            delay: Some(5),
            ..Default::default()
        };
        let text = format_stored_options(&o);
        assert_eq!(text, r#"{"maxRetries":2,"priority":1}"#);
        assert_eq!(
            parse_stored_options(&text),
            EnqueueOptions { delay: None, ..o }
        );
        assert_eq!(format_stored_options(&EnqueueOptions::default()), "{}");
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let traced = EnqueueOptions {
            traceparent: Some(tp.into()),
            tracestate: Some("v=1".into()),
            ..Default::default()
        };
        let text = format_stored_options(&traced);
        assert_eq!(
            text,
            format!(r#"{{"traceparent":"{tp}","tracestate":"v=1"}}"#)
        );
        assert_eq!(parse_stored_options(&text), traced);
        let junk = parse_stored_options(r#"{"traceparent":"x","tracestate":"v=1"}"#);
        assert_eq!((junk.traceparent, junk.tracestate), (None, None));
    }
}
