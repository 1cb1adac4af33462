//! Property test of the in-memory provider (issue #2): random sequences of enqueues (priority,
//! retries, deduplication keys, delays), receives by several receivers, acknowledgements,
//! failures, releases, progress, stale and forged receipts and a close, checked step by step
//! against a simple model of the queue.
//!
//! The queue reads the wall clock (`now_ms`) and has no way to skip a retry's backoff (≥ 1 s),
//! so the model brackets every time-dependent call between two clock readings: a delayed or
//! backing-off job has a window `[lo, hi]` for the moment it becomes visible, and a receive or
//! `stats` made at a moment in `[t0, t1]` must make every job with `hi <= t0` visible, may make
//! one with `lo <= t1` visible, and must not make any other visible.
//!
//! Checked after every operation: each job's `get_job` snapshot (status, attempts, options,
//! last error, progress, result; none once trimmed from the history) and, in half of the cases,
//! the `stats` counters. Checked at each receive: no job is handed out while a receipt for it is
//! outstanding, nothing finished comes back, the jobs come out lowest priority first and first
//! in, first out within a priority, and no visible job is left behind when fewer than `max`
//! come back. Enqueue with a deduplication key returns the unfinished job holding that key.
//! After a close, enqueue fails with `Closed` and receive returns nothing. At the end every
//! attempt is settled and every job is completed, dead or still delayed, and every receipt ever
//! handed out is refused with `UnknownReceipt`.

