//! The contract every queue backend implements, and the hook through which a running
//! scheduler takes delays longer than a backend can hold.

use crate::admin::{unsupported, JobFilter, JobPage};
use crate::error::Result;
use crate::events::{Delivered, Signals};
use crate::job::{now_ms, Job, Millis, NewJob, QueueStats, ReceivedJob};
use crate::joblog::{JobLogs, LogLine};
use async_trait::async_trait;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// A queue backend: the `QueueProvider` of the specification.
#[async_trait]
pub trait QueueProvider: Send + Sync + 'static {
    /// `"memory"` or `"sqs"`.
    fn name(&self) -> &'static str;

    async fn enqueue(&self, job: NewJob) -> Result<Job>;

    /// Enqueue many jobs; all are validated before any is queued. The jobs come back in
    /// the order given, one per job (for a deduplicated one, the job that held the key).
    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>>;

    /// Up to `max` visible jobs, waiting up to `wait` for the first; `[]` at the timeout or
    /// once closed. Each returned job counts an attempt.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>>;

    /// The attempt succeeded; `result` is what the handler returned, as JSON text.
    async fn acknowledge(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()>;

    /// The attempt failed: retry after backoff, or end the job when out of retries.
    async fn fail(&self, receipt: &str, error: &str) -> Result<()>;

    /// Give back an attempt that never ran to its end (worker shutdown): the job is visible
    /// again at once and the attempt does not count as a failure.
    async fn release(&self, receipt: &str) -> Result<()>;

    /// Store a handler's progress (0–100) on the job.
    async fn set_progress(&self, receipt: &str, percent: f64) -> Result<()>;

    async fn get_job(&self, id: &str) -> Result<Option<Job>>;

    /// Store a line a handler logged (`ctx.log`) on its job, under the cap of
    /// [`crate::joblog`]. A provider with no job store (SQS) drops it: the default.
    async fn append_log(&self, _receipt: &str, _line: LogLine) -> Result<()> {
        Ok(())
    }

    /// A job's log lines, oldest first; `None` when there is no such job.
    async fn get_job_logs(&self, _id: &str) -> Result<Option<JobLogs>> {
        Err(unsupported(self.name(), "getJobLogs"))
    }

    async fn stats(&self) -> Result<QueueStats>;

    /// Stop: waiting receivers get `[]`, later enqueues fail with `Closed`.
    async fn close(&self) -> Result<()>;

    /// Jobs matching `filter`, newest first (by `createdAt`, then id), one page at a time.
    async fn list_jobs(&self, _filter: JobFilter) -> Result<JobPage> {
        Err(unsupported(self.name(), "listJobs"))
    }

    /// A dead or failed job becomes pending, visible now, its attempts kept. `false` when
    /// no such job is dead or failed.
    async fn retry_job(&self, _id: &str) -> Result<bool> {
        Err(unsupported(self.name(), "retryJob"))
    }

    /// A pending, scheduled, failed or processing job becomes `cancelled` and never runs
    /// again; a running attempt's result is discarded when it settles. `false` when no such
    /// job is in one of those states.
    async fn cancel_job(&self, _id: &str) -> Result<bool> {
        Err(unsupported(self.name(), "cancelJob"))
    }

    /// Receivers stop taking jobs of `job_type` (of every type with `None`); running jobs
    /// finish.
    async fn pause(&self, _job_type: Option<&str>) -> Result<()> {
        Err(unsupported(self.name(), "pause"))
    }

    /// Undo [`QueueProvider::pause`] of `job_type` (`None`: of everything, every type included).
    async fn resume(&self, _job_type: Option<&str>) -> Result<()> {
        Err(unsupported(self.name(), "resume"))
    }

    /// What is paused: `None` stands for everything.
    async fn paused(&self) -> Result<Vec<Option<String>>> {
        Err(unsupported(self.name(), "paused"))
    }

    /// Move the dead-letter queue's messages back to the queue (SQS); returns how many.
    async fn redrive_dead_letters(&self) -> Result<u64> {
        Err(unsupported(self.name(), "redriveDeadLetters"))
    }

    /// Whether a `receive` may be dropped before it resolves without stranding jobs. When it
    /// may not (SQS: a long poll goes on at the server and hides what it takes for the
    /// visibility timeout), the worker lets its receive finish at stop and gives back what it
    /// brought.
    fn receive_is_cancel_safe(&self) -> bool {
        true
    }

    /// The longest wait of a worker's receive that may not be dropped: a stop waits for it.
    fn longest_uncancellable_wait(&self) -> Duration {
        Duration::from_secs(20)
    }

    /// How many jobs a worker at `concurrency` may hold beyond its running ones, so that the
    /// next claim overlaps the running batch. Held jobs keep their leases (the provider's
    /// heartbeat renews them); a stopping worker gives them back at once.
    fn prefetch(&self, concurrency: usize) -> usize {
        concurrency.min(10)
    }

    /// What this provider tells the workers of its process (cancelled running jobs, stalled
    /// leases); `None` when it has nothing to tell.
    fn signals(&self) -> Option<&Signals> {
        None
    }

    /// The cross-process event stream (PostgreSQL): batches of events with their jobs, in
    /// order, until the receiver is dropped or the provider closes.
    async fn subscribe_events(&self) -> Result<mpsc::UnboundedReceiver<Vec<Delivered>>> {
        Err(unsupported(
            self.name(),
            "createQueueEvents (events across processes; use worker.on in the worker's process)",
        ))
    }

    /// The longest delay this backend holds itself; `None` when unbounded.
    fn max_delay(&self) -> Option<Duration> {
        None
    }

    /// Route delays beyond [`QueueProvider::max_delay`] to a scheduler (or stop, with `None`).
    fn set_delay_sink(&self, _sink: Option<Arc<dyn DelaySink>>) {}

    /// The same operations without waiting, for providers that never block (memory), so the
    /// worker can act on the caller's thread.
    fn immediate(&self) -> Option<&dyn Immediate> {
        None
    }
}

