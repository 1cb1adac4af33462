//! The worker pool: takes jobs from a provider, hands them to a handler runtime in batches,
//! and settles each attempt with the provider (acknowledge, fail, time out, give back).
//!
//! The handler runtime (JavaScript, through the binding) starts the jobs it is given and
//! reports outcomes with [`Worker::complete`], which settles them and, for providers that never
//! block, returns the next jobs at once — so a busy worker needs no round trip per batch.
//! `concurrency` bounds the handlers in flight, counting timed-out handlers still running.
//!
//! Stop means stop: when [`Worker::stop`] returns, no receive is in flight. A receive that must
//! not be cut off (an SQS long poll) is waited for, and the jobs it brings are given back at
//! once; so its wait is never longer than `shutdownTimeout`.

use crate::config::WorkerConfig;
use crate::events::Signal;
use crate::job::{has_retries_left, now_ms, Job, ReceivedJob};
use crate::joblog::LogLine;
use crate::metrics::{self, JobOutcome, TypeMetrics, WorkerGauges};
use crate::provider::SharedProvider;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// How long a timed-out handler may keep running before it is reported as ignoring its signal.
const IGNORED_SIGNAL_GRACE: Duration = Duration::from_secs(1);
/// Longest single receive: SQS's longest long poll. A stop interrupts a receive that may be
/// dropped; one that may not (see [`Worker::receive_wait`]) waits at most `shutdownTimeout`.
const MAX_RECEIVE_WAIT: Duration = Duration::from_secs(20);
/// Shortest wait of a receive that may not be dropped: SQS long polls wait whole seconds.
const MIN_UNCANCELLABLE_WAIT: Duration = Duration::from_secs(1);

/// A job handed to the handler runtime. `token` names this attempt in [`Outcome`]s.
#[derive(Debug, Serialize)]
pub struct Dispatch {
    pub token: u64,
    pub job: Job,
    /// The attempt's receipt handle, as `receive` gives it (the old queue's `ReceivedJob`).
    #[serde(rename = "receiptHandle")]
    pub receipt_handle: String,
    /// This attempt has no retries left: if it fails, the job is dead.
    #[serde(rename = "lastAttempt", skip_serializing_if = "std::ops::Not::not")]
    pub last_attempt: bool,
}

/// How one handler call ended, as the handler runtime reports it.
#[derive(Debug, Deserialize)]
pub struct Outcome {
    /// The attempt's token.
    #[serde(rename = "t")]
    pub token: u64,
    /// Handler error message; absent when the handler returned.
    #[serde(rename = "e", default)]
    pub error: Option<String>,
    /// What the handler returned, as JSON text.
    #[serde(rename = "r", default)]
    pub result: Option<Box<RawValue>>,
}

/// Why the runtime is asked to abort handlers' signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortReason {
    Timeout,
    Shutdown,
    /// `cancelJob` of a running job (in this process or, on PostgreSQL, another).
    Cancelled,
}

/// Where handlers run (the JavaScript thread, in the binding).
pub trait HandlerRuntime: Send + Sync + 'static {
    /// Start these jobs; each later comes back through [`Worker::complete`]. Must not block.
    fn start(&self, jobs: Vec<Dispatch>);
    /// Abort the signals of these attempts.
    fn abort(&self, tokens: Vec<u64>, reason: AbortReason);
    /// A job's lease ran out and its provider took it back (the `stalled` event).
    fn stalled(&self, _job: Job) {}
    /// The worker has stopped: release whatever keeps the host alive.
    fn close(&self) {}
}

/// Counters of `getStats()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkerStats {
    /// Attempts that ended (succeeded + failed).
    pub processed: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Handlers running now.
    pub active: u64,
    pub running: bool,
}

