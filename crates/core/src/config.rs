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
    Postgres(PostgresConfig),
    Sqlite(SqliteConfig),
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

/// `providerConfig` for `type: 'postgres'`: jobs in a table of the app's PostgreSQL database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PostgresConfig {
    /// `postgres://…`; else the `DATABASE_URL` environment variable.
    pub database_url: Option<String>,
    /// Schema of the `QueueJob` table (default `public`; created when missing).
    pub schema: String,
    /// Seconds a claimed job stays leased without a heartbeat (default 30).
    pub visibility_timeout: u32,
    /// Create the table at start when missing (default true).
    pub auto_migrate: bool,
    pub retention: RetentionConfig,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            database_url: None,
            schema: "public".into(),
            visibility_timeout: default_visibility_timeout(),
            auto_migrate: true,
            retention: RetentionConfig::default(),
        }
    }
}

/// Default for [`SqliteConfig::database_url`].
pub const DEFAULT_SQLITE_QUEUE_URL: &str = "sqlite:.chaaskit/queue.db";

/// `providerConfig` for `type: 'sqlite'`: jobs in an SQLite file that several processes on
/// one host may share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SqliteConfig {
    /// `sqlite:<path>` (default `sqlite:.chaaskit/queue.db`, created when missing).
    pub database_url: String,
    /// Seconds a claimed job stays leased without a heartbeat (default 30).
    pub visibility_timeout: u32,
    /// Create the table at start when missing (default true).
    pub auto_migrate: bool,
    pub retention: RetentionConfig,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            database_url: DEFAULT_SQLITE_QUEUE_URL.into(),
            visibility_timeout: default_visibility_timeout(),
            auto_migrate: true,
            retention: RetentionConfig::default(),
        }
    }
}

/// How long finished jobs stay readable by `getJob` before the background purge deletes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetentionConfig {
    /// Milliseconds a completed job is kept (default 1 day).
    pub completed: u64,
    /// Milliseconds a dead job is kept (default 14 days).
    pub dead: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            completed: 86_400_000,
            dead: 14 * 86_400_000,
        }
    }
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
