//! The in-memory provider: a priority queue with delayed jobs, receipt handles and history.
//! Every operation is O(log n) in the jobs held; receivers wake on enqueue, delays need no timers.

use crate::admin::{Cursor, JobFilter, JobPage};
use crate::config::MemoryConfig;
use crate::error::{QueueError, Result};
use crate::events::{Signal, Signals};
use crate::job::{
    has_retries_left, now_ms, retry_backoff_ms, Job, JobOptions, JobStatus, Millis, NewJob,
    QueueStats, ReceivedJob,
};
use crate::joblog::{JobLogs, LogBuffer, LogLine};
use crate::provider::Immediate;
use serde_json::value::RawValue;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use uuid::Uuid;

/// The in-memory queue. Cheap to share: wrap it in an `Arc`.
pub struct MemoryQueue {
    state: Mutex<State>,
    /// Wakes receivers blocked in [`MemoryQueue::receive`].
    wake: Notify,
    /// High half of every job id this queue makes: job ids are UUIDs (version 8) whose low
    /// half is the job's sequence number, so an id finds its job without a second index.
    id_tag: u64,
    /// Tells this process's workers of cancelled running jobs.
    signals: Signals,
}

/// One job, kept compact: a pending job costs this struct, its map slot and its place in a set.
struct Entry {
    job_type: Arc<str>,
    payload: Box<RawValue>,
    created_at: Millis,
    /// When a `scheduled` or `failed` job becomes visible (0: not delayed).
    visible_at: Millis,
    /// Milliseconds, capped at `u32::MAX` (49 days) so the entry stays at 80 bytes.
    timeout: u32,
    priority: u32,
    max_retries: u32,
    attempts: u32,
    /// Times handed to a receiver (never decremented, unlike `attempts` on release): the
    /// receipt's number, so a receipt whose hand-out is over never settles a later one.
    deliveries: u32,
    status: JobStatus,
    /// Fields most pending jobs never have.
    extra: Option<Box<Extra>>,
}

#[derive(Default)]
struct Extra {
    deduplication_key: Option<Box<str>>,
    /// W3C trace context of the enqueue (`traceparent`, `tracestate`).
    trace: Option<(Box<str>, Option<Box<str>>)>,
    scheduled_for: Option<Millis>,
    started_at: Option<Millis>,
    completed_at: Option<Millis>,
    last_error: Option<Box<str>>,
    progress: Option<f64>,
    result: Option<Box<RawValue>>,
    /// `ctx.log` lines (none until a handler logs).
    logs: Option<Box<LogBuffer>>,
}

impl Entry {
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Default::default)
    }
}

/// A job just queued, as [`MemoryQueue::enqueue_viewing`] shows it.
pub struct JobView<'a> {
    queue: &'a MemoryQueue,
    seq: u64,
    entry: &'a Entry,
    /// False when a deduplication key matched an unfinished job, which this is.
    pub is_new: bool,
}

impl JobView<'_> {
    pub fn uuid(&self) -> Uuid {
        self.queue.job_uuid(self.seq)
    }
    pub fn created_at(&self) -> Millis {
        self.entry.created_at
    }
    pub fn status(&self) -> JobStatus {
        self.entry.status
    }
    pub fn scheduled_for(&self) -> Option<Millis> {
        self.entry.extra.as_ref().and_then(|x| x.scheduled_for)
    }
    /// `(maxRetries, timeout, priority)` as stored.
    pub fn options(&self) -> (u32, u64, u32) {
        let e = self.entry;
        (e.max_retries, u64::from(e.timeout), e.priority)
    }
    /// The whole job, as `getJob` shows it.
    pub fn snapshot(&self) -> Job {
        self.queue.snapshot(self.seq, self.entry)
    }
}

/// Hashing for sequence numbers (ours, never a caller's, so an unkeyed hash is safe). The low
/// bits are the number itself, so jobs queued together sit in neighbouring buckets and a
/// bulk enqueue or a FIFO drain walks the table in order instead of missing the cache on
/// every job; the top 7 bits, which the table compares before keys, are a mix of it.
#[derive(Clone, Copy, Default)]
struct SeqHash;

#[derive(Default)]
struct SeqHasher(u64);

impl std::hash::BuildHasher for SeqHash {
    type Hasher = SeqHasher;
    fn build_hasher(&self) -> SeqHasher {
        SeqHasher(0)
    }
}