/// An attempt whose handler is running.
struct Flight {
    receipt: String,
    job_id: String,
    job_type: String,
    timeout_ms: u64,
    deadline: Instant,
    /// Set once the deadline passed: the attempt is already failed; the handler still runs.
    timed_out: bool,
    /// The job was cancelled while this attempt ran: its outcome is discarded.
    cancelled: bool,
    warned: bool,
    /// No retries left: a failure makes the job dead.
    last_attempt: bool,
    started: Instant,
    metrics: Arc<TypeMetrics>,
    /// The attempt's number, and how many lines its handler logged so far.
    attempt: u32,
    logged: u32,
}

/// What the settler sends to the provider.
enum Settle {
    Ack(String, Option<Box<RawValue>>),
    Fail(String, String),
    Release(String),
    Progress(String, f64),
    Log(String, LogLine),
}

#[derive(Default)]
struct State {
    running: bool,
    stopping: bool,
    next_token: u64,
    /// Received, not yet started.
    buffer: VecDeque<ReceivedJob>,
    /// Received while an earlier attempt of the same job still runs here; started after it ends.
    parked: Vec<ReceivedJob>,
    flights: HashMap<u64, Flight>,
    /// Job ids of timed-out handlers still running.
    zombies: HashSet<String>,
    /// When each flight next needs attention: its timeout, then the ignored-signal warning.
    deadlines: BTreeSet<(Instant, u64)>,
    /// A deadline earlier than `timer_at` was added: the timer must recompute its sleep.
    timer_dirty: bool,
    /// When the timer wakes by itself (`None`: only when woken). Deadlines of jobs that
    /// ended are left for it to skip, so a stream of short jobs does not wake it per batch.
    timer_at: Option<Instant>,
    /// While a receive that may not be dropped is in flight: when its wait ends.
    uncancellable_until: Option<Instant>,
    /// This worker's handles on the per-type metrics, so recording takes no shared lock.
    metrics: HashMap<String, Arc<TypeMetrics>>,
}

/// The worker. Create with [`Worker::new`], drive with [`Worker::run`], end with [`Worker::stop`].
pub struct Worker {
    provider: SharedProvider,
    config: WorkerConfig,
    runtime: Arc<dyn HandlerRuntime>,
    state: Mutex<State>,
    /// Wakes the feeder (slots freed, stop) and the timer (new deadline, stop).
    feeder_wake: Notify,
    timer_wake: Notify,
    /// Interrupts the feeder's receive at stop.
    stop_wake: Notify,
    /// Wakes `stop()` when the last flight lands.
    drained: Notify,
    settle_tx: Mutex<Option<mpsc::UnboundedSender<Settle>>>,
    succeeded: AtomicU64,
    failed: AtomicU64,
}

