//! The `queue` block of the app config as the core receives it: types and defaults.
//! The JS entry (`validateQueueConfig` in index.js) checks it first, naming the path at fault.

use serde::{Deserialize, Serialize};

/// Default for [`MemoryConfig::max_history_size`].
pub const DEFAULT_MAX_HISTORY_SIZE: usize = 1000;

/// `providerConfig`: which backend, and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProviderConfig {
    Memory(MemoryConfig),
    Sqs(SqsConfig),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MemoryConfig {
    /// Finished jobs kept for `getJob`.
    pub max_history_size: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_history_size: DEFAULT_MAX_HISTORY_SIZE,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsConfig {
    pub region: String,
    pub queue_url: String,
    #[serde(default)]
    pub dead_letter_queue_url: Option<String>,
    /// Seconds (default 30).
    #[serde(default = "default_visibility_timeout")]
    pub visibility_timeout: u32,
    /// An SQS-compatible endpoint URL; else the SDK's `AWS_ENDPOINT_URL_SQS`/`AWS_ENDPOINT_URL`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Largest message body accepted at enqueue (default 262144).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// `MessageGroupId` for `.fifo` queues; the job type when absent.
    #[serde(default)]
    pub message_group_id: Option<String>,
}

fn default_visibility_timeout() -> u32 {
    30
}
fn default_max_message_bytes() -> usize {
    262_144
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerMode {
    #[default]
    InProcess,
    Standalone,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkerConfig {
    pub mode: WorkerMode,
    /// Handlers running at once (default 5).
    pub concurrency: u32,
    /// Milliseconds between receives for providers that cannot long-poll (default 1000).
    pub poll_interval: u64,
    /// Milliseconds `stop()` waits for running jobs (default 30000).
    pub shutdown_timeout: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            mode: WorkerMode::InProcess,
            concurrency: 5,
            poll_interval: 1000,
            shutdown_timeout: 30_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SchedulerConfig {
    pub enabled: bool,
    /// Milliseconds between polls (default 60000).
    pub poll_interval: u64,
    /// `postgres://…` or `sqlite:…`; else `DATABASE_URL`; else `.chaaskit/queue.db`.
    pub database_url: Option<String>,
    /// Create missing tables at start (default true).
    pub auto_migrate: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            enabled: false,
            poll_interval: 60_000,
            database_url: None,
            auto_migrate: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueConfig {
    pub enabled: bool,
    pub provider_config: ProviderConfig,
    #[serde(default)]
    pub worker: WorkerConfig,
    #[serde(default)]
    pub scheduler: SchedulerConfig,
}