impl std::hash::Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        let mix = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFE00_0000_0000_0000;
        self.0 ^ mix
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct State {
    closed: bool,
    next_seq: u64,
    /// By sequence number, hashed by [`SeqHash`].
    jobs: HashMap<u64, Box<Entry>, SeqHash>,
    /// Visible jobs: lower priority first, then first in, first out.
    ready: BTreeSet<(u32, u64)>,
    /// Delayed and backing-off jobs, by the time they become visible.
    delayed: BTreeSet<(Millis, u64)>,
    /// Deduplication keys of unfinished jobs.
    dedup: HashMap<Box<str>, u64>,
    /// Finished jobs, oldest first, trimmed to `max_history`.
    history: VecDeque<u64>,
    max_history: usize,
    /// Every job type seen, shared by the jobs of that type.
    types: HashSet<Arc<str>>,
    /// The type interned last: a bulk of one type, the usual case, skips hashing each job's.
    last_type: Option<Arc<str>>,
    stats: QueueStats,
    /// `pause()` of everything: nothing is handed out.
    paused_all: bool,
    /// Types paused one by one: their jobs stay queued until resumed.
    paused_types: HashSet<Arc<str>>,
}

impl State {
    fn count(&mut self, status: JobStatus) -> &mut u64 {
        let s = &mut self.stats;
        match status {
            JobStatus::Pending => &mut s.pending,
            JobStatus::Scheduled => &mut s.scheduled,
            JobStatus::Processing => &mut s.processing,
            JobStatus::Completed => &mut s.completed,
            JobStatus::Failed => &mut s.failed,
            JobStatus::Dead => &mut s.dead,
            JobStatus::Cancelled => &mut s.cancelled,
        }
    }

    fn set_status(&mut self, seq: u64, to: JobStatus) {
        let Some(e) = self.jobs.get_mut(&seq) else {
            return;
        };
        let from = std::mem::replace(&mut e.status, to);
        *self.count(from) -= 1;
        *self.count(to) += 1;
    }

    fn intern(&mut self, t: &str) -> Arc<str> {
        if let Some(a) = self.last_type.as_ref().filter(|a| ***a == *t) {
            return a.clone();
        }
        let a = match self.types.get(t) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<str> = Arc::from(t);
                self.types.insert(a.clone());
                a
            }
        };
        self.last_type = Some(a.clone());
        a
    }

    /// Make delayed jobs whose time has come visible.
    fn promote(&mut self, now: Millis) {
        while let Some(&(at, seq)) = self.delayed.first() {
            if at > now {
                break;
            }
            self.delayed.pop_first();
            self.set_status(seq, JobStatus::Pending);
            if let Some(e) = self.jobs.get(&seq) {
                let p = e.priority;
                self.ready.insert((p, seq));
            }
        }
    }

    /// A finished job: out of the dedup index, into the history, trimmed.
    fn finish(&mut self, seq: u64) {
        // The job keeps its key (getJob shows it); only the index forgets it.
        if let Some(key) = self
            .jobs
            .get(&seq)
            .and_then(|e| e.extra.as_ref()?.deduplication_key.as_deref())
        {
            if self.dedup.get(key) == Some(&seq) {
                self.dedup.remove(key);
            }
        }
        self.history.push_back(seq);
        while self.history.len() > self.max_history {
            if let Some(old) = self.history.pop_front() {
                if let Some(e) = self.jobs.remove(&old) {
                    *self.count(e.status) -= 1;
                }
            }
        }
    }
}

