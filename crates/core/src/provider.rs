//! The contract every queue backend implements, and the hook through which a running
//! scheduler takes delays longer than a backend can hold.

use crate::error::Result;
use crate::job::{Job, Millis, NewJob, QueueStats, ReceivedJob};
use async_trait::async_trait;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;

/// A queue backend: the `QueueProvider` of the specification.
#[async_trait]
pub trait QueueProvider: Send + Sync + 'static {
    /// `"memory"` or `"sqs"`.
    fn name(&self) -> &'static str;

    async fn enqueue(&self, job: NewJob) -> Result<Job>;

    /// Enqueue many jobs; all are validated before any is queued.
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

    async fn stats(&self) -> Result<QueueStats>;

    /// Stop: waiting receivers get `[]`, later enqueues fail with `Closed`.
    async fn close(&self) -> Result<()>;

    /// Whether a `receive` may be dropped before it resolves without stranding jobs. When it
    /// may not (SQS: a long poll goes on at the server and hides what it takes for the
    /// visibility timeout), the worker lets its receive finish at stop and gives back what it
    /// brought.
    fn receive_is_cancel_safe(&self) -> bool {
        true
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

/// Non-blocking forms of the provider operations the worker uses on its hot path.
pub trait Immediate: Send + Sync {
    fn try_receive(&self, max: usize) -> Vec<ReceivedJob>;
    fn acknowledge(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()>;
    fn fail(&self, receipt: &str, error: &str) -> Result<()>;
    fn release(&self, receipt: &str) -> Result<()>;
    fn set_progress(&self, receipt: &str, percent: f64) -> Result<()>;
}

/// Takes jobs whose delay a provider cannot hold (the scheduler implements it).
#[async_trait]
pub trait DelaySink: Send + Sync + 'static {
    /// Store `job` to be enqueued at `at`; returns it as a `scheduled` job.
    async fn schedule_at(&self, job: NewJob, at: Millis) -> Result<Job>;
}

/// A shared provider.
pub type SharedProvider = Arc<dyn QueueProvider>;