impl Worker {
    pub fn new(
        provider: SharedProvider,
        config: WorkerConfig,
        runtime: Arc<dyn HandlerRuntime>,
    ) -> Arc<Worker> {
        let w = Arc::new(Worker {
            provider,
            config,
            runtime,
            state: Mutex::new(State::default()),
            feeder_wake: Notify::new(),
            timer_wake: Notify::new(),
            stop_wake: Notify::new(),
            drained: Notify::new(),
            settle_tx: Mutex::new(None),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        let gauges: Arc<dyn WorkerGauges> = w.clone();
        metrics::register_worker(Arc::downgrade(&gauges));
        w
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn concurrency(&self) -> usize {
        self.config.concurrency.max(1) as usize
    }

    pub fn is_running(&self) -> bool {
        self.lock().running
    }

    pub fn stats(&self) -> WorkerStats {
        let st = self.lock();
        let succeeded = self.succeeded.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        WorkerStats {
            processed: succeeded + failed,
            succeeded,
            failed,
            active: st.flights.len() as u64,
            running: st.running,
        }
    }

    /// Run until [`Worker::stop`] has finished; the future resolves at once if the worker is
    /// already running. The worker counts as running as soon as this is called, before the
    /// future is first polled, so a `stop()` right after it ends this run; the future must be
    /// awaited or spawned.
    pub fn run(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let claimed = {
            let mut st = self.lock();
            if st.running {
                false
            } else {
                *st = State {
                    running: true,
                    next_token: st.next_token,
                    metrics: std::mem::take(&mut st.metrics),
                    ..State::default()
                };
                true
            }
        };
        let this = self.clone();
        async move {
            if claimed {
                this.drive().await;
            }
        }
    }

    /// The body of a run that [`Worker::run`] claimed.
    async fn drive(self: Arc<Self>) {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.settle_tx.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        let settler = tokio::spawn(settle_loop(self.provider.clone(), rx));
        let timer = tokio::spawn(self.clone().timer_loop());
        let signals = self
            .provider
            .signals()
            .map(|s| tokio::spawn(self.clone().signal_loop(s.subscribe())));
        self.feed_loop().await;
        if let Some(s) = signals {
            s.abort();
        }
        // stop() has drained the flights; let the settler finish what is queued.
        drop(
            self.settle_tx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        timer.abort();
        let _ = settler.await;
        self.lock().running = false;
        self.runtime.close();
        self.drained.notify_waiters();
    }

    /// Stop taking jobs, wait up to `shutdownTimeout` for running ones, then abort them and
    /// give their jobs back to the queue. Returns once every attempt is settled and no receive
    /// is in flight; jobs a last receive brought are given back (not counted as failures).
    ///
    /// The worker stops taking jobs as soon as this is called, before the future is first
    /// polled, so `start(); stop()` never lets a long poll begin after the stop.
    pub fn stop(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let begun = self.begin_stop();
        let this = self.clone();
        async move {
            if begun {
                this.drain_flights().await;
            }
            this.wait_stopped().await;
        }
    }

    /// What a stop does at once: mark the worker stopping, wake the feeder and timer, give
    /// back the jobs not started. `false` when not running or already stopping.
    fn begin_stop(&self) -> bool {
        let (unstarted, receiving) = {
            let mut st = self.lock();
            if !st.running || st.stopping {
                (None, None)
            } else {
                st.stopping = true;
                let mut jobs: Vec<ReceivedJob> = st.buffer.drain(..).collect();
                jobs.append(&mut st.parked);
                (Some(jobs), st.uncancellable_until)
            }
        };
        let Some(unstarted) = unstarted else {
            return false;
        };
        if let Some(left) = receiving.map(|at| at.saturating_duration_since(Instant::now())) {
            if left > Duration::from_millis(100) {
                tracing::info!(
                    "worker stopping: waiting up to {} ms for the long poll in flight (it cannot be called off; \
                     what it brings is given back at once)",
                    left.as_millis()
                );
            }
        }
        self.feeder_wake.notify_one();
        self.stop_wake.notify_one();
        for j in unstarted {
            self.settle(Settle::Release(j.receipt_handle));
        }
        true
    }

    /// Wait up to `shutdownTimeout` for running handlers, then abort the rest and give their
    /// jobs back.
    async fn drain_flights(&self) {
        let deadline = Instant::now() + Duration::from_millis(self.config.shutdown_timeout);
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.lock().flights.is_empty() {
                break;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                break;
            }
        }
        let abandoned: Vec<(u64, Flight)> = self.lock().flights.drain().collect();
        if !abandoned.is_empty() {
            tracing::warn!(
                jobs = abandoned.len(),
                "worker stopping: {} job(s) still running after shutdownTimeout ({} ms); aborting them and returning them to the queue",
                abandoned.len(),
                self.config.shutdown_timeout
            );
            self.runtime.abort(
                abandoned.iter().map(|(t, _)| *t).collect(),
                AbortReason::Shutdown,
            );
            for (_, f) in abandoned {
                if !f.timed_out {
                    self.settle(Settle::Release(f.receipt));
                }
            }
        }
        self.feeder_wake.notify_one();
    }

    async fn wait_stopped(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if !self.lock().running {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), drained).await;
        }
    }

    fn settle(&self, s: Settle) {
        if let Some(imm) = self.provider.immediate() {
            let r = match &s {
                Settle::Ack(receipt, result) => imm.acknowledge_now(receipt, result.clone()),
                Settle::Fail(receipt, e) => imm.fail_now(receipt, e),
                Settle::Release(receipt) => imm.release_now(receipt),
                Settle::Progress(receipt, p) => imm.set_progress_now(receipt, *p),
                Settle::Log(receipt, line) => imm.append_log_now(receipt, line.clone()),
            };
            if let Err(e) = r {
                tracing::warn!("settling a job failed: {e}");
            }
            return;
        }
        let tx = self.settle_tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = tx.as_ref() {
            let _ = tx.send(s);
        }
    }

    /// Move buffered jobs into free slots. Runs under the state lock.
    fn take_startable(&self, st: &mut State) -> Vec<Dispatch> {
        let free = self.concurrency().saturating_sub(st.flights.len());
        let mut out = Vec::new();
        while out.len() < free {
            let Some(r) = st.buffer.pop_front() else {
                break;
            };
            if st.zombies.contains(&r.job.id) {
                st.parked.push(r);
                continue;
            }
            st.next_token += 1;
            let token = st.next_token;
            let timeout_ms = r.job.options.timeout;
            let started = Instant::now();
            let deadline = started + Duration::from_millis(timeout_ms);
            let m = match st.metrics.get(&r.job.job_type) {
                Some(m) => m.clone(),
                None => {
                    let m = metrics::for_type(&r.job.job_type);
                    st.metrics.insert(r.job.job_type.clone(), m.clone());
                    m
                }
            };
            let due = r
                .job
                .scheduled_for
                .map_or(r.job.created_at, |s| s.max(r.job.created_at));
            m.wait.observe(Duration::from_millis(
                now_ms().saturating_sub(due).max(0) as u64
            ));
            let last_attempt = !has_retries_left(r.job.attempts, &r.job.options);
            if st.timer_at.is_none_or(|at| deadline < at) {
                st.timer_dirty = true;
                st.timer_at = Some(deadline);
            }
            st.deadlines.insert((deadline, token));
            st.flights.insert(
                token,
                Flight {
                    receipt: r.receipt_handle.clone(),
                    job_id: r.job.id.clone(),
                    job_type: r.job.job_type.clone(),
                    timeout_ms,
                    deadline,
                    timed_out: false,
                    cancelled: false,
                    warned: false,
                    last_attempt,
                    started,
                    metrics: m,
                    attempt: r.job.attempts,
                    logged: 0,
                },
            );
            out.push(Dispatch {
                token,
                job: r.job,
                receipt_handle: r.receipt_handle,
                last_attempt,
            });
        }
        out
    }

    /// Report finished handlers. Returns the next jobs to start, taken without waiting
    /// (empty when none are ready; the feeder then delivers through the runtime).
    pub fn complete(&self, outcomes: Vec<Outcome>) -> Vec<Dispatch> {
        let mut landed = false;
        let mut settles = Vec::with_capacity(outcomes.len());
        {
            let mut st = self.lock();
            for o in outcomes {
                let Some(f) = st.flights.remove(&o.token) else {
                    continue;
                };
                landed = true;
                st.deadlines.remove(&(f.deadline, o.token));
                if f.cancelled {
                    // cancelJob already ended the job; the provider discards this settle,
                    // which only ends the attempt (its lease) here.
                    settles.push(Settle::Ack(f.receipt, None));
                    continue;
                }
                if f.timed_out {
                    // Already failed at its deadline; the late result is discarded. Its job may
                    // now run again here.
                    st.zombies.remove(&f.job_id);
                    let (ready, still): (Vec<_>, Vec<_>) =
                        st.parked.drain(..).partition(|r| r.job.id == f.job_id);
                    st.parked = still;
                    st.buffer.extend(ready);
                    continue;
                }
                let ran = f.started.elapsed();
                match o.error {
                    None => {
                        f.metrics.record(JobOutcome::Completed, ran);
                        self.succeeded.fetch_add(1, Ordering::Relaxed);
                        settles.push(Settle::Ack(f.receipt, o.result));
                    }
                    Some(e) => {
                        f.metrics.record(failure(f.last_attempt), ran);
                        self.failed.fetch_add(1, Ordering::Relaxed);
                        settles.push(Settle::Fail(f.receipt, e));
                    }
                }
            }
        }
        for s in settles {
            self.settle(s);
        }
        let mut st = self.lock();
        if st.stopping {
            if st.flights.is_empty() {
                self.drained.notify_waiters();
            }
            return Vec::new();
        }
        let mut next = self.take_startable(&mut st);
        let free = self.concurrency().saturating_sub(st.flights.len());
        if free > 0 {
            if let Some(imm) = self.provider.immediate() {
                st.buffer.extend(imm.try_receive(free));
                next.extend(self.take_startable(&mut st));
            }
        }
        let timer_dirty = std::mem::take(&mut st.timer_dirty);
        drop(st);
        if timer_dirty {
            self.timer_wake.notify_one();
        }
        if landed {
            self.feeder_wake.notify_one();
        }
        next
    }

    /// Store a handler's progress on its job.
    pub fn progress(&self, token: u64, percent: f64) -> bool {
        let receipt = match self.lock().flights.get(&token) {
            Some(f) if !f.timed_out && !f.cancelled => f.receipt.clone(),
            _ => return false,
        };
        self.settle(Settle::Progress(receipt, percent));
        true
    }

    /// Store a line the handler logged on its job (see [`crate::joblog`]); false when the
    /// attempt is no longer running.
    pub fn log(&self, token: u64, line: String) -> bool {
        let (receipt, attempt, seq) = match self.lock().flights.get_mut(&token) {
            Some(f) if !f.timed_out && !f.cancelled => {
                f.logged += 1;
                (f.receipt.clone(), f.attempt, f.logged)
            }
            _ => return false,
        };
        self.settle(Settle::Log(
            receipt,
            LogLine::new(now_ms(), attempt, seq, line),
        ));
        true
    }

    /// How long the feeder's receives wait. One that may be dropped waits long and a stop cuts
    /// it off. One that may not (SQS) is waited for by `stop()`, so it waits no longer than
    /// `shutdownTimeout` nor the provider's longest (SQS `waitTimeSeconds`), within [`MIN_UNCANCELLABLE_WAIT`]..=[`MAX_RECEIVE_WAIT`].
    fn receive_wait(&self) -> Duration {
        if self.provider.receive_is_cancel_safe() {
            MAX_RECEIVE_WAIT
        } else {
            Duration::from_millis(self.config.shutdown_timeout)
                .min(self.provider.longest_uncancellable_wait())
                .clamp(MIN_UNCANCELLABLE_WAIT, MAX_RECEIVE_WAIT)
        }
    }

    /// The feeder: keeps the buffer filled while slots are free, delivering through the runtime.
    async fn feed_loop(self: &Arc<Self>) {
        let cancel_safe = self.provider.receive_is_cancel_safe();
        // A run's first receive that may not be dropped is a short poll: a `stop()` right
        // after `start()` then waits one round trip, not a long poll.
        let mut first = !cancel_safe;
        let prefetch = if self.provider.immediate().is_some() {
            0
        } else {
            self.provider.prefetch(self.concurrency())
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            let wake = self.feeder_wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let want = {
                let mut st = self.lock();
                if st.stopping {
                    if st.flights.is_empty() {
                        break;
                    }
                    0
                } else {
                    let start = self.take_startable(&mut st);
                    if start.is_empty() {
                        (self.concurrency() + prefetch)
                            .saturating_sub(st.flights.len() + st.buffer.len() + st.parked.len())
                    } else {
                        let timer_dirty = std::mem::take(&mut st.timer_dirty);
                        drop(st);
                        if timer_dirty {
                            self.timer_wake.notify_one();
                        }
                        self.runtime.start(start);
                        continue;
                    }
                }
            };
            if want == 0 {
                wake.await;
                continue;
            }
            let began = Instant::now();
            let wait = if std::mem::take(&mut first) {
                Duration::ZERO
            } else {
                self.receive_wait()
            };
            let got = if cancel_safe {
                tokio::select! {
                    r = self.provider.receive(want, wait) => r,
                    _ = self.stop_wake.notified() => continue,
                }
            } else {
                // Never dropped: the server would go on with it and hide what it takes. A stop
                // waits for it, and what it brings is given back just below.
                self.lock().uncancellable_until = Some(began + wait);
                let r = self.provider.receive(want, wait).await;
                self.lock().uncancellable_until = None;
                r
            };
            match got {
                Ok(jobs) if jobs.is_empty() => {
                    // A provider that cannot long-poll answers at once: wait pollInterval.
                    if !wait.is_zero()
                        && began.elapsed() < Duration::from_millis(10)
                        && !self.lock().stopping
                    {
                        let poll = Duration::from_millis(self.config.poll_interval.max(1));
                        let wake = self.feeder_wake.notified();
                        let _ = tokio::time::timeout(poll, wake).await;
                    }
                    backoff = Duration::from_millis(100);
                }
                Ok(jobs) => {
                    backoff = Duration::from_millis(100);
                    // Checked and buffered under one lock, so a stop cannot drain the buffer
                    // in between and leave these jobs in it.
                    let mut st = self.lock();
                    if st.stopping {
                        drop(st);
                        for j in jobs {
                            self.settle(Settle::Release(j.receipt_handle));
                        }
                        continue;
                    }
                    st.buffer.extend(jobs);
                    let start = self.take_startable(&mut st);
                    let timer_dirty = std::mem::take(&mut st.timer_dirty);
                    drop(st);
                    if timer_dirty {
                        self.timer_wake.notify_one();
                    }
                    if !start.is_empty() {
                        self.runtime.start(start);
                    }
                }
                Err(e) => {
                    tracing::error!(
                        "worker: receiving jobs failed, retrying in {} ms: {e}",
                        backoff.as_millis()
                    );
                    let wake = self.feeder_wake.notified();
                    let _ = tokio::time::timeout(backoff, wake).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// The timer: fails attempts at their timeout and reports handlers that ignore the abort.
    async fn timer_loop(self: Arc<Self>) {
        loop {
            let wake = self.timer_wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let now = Instant::now();
            let mut expired = Vec::new();
            let mut warn = Vec::new();
            let next = {
                let mut st = self.lock();
                while let Some(&(at, token)) = st.deadlines.first() {
                    if at > now {
                        break;
                    }
                    st.deadlines.pop_first();
                    let Some(f) = st.flights.get_mut(&token) else {
                        continue;
                    };
                    if f.cancelled {
                        continue;
                    }
                    if !f.timed_out {
                        f.timed_out = true;
                        let (receipt, ms, id) = (f.receipt.clone(), f.timeout_ms, f.job_id.clone());
                        f.metrics
                            .record(failure(f.last_attempt), now.duration_since(f.started));
                        st.zombies.insert(id);
                        st.deadlines.insert((now + IGNORED_SIGNAL_GRACE, token));
                        expired.push((token, receipt, ms));
                    } else if !f.warned {
                        f.warned = true;
                        warn.push((f.job_id.clone(), f.job_type.clone(), f.timeout_ms));
                    }
                }
                st.timer_at = st.deadlines.first().map(|&(at, _)| at);
                st.timer_at
            };
            if !expired.is_empty() {
                self.failed
                    .fetch_add(expired.len() as u64, Ordering::Relaxed);
                let tokens = expired.iter().map(|(t, _, _)| *t).collect();
                self.runtime.abort(tokens, AbortReason::Timeout);
                for (_, receipt, ms) in expired {
                    self.settle(Settle::Fail(
                        receipt,
                        format!("Job timed out after {ms} ms"),
                    ));
                }
            }
            for (id, job_type, ms) in warn {
                tracing::warn!(
                    job_id = %id,
                    "handler for job {id} ({job_type}) is still running {} ms after its {ms} ms timeout: it ignores ctx.signal; its retry waits until it returns",
                    IGNORED_SIGNAL_GRACE.as_millis()
                );
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut wake => {}
                    }
                }
                None => wake.await,
            }
        }
    }
}

impl Worker {
    /// Acts on its provider's signals until the run ends.
    async fn signal_loop(self: Arc<Self>, mut rx: tokio::sync::broadcast::Receiver<Signal>) {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match rx.recv().await {
                Ok(Signal::Cancelled(id)) => {
                    self.cancel(&id);
                }
                Ok(Signal::Stalled(job)) => self.runtime.stalled(*job),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        "worker: {n} queue signal(s) were missed (the worker fell behind)"
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Job `id` was cancelled: abort its running attempt here (its outcome is then discarded)
    /// and drop it if it waits here to start. Returns the attempts aborted.
    pub fn cancel(&self, id: &str) -> usize {
        let mut waiting = Vec::new();
        let tokens: Vec<u64> = {
            let mut st = self.lock();
            let st = &mut *st;
            st.buffer.retain(|r| {
                let keep = r.job.id != id;
                if !keep {
                    waiting.push(r.receipt_handle.clone());
                }
                keep
            });
            st.parked.retain(|r| {
                let keep = r.job.id != id;
                if !keep {
                    waiting.push(r.receipt_handle.clone());
                }
                keep
            });
            st.flights
                .iter_mut()
                .filter(|(_, f)| f.job_id == id && !f.timed_out && !f.cancelled)
                .map(|(&t, f)| {
                    f.cancelled = true;
                    t
                })
                .collect()
        };
        // Never started here: giving them back ends their leases (the provider keeps them
        // cancelled).
        for receipt in waiting {
            self.settle(Settle::Release(receipt));
        }
        let n = tokens.len();
        if n > 0 {
            self.runtime.abort(tokens, AbortReason::Cancelled);
        }
        n
    }
}

/// The outcome counted for a failed attempt.
fn failure(last_attempt: bool) -> JobOutcome {
    if last_attempt {
        JobOutcome::Dead
    } else {
        JobOutcome::Failed
    }
}

impl WorkerGauges for Worker {
    fn running(&self) -> u64 {
        self.lock().flights.len() as u64
    }

    fn concurrency(&self) -> u64 {
        self.concurrency() as u64
    }

    fn provider(&self) -> &'static str {
        self.provider.name()
    }
}

/// Settles attempts with providers that block (SQS), off the caller's thread, in order.
async fn settle_loop(provider: SharedProvider, mut rx: mpsc::UnboundedReceiver<Settle>) {
    let mut pending = tokio::task::JoinSet::new();
    while let Some(s) = rx.recv().await {
        let p = provider.clone();
        pending.spawn(async move {
            let r = match &s {
                Settle::Ack(receipt, result) => p.acknowledge(receipt, result.clone()).await,
                Settle::Fail(receipt, e) => p.fail(receipt, e).await,
                Settle::Release(receipt) => p.release(receipt).await,
                Settle::Progress(receipt, pct) => p.set_progress(receipt, *pct).await,
                Settle::Log(receipt, line) => p.append_log(receipt, line.clone()).await,
            };
            if let Err(e) = r {
                tracing::warn!("settling a job failed: {e}");
            }
        });
        while pending.try_join_next().is_some() {}
    }
    while pending.join_next().await.is_some() {}
}