impl MemoryQueue {
    pub fn new(config: MemoryConfig) -> Arc<MemoryQueue> {
        let (hi, _) = Uuid::new_v4().as_u64_pair();
        // Version 8 (custom) in the version nibble of the high half.
        let id_tag = (hi & !0xF000) | 0x8000;
        Arc::new(MemoryQueue {
            state: Mutex::new(State {
                closed: false,
                next_seq: 1,
                jobs: HashMap::default(),
                ready: BTreeSet::new(),
                delayed: BTreeSet::new(),
                dedup: HashMap::new(),
                history: VecDeque::new(),
                max_history: config.max_history_size,
                types: HashSet::new(),
                last_type: None,
                stats: QueueStats::default(),
                paused_all: false,
                paused_types: HashSet::new(),
            }),
            wake: Notify::new(),
            id_tag,
            signals: Signals::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state for a queue of
        // independent jobs; keep serving rather than poisoning every later call.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn job_uuid(&self, seq: u64) -> Uuid {
        // RFC 4122 variant bits in the top of the low half; sequence numbers stay below 2^62.
        Uuid::from_u64_pair(self.id_tag, seq | 0x8000_0000_0000_0000)
    }

    fn job_id(&self, seq: u64) -> String {
        self.job_uuid(seq).hyphenated().to_string()
    }

    fn seq_of(&self, id: &str) -> Option<u64> {
        let (hi, lo) = Uuid::try_parse(id).ok()?.as_u64_pair();
        (hi == self.id_tag).then_some(lo & !0xC000_0000_0000_0000)
    }

    /// `(seq, delivery)` of a receipt handle `"<job id>:<delivery>"`.
    fn parse_receipt(&self, receipt: &str) -> Option<(u64, u32)> {
        let (id, attempt) = receipt.rsplit_once(':')?;
        Some((self.seq_of(id)?, attempt.parse().ok()?))
    }

    fn snapshot(&self, seq: u64, e: &Entry) -> Job {
        let x = e.extra.as_deref();
        Job {
            id: self.job_id(seq),
            job_type: e.job_type.to_string(),
            payload: e.payload.clone(),
            options: JobOptions {
                max_retries: e.max_retries,
                timeout: u64::from(e.timeout),
                priority: e.priority,
                deduplication_key: x
                    .and_then(|x| x.deduplication_key.as_deref().map(str::to_owned)),
                traceparent: x.and_then(|x| x.trace.as_ref().map(|t| t.0.to_string())),
                tracestate: x.and_then(|x| {
                    x.trace
                        .as_ref()
                        .and_then(|t| t.1.as_deref().map(str::to_owned))
                }),
            },
            status: e.status,
            attempts: e.attempts,
            created_at: e.created_at,
            scheduled_for: x.and_then(|x| x.scheduled_for),
            started_at: x.and_then(|x| x.started_at),
            completed_at: x.and_then(|x| x.completed_at),
            last_error: x.and_then(|x| x.last_error.as_deref().map(str::to_owned)),
            progress: x.and_then(|x| x.progress),
            result: x.and_then(|x| x.result.clone()),
        }
    }

    /// Queue one job under the lock; returns its seq and whether it is new.
    fn insert(&self, st: &mut State, job: NewJob, now: Millis) -> (u64, bool) {
        let NewJob {
            job_type,
            payload,
            options,
        } = job;
        if let Some(key) = options.deduplication_key.as_deref() {
            if let Some(&seq) = st.dedup.get(key) {
                return (seq, false);
            }
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let o = options.job_options();
        let visible_at = options.visible_at(now);
        let status = if visible_at.is_some() {
            JobStatus::Scheduled
        } else {
            JobStatus::Pending
        };
        let mut entry = Entry {
            job_type: st.intern(&job_type),
            payload,
            created_at: now,
            visible_at: visible_at.unwrap_or(0),
            timeout: u32::try_from(o.timeout).unwrap_or(u32::MAX),
            priority: o.priority,
            max_retries: o.max_retries,
            attempts: 0,
            deliveries: 0,
            status,
            extra: None,
        };
        if let Some(key) = o.deduplication_key {
            let key: Box<str> = key.into();
            st.dedup.insert(key.clone(), seq);
            entry.extra().deduplication_key = Some(key);
        }
        if let Some(tp) = o.traceparent {
            entry.extra().trace = Some((tp.into(), o.tracestate.map(Into::into)));
        }
        match visible_at {
            Some(at) => {
                entry.extra().scheduled_for = Some(at);
                st.delayed.insert((at, seq));
            }
            None => {
                st.ready.insert((o.priority, seq));
            }
        }
        st.jobs.insert(seq, Box::new(entry));
        *st.count(status) += 1;
        (seq, true)
    }

    /// The one enqueue: queue `jobs` under one lock (all at the same `createdAt`), wake
    /// receivers, and return `view` of each job as queued (the existing job for a duplicate
    /// deduplication key). [`Immediate::enqueue_now`] views a whole [`Job`]; the binding's
    /// fast path reads only what it does not already hold.
    pub fn enqueue_viewing<T>(
        &self,
        jobs: Vec<NewJob>,
        mut view: impl FnMut(JobView<'_>) -> T,
    ) -> Result<Vec<T>> {
        let now = now_ms();
        let out = {
            let mut st = self.lock();
            if st.closed {
                return Err(QueueError::Closed);
            }
            let mut out = Vec::with_capacity(jobs.len());
            for job in jobs {
                let (seq, is_new) = self.insert(&mut st, job, now);
                if let Some(entry) = st.jobs.get(&seq) {
                    out.push(view(JobView {
                        queue: self,
                        seq,
                        entry,
                        is_new,
                    }));
                }
            }
            out
        };
        self.wake.notify_waiters();
        Ok(out)
    }

    /// The processing entry a receipt handle names, if that attempt is still open; `None`
    /// when the job was cancelled during that attempt (whose outcome is then discarded).
    fn open_attempt<'a>(
        &self,
        st: &'a mut State,
        receipt: &str,
    ) -> Result<Option<(u64, &'a mut Entry)>> {
        let unknown = || QueueError::UnknownReceipt(receipt.to_owned());
        let (seq, delivery) = self.parse_receipt(receipt).ok_or_else(unknown)?;
        match st.jobs.get_mut(&seq) {
            Some(e) if e.status == JobStatus::Processing && e.deliveries == delivery => {
                Ok(Some((seq, &mut **e)))
            }
            Some(e) if e.status == JobStatus::Cancelled && e.deliveries == delivery => Ok(None),
            _ => Err(unknown()),
        }
    }

    /// Take `seq` out of the visible or the delayed set, whichever holds it.
    fn unqueue(st: &mut State, seq: u64) {
        let Some(e) = st.jobs.get(&seq) else {
            return;
        };
        let (p, at, status) = (e.priority, e.visible_at, e.status);
        match status {
            JobStatus::Pending => {
                st.ready.remove(&(p, seq));
            }
            JobStatus::Scheduled | JobStatus::Failed => {
                st.delayed.remove(&(at, seq));
            }
            _ => {}
        }
    }

    fn is_paused(st: &State, job_type: &str) -> bool {
        st.paused_all || st.paused_types.contains(job_type)
    }

    /// Whether the visible job at `key` is of a type not paused.
    fn takeable(&self, st: &State, key: &(u32, u64)) -> bool {
        st.jobs
            .get(&key.1)
            .is_some_and(|e| !Self::is_paused(st, &e.job_type))
    }
}

impl Immediate for MemoryQueue {
    fn provider_name(&self) -> &'static str {
        "memory"
    }

    fn enqueue_now(&self, job: NewJob) -> Result<Job> {
        let mut jobs = self.enqueue_viewing(vec![job], |v| v.snapshot())?;
        jobs.pop()
            .ok_or_else(|| QueueError::invalid("nothing was enqueued"))
    }

    fn enqueue_bulk_now(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        self.enqueue_viewing(jobs, |v| v.snapshot())
    }

    fn take(&self, max: usize) -> (Vec<ReceivedJob>, Option<Millis>) {
        let now = now_ms();
        let mut st = self.lock();
        if st.closed {
            return (Vec::new(), None);
        }
        st.promote(now);
        let mut out = Vec::with_capacity(max.min(st.ready.len()));
        if st.paused_all {
            return (out, None);
        }
        // Jobs of paused types stay in `ready`, in their place, and are stepped over.
        let mut skip_to = None;
        while out.len() < max {
            let next = if st.paused_types.is_empty() {
                st.ready.pop_first()
            } else {
                let found = match skip_to {
                    None => st.ready.iter().find(|k| self.takeable(&st, k)).copied(),
                    Some(from) => st
                        .ready
                        .range(from..)
                        .find(|k| self.takeable(&st, k))
                        .copied(),
                };
                if let Some(k) = found {
                    st.ready.remove(&k);
                    skip_to = Some(k);
                }
                found
            };
            let Some((_, seq)) = next else {
                break;
            };
            st.set_status(seq, JobStatus::Processing);
            let Some(e) = st.jobs.get_mut(&seq) else {
                continue;
            };
            e.attempts += 1;
            e.deliveries += 1;
            e.extra().started_at = Some(now);
            let delivery = e.deliveries;
            let job = self.snapshot(seq, e);
            let receipt_handle = format!("{}:{delivery}", job.id);
            out.push(ReceivedJob {
                job,
                receipt_handle,
            });
        }
        let next = st.delayed.first().map(|&(at, _)| at);
        (out, next)
    }

    fn acknowledge_now(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()> {
        let mut st = self.lock();
        let Some((seq, e)) = self.open_attempt(&mut st, receipt)? else {
            return Ok(());
        };
        let x = e.extra();
        x.completed_at = Some(now_ms());
        x.result = result;
        st.set_status(seq, JobStatus::Completed);
        st.finish(seq);
        Ok(())
    }

    fn fail_now(&self, receipt: &str, error: &str) -> Result<()> {
        let now = now_ms();
        let retry = {
            let mut st = self.lock();
            let Some((seq, e)) = self.open_attempt(&mut st, receipt)? else {
                return Ok(());
            };
            e.extra().last_error = Some(error.into());
            let opts = JobOptions {
                max_retries: e.max_retries,
                ..Default::default()
            };
            if has_retries_left(e.attempts, &opts) {
                let at = now + retry_backoff_ms(e.attempts) as Millis;
                e.visible_at = at;
                st.set_status(seq, JobStatus::Failed);
                st.delayed.insert((at, seq));
                true
            } else {
                e.extra().completed_at = Some(now);
                st.set_status(seq, JobStatus::Dead);
                st.finish(seq);
                false
            }
        };
        if retry {
            // A receiver sleeping until a later delayed job must recompute its wake-up.
            self.wake.notify_waiters();
        }
        Ok(())
    }

    fn release_now(&self, receipt: &str) -> Result<()> {
        {
            let mut st = self.lock();
            let Some((seq, e)) = self.open_attempt(&mut st, receipt)? else {
                return Ok(());
            };
            e.attempts = e.attempts.saturating_sub(1);
            let p = e.priority;
            st.set_status(seq, JobStatus::Pending);
            st.ready.insert((p, seq));
        }
        self.wake.notify_waiters();
        Ok(())
    }

    fn set_progress_now(&self, receipt: &str, percent: f64) -> Result<()> {
        let mut st = self.lock();
        if let Some((_, e)) = self.open_attempt(&mut st, receipt)? {
            e.extra().progress = Some(percent);
        }
        Ok(())
    }

    fn append_log_now(&self, receipt: &str, line: LogLine) -> Result<()> {
        let mut st = self.lock();
        if let Some((_, e)) = self.open_attempt(&mut st, receipt)? {
            e.extra()
                .logs
                .get_or_insert_with(Default::default)
                .push(line);
        }
        Ok(())
    }

    fn get_job_logs_now(&self, id: &str) -> Option<JobLogs> {
        let seq = self.seq_of(id)?;
        let st = self.lock();
        let e = st.jobs.get(&seq)?;
        let logs = e.extra.as_ref().and_then(|x| x.logs.as_ref());
        Some(logs.map(|l| l.snapshot()).unwrap_or_default())
    }

    fn get_job_now(&self, id: &str) -> Option<Job> {
        let seq = self.seq_of(id)?;
        let st = self.lock();
        st.jobs.get(&seq).map(|e| self.snapshot(seq, e))
    }

    fn stats_now(&self) -> QueueStats {
        let now = now_ms();
        let mut st = self.lock();
        st.promote(now);
        st.stats
    }

    fn close_now(&self) {
        self.lock().closed = true;
        self.wake.notify_waiters();
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn wake(&self) -> &Notify {
        &self.wake
    }

    fn list_jobs_now(&self, filter: JobFilter) -> Result<JobPage> {
        let limit = filter.limit()?;
        // Newest first is highest sequence first (sequence follows `createdAt`); a cursor
        // from another queue starts nowhere.
        let before = match filter.position()? {
            None => u64::MAX,
            Some(c) => self.seq_of(&c.id).unwrap_or(0),
        };
        let st = self.lock();
        let matches = |e: &Entry| {
            filter.status.is_none_or(|s| e.status == s)
                && filter.job_type.as_deref().is_none_or(|t| &*e.job_type == t)
        };
        // The `limit + 1` highest matching sequence numbers below the cursor, in one pass.
        let mut top = std::collections::BinaryHeap::with_capacity(limit + 2);
        for (&seq, e) in st.jobs.iter() {
            if seq < before && matches(e) {
                top.push(std::cmp::Reverse(seq));
                if top.len() > limit + 1 {
                    top.pop();
                }
            }
        }
        let mut seqs: Vec<u64> = top.into_iter().map(|r| r.0).collect();
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        let more = seqs.len() > limit;
        seqs.truncate(limit);
        let jobs: Vec<Job> = seqs
            .iter()
            .filter_map(|seq| st.jobs.get(seq).map(|e| self.snapshot(*seq, e)))
            .collect();
        let next_cursor = if more {
            jobs.last().map(|j| Cursor::after(j).encode())
        } else {
            None
        };
        Ok(JobPage { jobs, next_cursor })
    }

    fn retry_job_now(&self, id: &str) -> bool {
        let Some(seq) = self.seq_of(id) else {
            return false;
        };
        {
            let mut st = self.lock();
            let Some(status) = st.jobs.get(&seq).map(|e| e.status) else {
                return false;
            };
            match status {
                JobStatus::Failed => Self::unqueue(&mut st, seq),
                JobStatus::Dead => {
                    if let Some(i) = st.history.iter().rposition(|&s| s == seq) {
                        st.history.remove(i);
                    }
                }
                _ => return false,
            }
            let Some(e) = st.jobs.get_mut(&seq) else {
                return false;
            };
            e.visible_at = 0;
            let p = e.priority;
            let key = e.extra.as_deref_mut().and_then(|x| {
                x.completed_at = None;
                x.deduplication_key.clone()
            });
            if let Some(key) = key {
                st.dedup.entry(key).or_insert(seq);
            }
            st.set_status(seq, JobStatus::Pending);
            st.ready.insert((p, seq));
        }
        self.wake.notify_waiters();
        true
    }

    fn cancel_job_now(&self, id: &str) -> bool {
        let Some(seq) = self.seq_of(id) else {
            return false;
        };
        let mut st = self.lock();
        let running = match st.jobs.get(&seq).map(|e| e.status) {
            Some(JobStatus::Pending | JobStatus::Scheduled | JobStatus::Failed) => false,
            Some(JobStatus::Processing) => true,
            _ => return false,
        };
        Self::unqueue(&mut st, seq);
        if let Some(e) = st.jobs.get_mut(&seq) {
            e.extra().completed_at = Some(now_ms());
        }
        st.set_status(seq, JobStatus::Cancelled);
        st.finish(seq);
        drop(st);
        if running {
            self.signals.send(Signal::Cancelled(id.to_owned()));
        }
        true
    }

    fn pause_now(&self, job_type: Option<&str>) {
        let mut st = self.lock();
        match job_type {
            None => st.paused_all = true,
            Some(t) => {
                let t = st.intern(t);
                st.paused_types.insert(t);
            }
        }
    }

    fn resume_now(&self, job_type: Option<&str>) {
        {
            let mut st = self.lock();
            match job_type {
                None => {
                    st.paused_all = false;
                    st.paused_types.clear();
                }
                Some(t) => {
                    st.paused_types.remove(t);
                }
            }
        }
        self.wake.notify_waiters();
    }

    fn signals_now(&self) -> Option<&Signals> {
        Some(&self.signals)
    }

    fn paused_now(&self) -> Vec<Option<String>> {
        let st = self.lock();
        let mut out: Vec<Option<String>> = st
            .paused_types
            .iter()
            .map(|t| Some(t.to_string()))
            .collect();
        out.sort();
        if st.paused_all {
            out.insert(0, None);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{raw_json, EnqueueOptions};
    use crate::provider::QueueProvider;
    use std::time::Duration;

    fn q(history: usize) -> Arc<MemoryQueue> {
        MemoryQueue::new(MemoryConfig {
            max_history_size: history,
        })
    }

    fn job(t: &str, o: EnqueueOptions) -> NewJob {
        NewJob::new(t, raw_json(r#"{"n":1}"#).unwrap(), o)
    }

    #[test]
    fn a_pending_job_costs_one_80_byte_entry() {
        // RSS per pending job is a target (≤ 300 bytes); the entry is most of it.
        assert!(std::mem::size_of::<Entry>() <= 80);
    }

    #[test]
    fn job_types_are_shared_and_kept_apart() {
        // A bulk of mixed types: the last-type shortcut must never give a job another's type.
        let q = q(10);
        let types = ["a", "b", "b", "a", "ab", "a"];
        let jobs = q
            .enqueue_bulk_now(types.iter().map(|t| job(t, Default::default())).collect())
            .unwrap();
        let got: Vec<String> = jobs
            .iter()
            .map(|j| q.get_job_now(&j.id).unwrap().job_type)
            .collect();
        assert_eq!(got, types);
        let st = q.lock();
        assert_eq!(st.types.len(), 3);
        let a: Vec<&Arc<str>> = st
            .jobs
            .values()
            .filter(|e| &*e.job_type == "a")
            .map(|e| &e.job_type)
            .collect();
        assert!(
            a.windows(2).all(|w| Arc::ptr_eq(w[0], w[1])),
            "one Arc per type"
        );
    }

    #[test]
    fn ids_round_trip_and_foreign_ids_miss() {
        let q = q(10);
        let j = q.enqueue_now(job("a", Default::default())).unwrap();
        assert_eq!(q.get_job_now(&j.id).unwrap().id, j.id);
        assert!(Uuid::parse_str(&j.id).is_ok());
        assert!(q.get_job_now(&Uuid::new_v4().to_string()).is_none());
        assert!(q.get_job_now("nope").is_none());
    }

    #[test]
    fn priority_then_fifo() {
        let q = q(10);
        let p = |n| EnqueueOptions {
            priority: Some(n),
            ..Default::default()
        };
        let a = q.enqueue_now(job("a", p(5))).unwrap();
        let b = q.enqueue_now(job("b", p(1))).unwrap();
        let c = q.enqueue_now(job("c", p(5))).unwrap();
        let got: Vec<String> = q.try_receive(10).into_iter().map(|r| r.job.id).collect();
        assert_eq!(got, vec![b.id, a.id, c.id]);
    }

    #[test]
    fn dedup_returns_existing_until_finished() {
        let q = q(10);
        let d = || EnqueueOptions {
            deduplication_key: Some("k".into()),
            ..Default::default()
        };
        let a = q.enqueue_now(job("a", d())).unwrap();
        let b = q.enqueue_now(job("a", d())).unwrap();
        assert_eq!(a.id, b.id);
        let r = q.try_receive(1).pop().unwrap();
        q.acknowledge_now(&r.receipt_handle, None).unwrap();
        let c = q.enqueue_now(job("a", d())).unwrap();
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn fail_backs_off_then_dies() {
        let q = q(10);
        let o = EnqueueOptions {
            max_retries: Some(1),
            ..Default::default()
        };
        let j = q.enqueue_now(job("a", o)).unwrap();
        let r = q.try_receive(1).pop().unwrap();
        assert_eq!(r.job.attempts, 1);
        q.fail_now(&r.receipt_handle, "boom").unwrap();
        let s = q.get_job_now(&j.id).unwrap();
        assert_eq!(s.status, JobStatus::Failed);
        assert_eq!(s.last_error.as_deref(), Some("boom"));
        assert!(q.try_receive(1).is_empty(), "backoff hides the job");
        // Stale handle after the attempt ended.
        assert!(matches!(
            q.fail_now(&r.receipt_handle, "x"),
            Err(QueueError::UnknownReceipt(_))
        ));
        // Skip the backoff.
        {
            let mut st = q.lock();
            let (_, seq) = st.delayed.pop_first().unwrap();
            st.delayed.insert((0, seq));
        }
        let r2 = q.try_receive(1).pop().unwrap();
        assert_eq!(r2.job.attempts, 2);
        q.fail_now(&r2.receipt_handle, "again").unwrap();
        assert_eq!(q.get_job_now(&j.id).unwrap().status, JobStatus::Dead);
        assert_eq!(q.stats_now().dead, 1);
    }

    #[test]
    fn history_is_trimmed() {
        let q = q(2);
        let ids: Vec<String> = (0..4)
            .map(|_| q.enqueue_now(job("a", Default::default())).unwrap().id)
            .collect();
        for r in q.try_receive(4) {
            q.acknowledge_now(&r.receipt_handle, None).unwrap();
        }
        assert!(q.get_job_now(&ids[0]).is_none());
        assert!(q.get_job_now(&ids[1]).is_none());
        assert_eq!(q.get_job_now(&ids[3]).unwrap().status, JobStatus::Completed);
        assert_eq!(q.stats_now().completed, 2);
    }

    #[tokio::test]
    async fn delayed_job_wakes_a_waiting_receiver() {
        let q = q(10);
        let o = EnqueueOptions {
            delay: Some(50),
            ..Default::default()
        };
        q.enqueue_now(job("a", o)).unwrap();
        assert_eq!(q.stats_now().scheduled, 1);
        let t = std::time::Instant::now();
        let got = q.receive(1, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.len(), 1);
        assert!(t.elapsed() >= Duration::from_millis(40));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn close_wakes_receivers_with_nothing() {
        let q = q(10);
        let q2 = q.clone();
        let h = tokio::spawn(async move { q2.receive(1, Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.close_now();
        assert!(h.await.unwrap().unwrap().is_empty());
        assert!(matches!(
            q.enqueue_now(job("a", Default::default())),
            Err(QueueError::Closed)
        ));
    }

    fn page(q: &MemoryQueue, f: JobFilter) -> (Vec<String>, Option<String>) {
        let p = q.list_jobs_now(f).unwrap();
        (p.jobs.into_iter().map(|j| j.id).collect(), p.next_cursor)
    }

    #[test]
    fn list_jobs_pages_newest_first_and_filters() {
        let q = q(100);
        let ids: Vec<String> = (0..5)
            .map(|i| {
                let t = if i % 2 == 0 { "even" } else { "odd" };
                q.enqueue_now(job(t, Default::default())).unwrap().id
            })
            .collect();
        let f = |limit, cursor| JobFilter {
            limit: Some(limit),
            cursor,
            ..Default::default()
        };
        let (a, c1) = page(&q, f(2, None));
        assert_eq!(a, vec![ids[4].clone(), ids[3].clone()]);
        let (b, c2) = page(&q, f(2, c1));
        assert_eq!(b, vec![ids[2].clone(), ids[1].clone()]);
        let (c, c3) = page(&q, f(2, c2));
        assert_eq!(c, vec![ids[0].clone()]);
        assert!(c3.is_none());
        let (odd, _) = page(
            &q,
            JobFilter {
                job_type: Some("odd".into()),
                ..Default::default()
            },
        );
        assert_eq!(odd, vec![ids[3].clone(), ids[1].clone()]);
        let r = q.try_receive(1).pop().unwrap();
        let (running, _) = page(
            &q,
            JobFilter {
                status: Some(JobStatus::Processing),
                ..Default::default()
            },
        );
        assert_eq!(running, vec![r.job.id]);
        assert!(q.list_jobs_now(f(0, None)).is_err());
        assert!(q.list_jobs_now(f(1, Some("junk".into()))).is_err());
    }

    #[test]
    fn retry_brings_a_dead_job_back_with_its_attempts() {
        let q = q(10);
        let o = EnqueueOptions {
            max_retries: Some(0),
            ..Default::default()
        };
        let j = q.enqueue_now(job("a", o)).unwrap();
        assert!(!q.retry_job_now(&j.id), "a pending job is not retried");
        let r = q.try_receive(1).pop().unwrap();
        q.fail_now(&r.receipt_handle, "boom").unwrap();
        assert_eq!(q.stats_now().dead, 1);
        assert!(q.retry_job_now(&j.id));
        let s = q.get_job_now(&j.id).unwrap();
        assert_eq!((s.status, s.attempts), (JobStatus::Pending, 1));
        assert_eq!((q.stats_now().dead, q.stats_now().pending), (0, 1));
        let r = q.try_receive(1).pop().unwrap();
        assert_eq!(r.job.id, j.id);
        assert_eq!(r.job.attempts, 2);
    }

    #[test]
    fn cancel_pending_and_running_jobs() {
        let q = q(10);
        let a = q.enqueue_now(job("a", Default::default())).unwrap();
        let b = q.enqueue_now(job("b", Default::default())).unwrap();
        let r = q.try_receive(1).pop().unwrap();
        assert_eq!(r.job.id, a.id);
        assert!(q.cancel_job_now(&b.id));
        assert!(q.cancel_job_now(&a.id));
        assert!(!q.cancel_job_now(&a.id), "already cancelled");
        // The running attempt's outcome is discarded.
        q.acknowledge_now(&r.receipt_handle, None).unwrap();
        assert_eq!(q.get_job_now(&a.id).unwrap().status, JobStatus::Cancelled);
        assert_eq!(q.get_job_now(&b.id).unwrap().status, JobStatus::Cancelled);
        let s = q.stats_now();
        assert_eq!(
            (s.cancelled, s.pending, s.processing, s.completed),
            (2, 0, 0, 0)
        );
        assert!(q.try_receive(5).is_empty());
    }

    #[test]
    fn pause_by_type_and_all_then_resume() {
        let q = q(10);
        let a = q.enqueue_now(job("a", Default::default())).unwrap();
        let b = q.enqueue_now(job("b", Default::default())).unwrap();
        q.pause_now(Some("a"));
        assert_eq!(q.paused_now(), vec![Some("a".to_owned())]);
        let got: Vec<String> = q.try_receive(5).into_iter().map(|r| r.job.id).collect();
        assert_eq!(got, vec![b.id]);
        q.pause_now(None);
        q.enqueue_now(job("c", Default::default())).unwrap();
        assert!(q.try_receive(5).is_empty());
        q.resume_now(Some("a"));
        assert!(q.try_receive(5).is_empty(), "everything is still paused");
        q.resume_now(None);
        assert!(q.paused_now().is_empty());
        let got: Vec<String> = q.try_receive(5).into_iter().map(|r| r.job.id).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], a.id);
    }

    #[tokio::test]
    async fn resume_wakes_a_waiting_receiver() {
        let q = q(10);
        q.pause_now(None);
        q.enqueue_now(job("a", Default::default())).unwrap();
        let q2 = q.clone();
        let h = tokio::spawn(async move { q2.receive(1, Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!h.is_finished());
        q.resume_now(None);
        let got = tokio::time::timeout(Duration::from_secs(2), h).await;
        assert_eq!(got.unwrap().unwrap().unwrap().len(), 1);
    }
}
