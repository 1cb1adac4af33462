//! The in-memory provider: a priority queue with delayed jobs, receipt handles and history.
//! Every operation is O(log n) in the jobs held; receivers wake on enqueue, delays need no timers.

use crate::config::MemoryConfig;
use crate::error::{QueueError, Result};
use crate::job::{
    has_retries_left, now_ms, retry_backoff_ms, Job, JobOptions, JobStatus, Millis, NewJob,
    QueueStats, ReceivedJob,
};
use crate::provider::{Immediate, QueueProvider};
use async_trait::async_trait;
use serde_json::value::RawValue;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

/// The in-memory queue. Cheap to share: wrap it in an `Arc`.
pub struct MemoryQueue {
    state: Mutex<State>,
    /// Wakes receivers blocked in [`MemoryQueue::receive`].
    wake: Notify,
    /// High half of every job id this queue makes: job ids are UUIDs (version 8) whose low
    /// half is the job's sequence number, so an id finds its job without a second index.
    id_tag: u64,
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
    scheduled_for: Option<Millis>,
    started_at: Option<Millis>,
    completed_at: Option<Millis>,
    last_error: Option<Box<str>>,
    progress: Option<f64>,
    result: Option<Box<RawValue>>,
}

impl Entry {
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Default::default)
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
    types: HashSet<Arc<str>>,
    stats: QueueStats,
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
        if let Some(a) = self.types.get(t) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(t);
        self.types.insert(a.clone());
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
                stats: QueueStats::default(),
            }),
            wake: Notify::new(),
            id_tag,
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

    /// Enqueue without waiting (the memory provider never blocks).
    pub fn enqueue_now(&self, job: NewJob) -> Result<Job> {
        let now = now_ms();
        let job = {
            let mut st = self.lock();
            if st.closed {
                return Err(QueueError::Closed);
            }
            let (seq, _) = self.insert(&mut st, job, now);
            let e = &st.jobs[&seq];
            self.snapshot(seq, e)
        };
        self.wake.notify_waiters();
        Ok(job)
    }

    /// Enqueue many jobs under one lock; returns the ids (an existing id for a duplicate).
    pub fn enqueue_bulk_now(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        let now = now_ms();
        let out = {
            let mut st = self.lock();
            if st.closed {
                return Err(QueueError::Closed);
            }
            let mut out = Vec::with_capacity(jobs.len());
            for job in jobs {
                let (seq, _) = self.insert(&mut st, job, now);
                out.push(self.snapshot(seq, &st.jobs[&seq]));
            }
            out
        };
        self.wake.notify_waiters();
        Ok(out)
    }

    /// Enqueue many jobs and return only their ids: the fast path for large batches.
    /// [`MemoryQueue::enqueue_bulk_now`] returning only the ids, in order (the existing
    /// job's id for a duplicate): the cheap path for callers that already hold the jobs.
    pub fn enqueue_bulk_ids(&self, jobs: Vec<NewJob>) -> Result<Vec<Uuid>> {
        let now = now_ms();
        let out = {
            let mut st = self.lock();
            if st.closed {
                return Err(QueueError::Closed);
            }
            let mut out = Vec::with_capacity(jobs.len());
            for job in jobs {
                out.push(self.job_uuid(self.insert(&mut st, job, now).0));
            }
            out
        };
        self.wake.notify_waiters();
        Ok(out)
    }

    pub fn try_receive(&self, max: usize) -> Vec<ReceivedJob> {
        self.take(max).0
    }

    /// Visible jobs, and when the next delayed job becomes visible.
    fn take(&self, max: usize) -> (Vec<ReceivedJob>, Option<Millis>) {
        let now = now_ms();
        let mut st = self.lock();
        if st.closed {
            return (Vec::new(), None);
        }
        st.promote(now);
        let mut out = Vec::with_capacity(max.min(st.ready.len()));
        while out.len() < max {
            let Some((_, seq)) = st.ready.pop_first() else {
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

    /// The processing entry a receipt handle names, if that attempt is still open.
    fn open_attempt<'a>(&self, st: &'a mut State, receipt: &str) -> Result<(u64, &'a mut Entry)> {
        let unknown = || QueueError::UnknownReceipt(receipt.to_owned());
        let (seq, delivery) = self.parse_receipt(receipt).ok_or_else(unknown)?;
        match st.jobs.get_mut(&seq) {
            Some(e) if e.status == JobStatus::Processing && e.deliveries == delivery => {
                Ok((seq, &mut **e))
            }
            _ => Err(unknown()),
        }
    }

    pub fn acknowledge_now(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()> {
        let mut st = self.lock();
        let (seq, e) = self.open_attempt(&mut st, receipt)?;
        let x = e.extra();
        x.completed_at = Some(now_ms());
        x.result = result;
        st.set_status(seq, JobStatus::Completed);
        st.finish(seq);
        Ok(())
    }

    pub fn fail_now(&self, receipt: &str, error: &str) -> Result<()> {
        let now = now_ms();
        let retry = {
            let mut st = self.lock();
            let (seq, e) = self.open_attempt(&mut st, receipt)?;
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

    pub fn release_now(&self, receipt: &str) -> Result<()> {
        {
            let mut st = self.lock();
            let (seq, e) = self.open_attempt(&mut st, receipt)?;
            e.attempts = e.attempts.saturating_sub(1);
            let p = e.priority;
            st.set_status(seq, JobStatus::Pending);
            st.ready.insert((p, seq));
        }
        self.wake.notify_waiters();
        Ok(())
    }

    pub fn set_progress_now(&self, receipt: &str, percent: f64) -> Result<()> {
        let mut st = self.lock();
        let (_, e) = self.open_attempt(&mut st, receipt)?;
        e.extra().progress = Some(percent);
        Ok(())
    }

    pub fn get_job_now(&self, id: &str) -> Option<Job> {
        let seq = self.seq_of(id)?;
        let st = self.lock();
        st.jobs.get(&seq).map(|e| self.snapshot(seq, e))
    }

    pub fn stats_now(&self) -> QueueStats {
        let now = now_ms();
        let mut st = self.lock();
        st.promote(now);
        st.stats
    }

    pub fn close_now(&self) {
        self.lock().closed = true;
        self.wake.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[async_trait]
impl QueueProvider for MemoryQueue {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn enqueue(&self, job: NewJob) -> Result<Job> {
        self.enqueue_now(job)
    }

    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        self.enqueue_bulk_now(jobs)
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>> {
        let deadline = Instant::now() + wait;
        loop {
            // Register for wake-ups before looking, so an enqueue in between is not missed.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let (jobs, next_visible) = self.take(max);
            if !jobs.is_empty() || max == 0 || self.is_closed() {
                return Ok(jobs);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(jobs);
            }
            let until = match next_visible {
                Some(at) => {
                    let ms = (at - now_ms()).max(0) as u64;
                    deadline.min(now + Duration::from_millis(ms))
                }
                None => deadline,
            };
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn acknowledge(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()> {
        self.acknowledge_now(receipt, result)
    }

    async fn fail(&self, receipt: &str, error: &str) -> Result<()> {
        self.fail_now(receipt, error)
    }

    async fn release(&self, receipt: &str) -> Result<()> {
        self.release_now(receipt)
    }

    async fn set_progress(&self, receipt: &str, percent: f64) -> Result<()> {
        self.set_progress_now(receipt, percent)
    }

    async fn get_job(&self, id: &str) -> Result<Option<Job>> {
        Ok(self.get_job_now(id))
    }

    async fn stats(&self) -> Result<QueueStats> {
        Ok(self.stats_now())
    }

    async fn close(&self) -> Result<()> {
        self.close_now();
        Ok(())
    }

    fn immediate(&self) -> Option<&dyn Immediate> {
        Some(self)
    }
}

impl Immediate for MemoryQueue {
    fn try_receive(&self, max: usize) -> Vec<ReceivedJob> {
        MemoryQueue::try_receive(self, max)
    }
    fn acknowledge(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()> {
        self.acknowledge_now(receipt, result)
    }
    fn fail(&self, receipt: &str, error: &str) -> Result<()> {
        self.fail_now(receipt, error)
    }
    fn release(&self, receipt: &str) -> Result<()> {
        self.release_now(receipt)
    }
    fn set_progress(&self, receipt: &str, percent: f64) -> Result<()> {
        self.set_progress_now(receipt, percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{raw_json, EnqueueOptions};

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
}