use chaaskit_queue_core::config::MemoryConfig;
use chaaskit_queue_core::job::{now_ms, raw_json, retry_backoff_ms, DEFAULT_MAX_RETRIES};
use chaaskit_queue_core::memory::MemoryQueue;
use chaaskit_queue_core::Immediate;
use chaaskit_queue_core::{
    EnqueueOptions, Job, JobStatus, Millis, NewJob, QueueError, QueueProvider, ReceivedJob,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Logical receivers sharing the queue.
const RECEIVERS: usize = 3;
/// Deduplication keys drawn from this small set so they collide often.
const KEYS: [&str; 3] = ["k0", "k1", "k2"];
/// A delay that never elapses during a case.
const LONG_DELAY_MS: u64 = 3_600_000;
const JOB_TYPE: &str = "prop";

type TestResult<T = ()> = Result<T, TestCaseError>;

// ---------------------------------------------------------------------------------------------
// Operations

#[derive(Clone, Debug)]
enum Delay {
    /// No `delay` option.
    Unset,
    /// `delay: 0`: visible at once.
    Zero,
    /// A few milliseconds: becomes visible during the case (a `Sleep` helps).
    Short(u64),
    /// Never visible during the case.
    Long,
}

#[derive(Clone, Debug)]
struct Spec {
    priority: Option<u32>,
    max_retries: Option<u32>,
    key: Option<usize>,
    delay: Delay,
}

#[derive(Clone, Copy, Debug)]
enum How {
    Ack,
    Fail,
    Release,
    Progress,
}

#[derive(Clone, Debug)]
enum Op {
    Enqueue(Spec),
    Bulk(Vec<Spec>),
    /// `wait_api`: through `QueueProvider::receive` with a zero wait instead of `try_receive`.
    Receive {
        receiver: usize,
        max: usize,
        wait_api: bool,
    },
    /// Settle one of the receiver's outstanding attempts (nothing if it holds none).
    Settle {
        receiver: usize,
        pick: Index,
        how: How,
    },
    /// Settle again with a receipt whose attempt is over.
    Stale {
        pick: Index,
        how: How,
    },
    /// Settle with a receipt the queue never handed out.
    Forged {
        pick: Index,
        form: u8,
        how: How,
    },
    Stats,
    Sleep(u64),
}

#[derive(Clone, Debug)]
struct Case {
    max_history: usize,
    ops: Vec<Op>,
    /// Close before the op at this position (`None`: close only at the end).
    close_at: Option<Index>,
    /// Check `stats` after every op, not only at `Stats` ops and at the end.
    stats_every_step: bool,
    /// Ack (`true`) or fail (`false`) while draining, cycled.
    drain_plan: Vec<bool>,
}

fn delay() -> impl Strategy<Value = Delay> {
    prop_oneof![
        6 => Just(Delay::Unset),
        1 => Just(Delay::Zero),
        2 => (1u64..=15).prop_map(Delay::Short),
        1 => Just(Delay::Long),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::weighted(0.85, 0u32..=3),
        prop::option::weighted(0.9, 0u32..=3),
        prop::option::weighted(0.3, 0..KEYS.len()),
        delay(),
    )
        .prop_map(|(priority, max_retries, key, delay)| Spec {
            priority,
            max_retries,
            key,
            delay,
        })
}

fn how() -> impl Strategy<Value = How> {
    prop_oneof![
        5 => Just(How::Ack),
        4 => Just(How::Fail),
        2 => Just(How::Release),
        1 => Just(How::Progress),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => spec().prop_map(Op::Enqueue),
        2 => prop::collection::vec(spec(), 1..4).prop_map(Op::Bulk),
        8 => (0..RECEIVERS, 0usize..=4, any::<bool>()).prop_map(|(receiver, max, wait_api)| {
            Op::Receive { receiver, max, wait_api }
        }),
        12 => (0..RECEIVERS, any::<Index>(), how())
            .prop_map(|(receiver, pick, how)| Op::Settle { receiver, pick, how }),
        2 => (any::<Index>(), how()).prop_map(|(pick, how)| Op::Stale { pick, how }),
        1 => (any::<Index>(), 0u8..7, how()).prop_map(|(pick, form, how)| Op::Forged {
            pick,
            form,
            how
        }),
        1 => Just(Op::Stats),
        1 => (1u64..=12).prop_map(Op::Sleep),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(0usize), Just(2), Just(5), Just(1000)],
        prop::collection::vec(op(), 1..60),
        prop::option::of(any::<Index>()),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 1..4),
    )
        .prop_map(
            |(max_history, ops, close_at, stats_every_step, drain_plan)| Case {
                max_history,
                ops,
                close_at,
                stats_every_step,
                drain_plan,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// The model

#[derive(Clone, Debug, PartialEq)]
enum St {
    /// Visible (pending).
    Ready,
    /// Scheduled or backing off (`status`), visible from some moment in `[lo, hi]`.
    Delayed {
        status: JobStatus,
        lo: Millis,
        hi: Millis,
    },
    Processing {
        receipt: String,
    },
    Completed,
    Dead,
}

impl St {
    fn finished(&self) -> bool {
        matches!(self, St::Completed | St::Dead)
    }
}

#[derive(Debug)]
struct MJob {
    id: String,
    payload: String,
    priority: u32,
    max_retries: u32,
    key: Option<usize>,
    st: St,
    attempts: u32,
    /// Every receipt handed out for this job.
    receipts: Vec<String>,
    last_error: Option<String>,
    progress: Option<f64>,
    result: Option<String>,
    /// Dropped from the history: `get_job` no longer finds it.
    trimmed: bool,
}

struct Model {
    q: Arc<MemoryQueue>,
    rt: tokio::runtime::Runtime,
    /// In enqueue order, which is the queue's FIFO order.
    jobs: Vec<MJob>,
    by_id: HashMap<String, usize>,
    /// Deduplication key → the unfinished job holding it.
    keys: HashMap<usize, usize>,
    /// Per receiver: (receipt, job) of attempts handed out and not yet settled.
    outstanding: Vec<Vec<(String, usize)>>,
    /// Receipts whose attempt is over (acknowledged, failed or released).
    settled: Vec<String>,
    /// Every receipt handed out → whether its attempt was released.
    issued: HashMap<String, bool>,
    /// Finished jobs, oldest first.
    history: VecDeque<usize>,
    max_history: usize,
    closed: bool,
    /// Upper clock bound of the latest call that made due jobs visible.
    promoted_until: Millis,
    counter: u64,
}

fn status_of(st: &St) -> JobStatus {
    match st {
        St::Ready => JobStatus::Pending,
        St::Delayed { status, .. } => *status,
        St::Processing { .. } => JobStatus::Processing,
        St::Completed => JobStatus::Completed,
        St::Dead => JobStatus::Dead,
    }
}

fn is_unknown_receipt<T: std::fmt::Debug>(r: &Result<T, QueueError>, receipt: &str) -> bool {
    matches!(r, Err(QueueError::UnknownReceipt(h)) if h == receipt)
}

impl Model {
    fn new(max_history: usize) -> Model {
        Model {
            q: MemoryQueue::new(MemoryConfig {
                max_history_size: max_history,
            }),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap(),
            jobs: Vec::new(),
            by_id: HashMap::new(),
            keys: HashMap::new(),
            outstanding: vec![Vec::new(); RECEIVERS],
            settled: Vec::new(),
            issued: HashMap::new(),
            history: VecDeque::new(),
            max_history,
            closed: false,
            promoted_until: Millis::MIN,
            counter: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn new_job(&mut self, spec: &Spec) -> NewJob {
        let n = self.next();
        let options = EnqueueOptions {
            delay: match spec.delay {
                Delay::Unset => None,
                Delay::Zero => Some(0),
                Delay::Short(ms) => Some(ms),
                Delay::Long => Some(LONG_DELAY_MS),
            },
            priority: spec.priority,
            max_retries: spec.max_retries,
            deduplication_key: spec.key.map(|k| KEYS[k].to_owned()),
            ..Default::default()
        };
        NewJob::new(
            JOB_TYPE,
            raw_json(&format!(r#"{{"n":{n}}}"#)).unwrap(),
            options,
        )
    }

    /// Statuses `get_job` may report for job `i`: a delayed job whose moment may have come
    /// is pending once a receive or `stats` has looked.
    fn allowed_statuses(&self, i: usize) -> Vec<JobStatus> {
        match &self.jobs[i].st {
            St::Delayed { status, lo, .. } if *lo <= self.promoted_until => {
                vec![*status, JobStatus::Pending]
            }
            st => vec![status_of(st)],
        }
    }

    /// A snapshot of job `i` (from `get_job`, `enqueue` or a dedup hit) agrees with the model.
    fn check_snapshot(&self, job: &Job, i: usize) -> TestResult {
        let m = &self.jobs[i];
        prop_assert_eq!(&job.id, &m.id);
        prop_assert_eq!(job.job_type.as_str(), JOB_TYPE);
        prop_assert_eq!(job.payload.get(), m.payload.as_str());
        prop_assert_eq!(job.options.priority, m.priority);
        prop_assert_eq!(job.options.max_retries, m.max_retries);
        let allowed = self.allowed_statuses(i);
        prop_assert!(
            allowed.contains(&job.status),
            "job {} is {:?}, model says {:?}",
            i,
            job.status,
            allowed
        );
        prop_assert_eq!(job.attempts, m.attempts, "attempts of job {}", i);
        if !m.st.finished() {
            prop_assert_eq!(
                job.options.deduplication_key.as_deref(),
                m.key.map(|k| KEYS[k])
            );
        }
        prop_assert_eq!(&job.last_error, &m.last_error, "last error of job {}", i);
        prop_assert_eq!(job.progress, m.progress, "progress of job {}", i);
        prop_assert_eq!(
            job.result.as_ref().map(|r| r.get().to_owned()),
            m.result.clone(),
            "result of job {}",
            i
        );
        if m.st.finished() {
            prop_assert!(
                job.completed_at.is_some(),
                "finished job {} has no completedAt",
                i
            );
        }
        if m.attempts > 0 {
            prop_assert!(job.started_at.is_some());
        }
        Ok(())
    }

    /// Every job's `get_job` agrees with the model.
    fn check_jobs(&self) -> TestResult {
        for (i, m) in self.jobs.iter().enumerate() {
            let got = self.q.get_job_now(&m.id);
            if m.trimmed {
                prop_assert!(
                    got.is_none(),
                    "job {} should be trimmed from the history",
                    i
                );
            } else {
                let Some(job) = got else {
                    return Err(TestCaseError::fail(format!("get_job lost job {i}")));
                };
                self.check_snapshot(&job, i)?;
            }
        }
        // Model self-check: one outstanding receipt per processing job, and only for those.
        let mut seen = HashSet::new();
        for (r, i) in self.outstanding.iter().flatten() {
            prop_assert!(seen.insert(*i), "model: job {} outstanding twice", i);
            prop_assert_eq!(&self.jobs[*i].st, &St::Processing { receipt: r.clone() });
        }
        let processing = self
            .jobs
            .iter()
            .filter(|m| matches!(m.st, St::Processing { .. }))
            .count();
        prop_assert_eq!(processing, seen.len());
        Ok(())
    }

    /// Jobs due for sure by `t0` are visible after a call made at or after `t0`.
    fn promote(&mut self, t0: Millis, t1: Millis) {
        for m in &mut self.jobs {
            if matches!(m.st, St::Delayed { hi, .. } if hi <= t0) {
                m.st = St::Ready;
            }
        }
        self.promoted_until = self.promoted_until.max(t1);
    }

    fn check_stats(&mut self) -> TestResult {
        let t0 = now_ms();
        let s = self.q.stats_now();
        let t1 = now_ms();
        self.promote(t0, t1);
        let count = |f: &dyn Fn(&MJob) -> bool| self.jobs.iter().filter(|m| f(m)).count() as u64;
        let in_history = |m: &MJob, st: St| m.st == st && !m.trimmed;
        prop_assert_eq!(
            s.processing,
            count(&|m| matches!(m.st, St::Processing { .. }))
        );
        prop_assert_eq!(s.completed, count(&|m| in_history(m, St::Completed)));
        prop_assert_eq!(s.dead, count(&|m| in_history(m, St::Dead)));
        let waiting = count(&|m| matches!(m.st, St::Ready | St::Delayed { .. }));
        prop_assert_eq!(s.pending + s.scheduled + s.failed, waiting);
        for (status, got) in [
            (JobStatus::Scheduled, s.scheduled),
            (JobStatus::Failed, s.failed),
        ] {
            let surely = count(
                &|m| matches!(m.st, St::Delayed { status: x, lo, .. } if x == status && lo > t1),
            );
            let maybe = count(&|m| matches!(m.st, St::Delayed { status: x, .. } if x == status));
            prop_assert!(
                (surely..=maybe).contains(&got),
                "stats.{} = {}, model says {}..={}",
                status.as_str(),
                got,
                surely,
                maybe
            );
        }
        Ok(())
    }

    /// A job returned by `enqueue`/`enqueue_bulk` for `spec`: a dedup hit or a new job.
    fn absorb_enqueued(&mut self, spec: &Spec, job: &Job, t0: Millis, t1: Millis) -> TestResult {
        if let Some(&i) = spec.key.and_then(|k| self.keys.get(&k)) {
            prop_assert_eq!(
                &job.id,
                &self.jobs[i].id,
                "dedup must return the existing job"
            );
            return self.check_snapshot(job, i);
        }
        prop_assert!(
            !self.by_id.contains_key(&job.id),
            "enqueue reused id {}",
            job.id
        );
        let st = match spec.delay {
            Delay::Unset | Delay::Zero => {
                prop_assert_eq!(job.status, JobStatus::Pending);
                prop_assert_eq!(job.scheduled_for, None);
                St::Ready
            }
            Delay::Short(d) => self.scheduled(job, d, t0, t1)?,
            Delay::Long => self.scheduled(job, LONG_DELAY_MS, t0, t1)?,
        };
        prop_assert!((t0..=t1).contains(&job.created_at));
        prop_assert_eq!(job.attempts, 0);
        prop_assert_eq!(job.options.priority, spec.priority.unwrap_or(0));
        prop_assert_eq!(
            job.options.max_retries,
            spec.max_retries.unwrap_or(DEFAULT_MAX_RETRIES)
        );
        prop_assert_eq!(
            job.options.deduplication_key.as_deref(),
            spec.key.map(|k| KEYS[k])
        );
        let i = self.jobs.len();
        self.jobs.push(MJob {
            id: job.id.clone(),
            payload: job.payload.get().to_owned(),
            priority: job.options.priority,
            max_retries: job.options.max_retries,
            key: spec.key,
            st,
            attempts: 0,
            receipts: Vec::new(),
            last_error: None,
            progress: None,
            result: None,
            trimmed: false,
        });
        self.by_id.insert(job.id.clone(), i);
        if let Some(k) = spec.key {
            self.keys.insert(k, i);
        }
        Ok(())
    }

    fn scheduled(&self, job: &Job, delay: u64, t0: Millis, t1: Millis) -> TestResult<St> {
        prop_assert_eq!(job.status, JobStatus::Scheduled);
        let Some(at) = job.scheduled_for else {
            return Err(TestCaseError::fail("a delayed job has no scheduledFor"));
        };
        let d = delay as Millis;
        prop_assert!((t0 + d..=t1 + d).contains(&at), "scheduledFor {} off", at);
        Ok(St::Delayed {
            status: JobStatus::Scheduled,
            lo: at,
            hi: at,
        })
    }

    fn enqueue(&mut self, spec: &Spec) -> TestResult {
        let new = self.new_job(spec);
        let t0 = now_ms();
        let r = self.q.enqueue_now(new);
        let t1 = now_ms();
        if self.closed {
            prop_assert!(
                matches!(r, Err(QueueError::Closed)),
                "enqueue after close: {:?}",
                r
            );
            return Ok(());
        }
        let job = r.map_err(|e| TestCaseError::fail(format!("enqueue failed: {e}")))?;
        self.absorb_enqueued(spec, &job, t0, t1)
    }

    fn bulk(&mut self, specs: &[Spec]) -> TestResult {
        let news: Vec<NewJob> = specs.iter().map(|s| self.new_job(s)).collect();
        let t0 = now_ms();
        let r = self.q.enqueue_bulk_now(news);
        let t1 = now_ms();
        if self.closed {
            prop_assert!(
                matches!(r, Err(QueueError::Closed)),
                "bulk after close: {:?}",
                r
            );
            return Ok(());
        }
        let jobs = r.map_err(|e| TestCaseError::fail(format!("enqueue_bulk failed: {e}")))?;
        prop_assert_eq!(jobs.len(), specs.len());
        for (spec, job) in specs.iter().zip(&jobs) {
            self.absorb_enqueued(spec, job, t0, t1)?;
        }
        Ok(())
    }

    /// Returns how many jobs came back.
    fn receive(&mut self, receiver: usize, max: usize, wait_api: bool) -> TestResult<usize> {
        let t0 = now_ms();
        let got: Vec<ReceivedJob> = if wait_api {
            let q = self.q.clone();
            self.rt
                .block_on(async move { q.receive(max, Duration::ZERO).await })
                .map_err(|e| TestCaseError::fail(format!("receive failed: {e}")))?
        } else {
            self.q.try_receive(max)
        };
        let t1 = now_ms();
        if self.closed {
            prop_assert!(
                got.is_empty(),
                "receive after close returned {} job(s)",
                got.len()
            );
            return Ok(0);
        }
        prop_assert!(got.len() <= max, "asked for {}, got {}", max, got.len());

        let mut order = Vec::with_capacity(got.len());
        for r in &got {
            let Some(&i) = self.by_id.get(&r.job.id) else {
                return Err(TestCaseError::fail(format!(
                    "received unknown job {}",
                    r.job.id
                )));
            };
            let m = &self.jobs[i];
            match &m.st {
                St::Ready => {}
                St::Delayed { lo, .. } => {
                    prop_assert!(*lo <= t1, "job {} received before its time", i)
                }
                St::Processing { receipt } => {
                    return Err(TestCaseError::fail(format!(
                        "job {i} handed out while receipt {receipt} is outstanding"
                    )))
                }
                St::Completed | St::Dead => {
                    return Err(TestCaseError::fail(format!(
                        "finished job {i} ({:?}) handed out again",
                        m.st
                    )))
                }
            }
            order.push((m.priority, i));
        }
        prop_assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "not lowest priority first, then FIFO: {:?}",
            order
        );
        let taken: HashSet<usize> = order.iter().map(|&(_, i)| i).collect();
        let surely_visible: Vec<(u32, usize)> = self
            .jobs
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                !taken.contains(i)
                    && match m.st {
                        St::Ready => true,
                        St::Delayed { hi, .. } => hi <= t0,
                        _ => false,
                    }
            })
            .map(|(i, m)| (m.priority, i))
            .collect();
        if got.len() < max {
            prop_assert!(
                surely_visible.is_empty(),
                "got {} of max {} but left visible {:?}",
                got.len(),
                max,
                surely_visible
            );
        } else if let Some(last) = order.last() {
            for v in &surely_visible {
                prop_assert!(v > last, "skipped {:?} but handed out {:?}", v, order);
            }
        }

        self.promote(t0, t1);
        for (r, &(_, i)) in got.iter().zip(&order) {
            let m = &mut self.jobs[i];
            m.attempts += 1;
            prop_assert_eq!(r.job.status, JobStatus::Processing);
            prop_assert_eq!(r.job.attempts, m.attempts);
            prop_assert!(r.job.started_at.is_some());
            prop_assert_eq!(r.job.payload.get(), m.payload.as_str());
            let receipt = r.receipt_handle.clone();
            // A receipt is new, except that a released attempt's handle comes back (see
            // `released_receipt_is_over_once_the_job_is_received_again`).
            prop_assert!(
                self.issued.get(&receipt) != Some(&false),
                "receipt {} handed out twice",
                receipt
            );
            self.issued.insert(receipt.clone(), false);
            m.receipts.push(receipt.clone());
            m.st = St::Processing {
                receipt: receipt.clone(),
            };
            self.outstanding[receiver].push((receipt, i));
        }
        self.check_snapshots_of(&got)?;
        Ok(got.len())
    }

    fn check_snapshots_of(&self, got: &[ReceivedJob]) -> TestResult {
        for r in got {
            self.check_snapshot(&r.job, self.by_id[&r.job.id])?;
        }
        Ok(())
    }

    /// A finished job leaves the dedup index and enters the history.
    fn finish(&mut self, i: usize) {
        if let Some(k) = self.jobs[i].key {
            if self.keys.get(&k) == Some(&i) {
                self.keys.remove(&k);
            }
        }
        self.history.push_back(i);
        while self.history.len() > self.max_history {
            let old = self.history.pop_front().unwrap();
            self.jobs[old].trimmed = true;
        }
    }

    fn settle(&mut self, receiver: usize, pick: Index, how: How) -> TestResult {
        let held = self.outstanding[receiver].len();
        if held == 0 {
            return Ok(());
        }
        self.settle_at(receiver, pick.index(held), how)
    }

    /// Settle the `k`th attempt `receiver` holds.
    fn settle_at(&mut self, receiver: usize, k: usize, how: How) -> TestResult {
        let (receipt, i) = self.outstanding[receiver][k].clone();
        let n = self.next();
        match how {
            How::Progress => {
                let p = (n % 101) as f64;
                self.q
                    .set_progress_now(&receipt, p)
                    .map_err(|e| TestCaseError::fail(format!("set_progress: {e}")))?;
                self.jobs[i].progress = Some(p);
                return Ok(());
            }
            How::Ack => {
                let result = format!(r#"{{"r":{n}}}"#);
                self.q
                    .acknowledge_now(&receipt, Some(raw_json(&result).unwrap()))
                    .map_err(|e| TestCaseError::fail(format!("acknowledge: {e}")))?;
                self.jobs[i].st = St::Completed;
                self.jobs[i].result = Some(result);
                self.finish(i);
            }
            How::Fail => {
                let error = format!("err-{n}");
                let t0 = now_ms();
                self.q
                    .fail_now(&receipt, &error)
                    .map_err(|e| TestCaseError::fail(format!("fail: {e}")))?;
                let t1 = now_ms();
                let m = &mut self.jobs[i];
                m.last_error = Some(error);
                if m.attempts <= m.max_retries {
                    let b = retry_backoff_ms(m.attempts) as Millis;
                    m.st = St::Delayed {
                        status: JobStatus::Failed,
                        lo: t0 + b,
                        hi: t1 + b,
                    };
                } else {
                    m.st = St::Dead;
                    self.finish(i);
                }
            }
            How::Release => {
                self.q
                    .release_now(&receipt)
                    .map_err(|e| TestCaseError::fail(format!("release: {e}")))?;
                let m = &mut self.jobs[i];
                m.attempts -= 1;
                m.st = St::Ready;
                self.issued.insert(receipt.clone(), true);
            }
        }
        self.outstanding[receiver].remove(k);
        self.settled.push(receipt);
        Ok(())
    }

    /// Settling with `receipt` must fail with `UnknownReceipt` and change nothing.
    fn refused(&self, receipt: &str, how: How) -> TestResult {
        let q = &self.q;
        let ok = match how {
            How::Ack => is_unknown_receipt(&q.acknowledge_now(receipt, None), receipt),
            How::Fail => is_unknown_receipt(&q.fail_now(receipt, "stale"), receipt),
            How::Release => is_unknown_receipt(&q.release_now(receipt), receipt),
            How::Progress => is_unknown_receipt(&q.set_progress_now(receipt, 50.0), receipt),
        };
        prop_assert!(ok, "{:?} with receipt {:?} was not refused", how, receipt);
        Ok(())
    }

    fn stale(&mut self, pick: Index, how: How) -> TestResult {
        if self.settled.is_empty() {
            return Ok(());
        }
        let receipt = self.settled[pick.index(self.settled.len())].clone();
        self.refused(&receipt, how)
    }

    fn forged(&mut self, pick: Index, form: u8, how: How) -> TestResult {
        let job = (!self.jobs.is_empty()).then(|| &self.jobs[pick.index(self.jobs.len())]);
        let receipt = match (form, job) {
            (0, _) | (_, None) => "nope".to_owned(),
            (1, _) => String::new(),
            (2, Some(m)) => m.id.clone(),
            (3, Some(m)) => format!("{}:{}", m.id, m.attempts + 1000),
            (4, Some(m)) => format!("{}:x", m.id),
            (5, Some(m)) => format!("{}:-1", m.id),
            // A well-formed id this queue never made.
            _ => "00000000-0000-8000-8000-000000000001:1".to_owned(),
        };
        self.refused(&receipt, how)
    }

    fn close(&mut self) {
        self.q.close_now();
        self.closed = true;
    }

    /// Receive and settle everything visible, settle every attempt still held, close, and
    /// check that each job ended once.
    fn drain(&mut self, plan: &[bool]) -> TestResult {
        let closed_early = self.closed;
        let mut step = 0;
        let mut ack = || {
            step += 1;
            plan[step % plan.len()]
        };
        if !self.closed {
            loop {
                let n = self.receive(0, 64, false)?;
                while !self.outstanding[0].is_empty() {
                    let how = if ack() { How::Ack } else { How::Fail };
                    self.settle_at(0, 0, how)?;
                }
                if n == 0 {
                    break;
                }
            }
            prop_assert!(
                !self.jobs.iter().any(|m| m.st == St::Ready),
                "visible jobs left after draining"
            );
        }
        for receiver in 0..RECEIVERS {
            while !self.outstanding[receiver].is_empty() {
                let how = if ack() { How::Ack } else { How::Fail };
                self.settle_at(receiver, 0, how)?;
            }
        }
        // Jobs still delayed now may come due (and show as pending) before the end.
        let delayed: HashSet<usize> = (0..self.jobs.len())
            .filter(|&i| matches!(self.jobs[i].st, St::Delayed { .. }))
            .collect();
        self.check_jobs()?;
        self.check_stats()?;

        if !self.closed {
            self.close();
        }
        self.enqueue(&Spec {
            priority: None,
            max_retries: None,
            key: None,
            delay: Delay::Unset,
        })?;
        self.bulk(&[Spec {
            priority: Some(1),
            max_retries: Some(0),
            key: Some(0),
            delay: Delay::Unset,
        }])?;
        self.receive(1, 8, false)?;
        self.receive(2, 8, true)?;

        // Every job ended (completed or dead) or is waiting out a delay or a backoff; one the
        // drain could not receive (closed early, or come due since) may still be pending.
        for (i, m) in self.jobs.iter().enumerate() {
            let ok = match m.st {
                St::Completed | St::Dead | St::Delayed { .. } => true,
                St::Ready => closed_early || delayed.contains(&i),
                St::Processing { .. } => false,
            };
            prop_assert!(ok, "job {} is {:?} after the drain", i, m.st);
        }
        // Every receipt ever handed out is over: settling again is refused, nothing changes.
        let receipts: Vec<String> = self.issued.keys().cloned().collect();
        for r in &receipts {
            for how in [How::Ack, How::Fail, How::Release, How::Progress] {
                self.refused(r, how)?;
            }
        }
        self.check_jobs()?;
        self.check_stats()?;
        Ok(())
    }
}

fn run(case: Case) -> TestResult {
    let mut m = Model::new(case.max_history);
    let close_at = case.close_at.map(|x| x.index(case.ops.len()));
    for (step, op) in case.ops.iter().enumerate() {
        if close_at == Some(step) {
            m.close();
        }
        match op {
            Op::Enqueue(spec) => m.enqueue(spec)?,
            Op::Bulk(specs) => m.bulk(specs)?,
            Op::Receive {
                receiver,
                max,
                wait_api,
            } => {
                m.receive(*receiver, *max, *wait_api)?;
            }
            Op::Settle {
                receiver,
                pick,
                how,
            } => m.settle(*receiver, *pick, *how)?,
            Op::Stale { pick, how } => m.stale(*pick, *how)?,
            Op::Forged { pick, form, how } => m.forged(*pick, *form, *how)?,
            Op::Stats => m.check_stats()?,
            Op::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
        }
        m.check_jobs()?;
        if case.stats_every_step {
            m.check_stats()?;
        }
    }
    m.drain(&case.drain_plan)
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 256 cases unless PROPTEST_CASES says otherwise; no regression files in the crate.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn memory_queue_matches_model(case in case()) {
        run(case)?;
    }
}

/// A released attempt is over, so its handle must be refused — but the memory queue names a
/// receipt `<job id>:<attempt>` and a release gives the attempt back, so the job's next
/// attempt gets the very same handle and the released holder can settle it.
#[test]
fn released_receipt_is_over_once_the_job_is_received_again() {
    let q = MemoryQueue::new(MemoryConfig::default());
    let job = NewJob::new(JOB_TYPE, raw_json("{}").unwrap(), Default::default());
    let id = q.enqueue_now(job).unwrap().id;
    let first = q.try_receive(1).pop().unwrap();
    q.release_now(&first.receipt_handle).unwrap();
    let second = q.try_receive(1).pop().unwrap();
    assert_eq!(second.job.id, id);
    assert!(
        matches!(
            q.acknowledge_now(&first.receipt_handle, None),
            Err(QueueError::UnknownReceipt(_))
        ),
        "the released handle {} settled the next attempt (handle {})",
        first.receipt_handle,
        second.receipt_handle
    );
    q.acknowledge_now(&second.receipt_handle, None).unwrap();
}