/// A provider that never blocks (memory): its whole API, synchronous. Its [`QueueProvider`]
/// implementation is derived from this one (below), so each operation is written once; the
/// worker and the binding call it directly, on their own thread.
pub trait Immediate: Send + Sync + 'static {
    /// The provider's name (`"memory"`).
    fn provider_name(&self) -> &'static str;
    fn enqueue_now(&self, job: NewJob) -> Result<Job>;
    /// Enqueue many jobs at once; all are validated before any is queued.
    fn enqueue_bulk_now(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>>;
    /// Up to `max` visible jobs now (`[]` once closed).
    fn try_receive(&self, max: usize) -> Vec<ReceivedJob> {
        self.take(max).0
    }
    /// Up to `max` visible jobs now, and when the next delayed job becomes visible.
    fn take(&self, max: usize) -> (Vec<ReceivedJob>, Option<Millis>);
    /// Notified on every enqueue, retry, release and close: what a waiting receive sleeps on.
    fn wake(&self) -> &Notify;
    fn is_closed(&self) -> bool;
    fn acknowledge_now(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()>;
    fn fail_now(&self, receipt: &str, error: &str) -> Result<()>;
    fn release_now(&self, receipt: &str) -> Result<()>;
    fn set_progress_now(&self, receipt: &str, percent: f64) -> Result<()>;
    fn append_log_now(&self, receipt: &str, line: LogLine) -> Result<()>;
    fn get_job_logs_now(&self, id: &str) -> Option<JobLogs>;
    fn get_job_now(&self, id: &str) -> Option<Job>;
    fn stats_now(&self) -> QueueStats;
    fn close_now(&self);
    fn list_jobs_now(&self, filter: JobFilter) -> Result<JobPage>;
    fn retry_job_now(&self, id: &str) -> bool;
    fn cancel_job_now(&self, id: &str) -> bool;
    fn pause_now(&self, job_type: Option<&str>);
    fn resume_now(&self, job_type: Option<&str>);
    fn paused_now(&self) -> Vec<Option<String>>;
    /// See [`QueueProvider::signals`].
    fn signals_now(&self) -> Option<&Signals> {
        None
    }
}

/// Every [`Immediate`] provider is a [`QueueProvider`]: each operation at once, and a receive
/// that waits on [`Immediate::wake`] (no polling) until jobs are visible, the wait is over or
/// the provider is closed.
#[async_trait]
impl<T: Immediate> QueueProvider for T {
    fn name(&self) -> &'static str {
        self.provider_name()
    }
    async fn enqueue(&self, job: NewJob) -> Result<Job> {
        self.enqueue_now(job)
    }
    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        self.enqueue_bulk_now(jobs)
    }
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>> {
        // A wait too long for the clock (from a huge `waitTimeSeconds`) waits for a century.
        let deadline = Instant::now()
            .checked_add(wait)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3_155_760_000));
        loop {
            // Register for wake-ups before looking, so an enqueue in between is not missed.
            let woken = self.wake().notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let (jobs, next_visible) = self.take(max);
            let now = Instant::now();
            if !jobs.is_empty() || max == 0 || self.is_closed() || now >= deadline {
                return Ok(jobs);
            }
            let until = match next_visible {
                Some(at) => {
                    let ms = u64::try_from(at - now_ms()).unwrap_or(0);
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
    async fn append_log(&self, receipt: &str, line: LogLine) -> Result<()> {
        self.append_log_now(receipt, line)
    }
    async fn get_job_logs(&self, id: &str) -> Result<Option<JobLogs>> {
        Ok(self.get_job_logs_now(id))
    }
    async fn stats(&self) -> Result<QueueStats> {
        Ok(self.stats_now())
    }
    async fn close(&self) -> Result<()> {
        self.close_now();
        Ok(())
    }
    async fn list_jobs(&self, filter: JobFilter) -> Result<JobPage> {
        self.list_jobs_now(filter)
    }
    async fn retry_job(&self, id: &str) -> Result<bool> {
        Ok(self.retry_job_now(id))
    }
    async fn cancel_job(&self, id: &str) -> Result<bool> {
        Ok(self.cancel_job_now(id))
    }
    async fn pause(&self, job_type: Option<&str>) -> Result<()> {
        self.pause_now(job_type);
        Ok(())
    }
    async fn resume(&self, job_type: Option<&str>) -> Result<()> {
        self.resume_now(job_type);
        Ok(())
    }
    async fn paused(&self) -> Result<Vec<Option<String>>> {
        Ok(self.paused_now())
    }
    fn immediate(&self) -> Option<&dyn Immediate> {
        Some(self)
    }
    fn signals(&self) -> Option<&Signals> {
        self.signals_now()
    }
}

/// Takes jobs whose delay a provider cannot hold (the scheduler implements it).
#[async_trait]
pub trait DelaySink: Send + Sync + 'static {
    /// Store `job` to be enqueued at `at`; returns it as a `scheduled` job.
    async fn schedule_at(&self, job: NewJob, at: Millis) -> Result<Job>;
}

/// A shared provider.
pub type SharedProvider = Arc<dyn QueueProvider>;
