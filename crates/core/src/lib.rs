//! The queue core of `@chaaskit/queue`: providers, the worker pool and the scheduler, with
//! no dependency on napi, so `cargo test` covers all of it.

pub mod admin;
pub mod config;
mod db;
pub mod durable;
pub mod error;
pub mod events;
pub mod job;
pub mod memory;
pub mod metrics;
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
