//! The queue core of `@chaaskit/queue`: providers, the worker pool and the scheduler, with
//! no dependency on napi, so `cargo test` covers all of it.

pub mod admin;
pub mod config;
mod db;
pub mod durable;
pub mod error;
pub mod events;
pub mod job;
pub mod joblog;
pub mod memory;
pub mod metrics;
pub mod pg_schema;
pub mod provider;
pub mod redact;
pub mod schedule;
pub mod scheduler;
pub mod sqs;
pub mod store;
pub mod worker;

pub use admin::{JobFilter, JobPage};
pub use error::{QueueError, Result};
pub use job::{
    EnqueueOptions, Job, JobOptions, JobStatus, Millis, NewJob, QueueStats, ReceivedJob,
};
pub use provider::{DelaySink, Immediate, QueueProvider, SharedProvider};
pub use redact::redact_url;

/// Lock `m`, taking over a lock a panicking thread left poisoned (every critical section here
/// leaves its data whole, so what it guards is still good).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
