//! The in-memory provider: a priority queue with delayed jobs, receipt handles and history.
//! Every operation is O(log n) in the jobs held; receivers wake on enqueue, delays need no timers.

use crate::config::MemoryConfig;
use crate::error::{QueueError, Result};
use crate::job::{
    has_retries_left, now_ms, retry_backoff_ms, Job, JobOptions, JobStatus, Millis, NewJob,
    QueueStats, ReceivedJob,
};
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

    fn acknowledge_now(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()> {
        let mut st = self.lock();
        let (seq, e) = self.open_attempt(&mut st, receipt)?;
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

    fn release_now(&self, receipt: &str) -> Result<()> {
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

    fn set_progress_now(&self, receipt: &str, percent: f64) -> Result<()> {
        let mut st = self.lock();
        let (_, e) = self.open_attempt(&mut st, receipt)?;
        e.extra().progress = Some(percent);
        Ok(())
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
