//! The `queue` block of the app config: its types, every default and every rule, in one place.
//! [`QueueConfig::from_value`] reads the block as JavaScript gave it, naming the path and value at fault.
//!
//! The block arrives as a [`ConfigValue`] (a JavaScript value, `undefined` and `NaN` included)
//! and is read with serde through [`ConfigValue`]'s own deserializer, which tracks the path of
//! the value being read (as `serde_path_to_error` does) and reports keys no struct knows, with
//! the keys it does know (which a wrapping deserializer cannot see). The rules are the
//! `deserialize_with` functions in [`rule`] and each block's `validate`.

mod de;
mod error;
pub mod rule;
mod value;

pub use error::{ConfigError, ErrorKind, ErrorParts};
pub use value::{js_number, ConfigValue};

use de::ValueDe;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// Default for [`MemoryConfig::max_history_size`].
pub const DEFAULT_MAX_HISTORY_SIZE: usize = 1000;
/// Default for [`SqsConfig::visibility_timeout`], in seconds.
pub const DEFAULT_VISIBILITY_TIMEOUT_S: u32 = 30;
/// Longest SQS visibility timeout, in seconds (12 hours).
pub const MAX_VISIBILITY_TIMEOUT_S: u32 = 43_200;
/// Default for [`SqsConfig::max_message_bytes`] (the limit of older queues and emulators).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 262_144;
/// SQS's own bounds for a queue's `MaximumMessageSize`.
pub const MIN_MESSAGE_BYTES: usize = 1024;
pub const MAX_MESSAGE_BYTES: usize = 1_048_576;
/// Largest delay a JavaScript timer takes, in milliseconds: the bound of every config interval
/// and of a job's timeout.
pub const MAX_TIMER_MS: u64 = 2_147_483_647;
/// Largest `worker.concurrency`.
pub const MAX_CONCURRENCY: u32 = 100_000;

// ---- the blocks ---------------------------------------------------------------------------

/// `providerConfig`: which backend, and its settings. One variant per provider, each with its
/// own struct, defaults and `validate`; [`ProviderConfig::TYPES`] lists the `type` names.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProviderConfig {
    Memory(MemoryConfig),
    Sqs(SqsConfig),
    Postgres(PostgresConfig),
    Sqlite(SqliteConfig),
}

impl ProviderConfig {
    /// The accepted values of `providerConfig.type`, in the order error messages list them.
    pub const TYPES: &'static [&'static str] = &["memory", "sqs", "postgres", "sqlite"];

    /// Read a `providerConfig` found at `path` (e.g. `queue.providerConfig`).
    pub fn from_value(value: &ConfigValue, path: &str) -> Result<Checked<Self>, ConfigError> {
        let reader = Reader::default();
        let config = reader.provider(value, path)?;
        Ok(reader.finish(config))
    }

    /// The provider a disabled or unconfigured queue runs on.
    pub fn default_memory() -> Self {
        ProviderConfig::Memory(MemoryConfig::default())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MemoryConfig {
    /// Finished jobs kept for `getJob`.
    #[serde(deserialize_with = "rule::count")]
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
    #[serde(deserialize_with = "rule::text")]
    pub region: String,
    #[serde(deserialize_with = "rule::http_url")]
    pub queue_url: String,
    #[serde(
        default,
        deserialize_with = "rule::opt_http_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub dead_letter_queue_url: Option<String>,
    /// Seconds a received message stays invisible to other receivers.
    #[serde(
        default = "default_visibility_timeout",
        deserialize_with = "rule::visibility_timeout"
    )]
    pub visibility_timeout: u32,
    /// An SQS-compatible endpoint URL; else the SDK's `AWS_ENDPOINT_URL_SQS`/`AWS_ENDPOINT_URL`.
    #[serde(
        default,
        deserialize_with = "rule::opt_http_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint: Option<String>,
    /// Largest message body accepted at enqueue.
    #[serde(
        default = "default_max_message_bytes",
        deserialize_with = "rule::max_message_bytes"
    )]
    pub max_message_bytes: usize,
    /// `MessageGroupId` for `.fifo` queues; the job type when absent.
    #[serde(
        default,
        deserialize_with = "rule::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub message_group_id: Option<String>,
    /// Longest long poll of a worker's receive, 1 to 20 s (default 1). A stop waits for the
    /// poll in flight (cut off, it would hide what it takes), so this bounds how long an idle
    /// worker takes to stop; 20 makes 20 times fewer requests while idle.
    #[serde(
        default = "default_wait_time_seconds",
        deserialize_with = "rule::wait_time_seconds"
    )]
    pub wait_time_seconds: u32,
}

/// Default for [`SqsConfig::wait_time_seconds`]: an idle worker stops within about a second,
/// well inside `docker stop`'s 10 s.
pub const DEFAULT_WAIT_TIME_SECONDS: u32 = 1;
fn default_wait_time_seconds() -> u32 {
    DEFAULT_WAIT_TIME_SECONDS
}

/// `providerConfig` for `type: 'postgres'`: jobs in a table of the app's PostgreSQL database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PostgresConfig {
    /// `postgres://…`; else the `DATABASE_URL` environment variable.
    #[serde(
        deserialize_with = "rule::postgres_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub database_url: Option<String>,
    /// Schema of the `QueueJob` table (created when missing); when absent, the URL's Prisma
    /// `?schema=` parameter, else `public`.
    #[serde(
        deserialize_with = "rule::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub schema: Option<String>,
    /// Seconds a claimed job stays leased without a heartbeat (default 30).
    #[serde(deserialize_with = "rule::visibility_timeout")]
    pub visibility_timeout: u32,
    /// Create the table at start when missing (default true).
    #[serde(deserialize_with = "rule::boolean")]
    pub auto_migrate: bool,
    pub retention: RetentionConfig,
    /// Publish job events (NOTIFY, one per batch) for `createQueueEvents` in other processes
    /// (default true).
    #[serde(deserialize_with = "rule::boolean")]
    pub publish_events: bool,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            database_url: None,
            schema: None,
            visibility_timeout: default_visibility_timeout(),
            auto_migrate: true,
            retention: RetentionConfig::default(),
            publish_events: true,
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
    #[serde(deserialize_with = "rule::sqlite_url")]
    pub database_url: String,
    /// Seconds a claimed job stays leased without a heartbeat (default 30).
    #[serde(deserialize_with = "rule::visibility_timeout")]
    pub visibility_timeout: u32,
    /// Create the table at start when missing (default true).
    #[serde(deserialize_with = "rule::boolean")]
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
    #[serde(deserialize_with = "rule::duration")]
    pub completed: u64,
    /// Milliseconds a dead job is kept (default 14 days).
    #[serde(deserialize_with = "rule::duration")]
    pub dead: u64,
    /// Milliseconds a cancelled job is kept (default 14 days).
    #[serde(deserialize_with = "rule::duration")]
    pub cancelled: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            completed: 86_400_000,
            dead: 14 * 86_400_000,
            cancelled: 14 * 86_400_000,
        }
    }
}

fn default_visibility_timeout() -> u32 {
    DEFAULT_VISIBILITY_TIMEOUT_S
}
fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}

impl SqsConfig {
    /// The rules between fields, and every field's rule again for a config built in Rust
    /// (the JavaScript path has checked each field while reading it). Errors name
    /// `providerConfig.<field>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at = |field: &str, e: ConfigError| e.at(&format!("providerConfig.{field}"));
        let check = |field: &str, v: ConfigValue, f: fn(ConfigValue) -> Result<(), ConfigError>| {
            f(v).map_err(|e| at(field, e))
        };
        check("region", self.region.as_str().into(), |v| {
            rule::text_of(v).map(drop)
        })?;
        check("queueUrl", self.queue_url.as_str().into(), |v| {
            rule::http_url_of(v).map(drop)
        })?;
        for (field, url) in [
            ("deadLetterQueueUrl", &self.dead_letter_queue_url),
            ("endpoint", &self.endpoint),
        ] {
            if let Some(u) = url {
                check(field, u.as_str().into(), |v| rule::http_url_of(v).map(drop))?;
            }
        }
        check(
            "visibilityTimeout",
            ConfigValue::Number(f64::from(self.visibility_timeout)),
            |v| rule::visibility_timeout_of(v).map(drop),
        )?;
        check(
            "maxMessageBytes",
            ConfigValue::Number(self.max_message_bytes as f64),
            |v| rule::max_message_bytes_of(v).map(drop),
        )?;
        check(
            "waitTimeSeconds",
            ConfigValue::Number(f64::from(self.wait_time_seconds)),
            |v| rule::wait_time_seconds_of(v).map(drop),
        )?;
        if let Some(g) = &self.message_group_id {
            check("messageGroupId", g.as_str().into(), |v| {
                rule::text_of(v).map(drop)
            })?;
        }
        if self.dead_letter_queue_url.as_deref() == Some(self.queue_url.as_str()) {
            return Err(at(
                "deadLetterQueueUrl",
                ConfigError::range(format!(
                    "must differ from queueUrl (jobs out of retries would go back to the queue they came from), got {}",
                    ConfigValue::from(redact_url(&self.queue_url).as_str()).describe()
                )),
            ));
        }
        Ok(())
    }
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
    /// Handlers running at once.
    #[serde(deserialize_with = "rule::concurrency")]
    pub concurrency: u32,
    /// Milliseconds between receives for providers that cannot long-poll.
    #[serde(deserialize_with = "rule::interval")]
    pub poll_interval: u64,
    /// Milliseconds `stop()` waits for running jobs.
    #[serde(deserialize_with = "rule::interval")]
    pub shutdown_timeout: u64,
    /// Serve Prometheus `/metrics` on this loopback port while the worker runs (0: any free
    /// port); none by default.
    #[serde(
        deserialize_with = "rule::opt_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub metrics_port: Option<u16>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            mode: WorkerMode::InProcess,
            concurrency: 5,
            poll_interval: 1000,
            shutdown_timeout: 30_000,
            metrics_port: None,
        }
    }
}

impl WorkerConfig {
    /// Read a `worker` block found at `path`.
    pub fn from_value(value: &ConfigValue, path: &str) -> Result<Checked<Self>, ConfigError> {
        read(value, path)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SchedulerConfig {
    #[serde(deserialize_with = "rule::boolean")]
    pub enabled: bool,
    /// Milliseconds between polls.
    #[serde(deserialize_with = "rule::poll_interval")]
    pub poll_interval: u64,
    /// `postgres://…` or `sqlite:…`; else `DATABASE_URL`; else `.chaaskit/queue.db`.
    #[serde(
        deserialize_with = "rule::database_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub database_url: Option<String>,
    /// Create missing tables at start.
    #[serde(deserialize_with = "rule::boolean")]
    pub auto_migrate: bool,
    /// Milliseconds an enqueued or cancelled `ScheduledJob` row is kept (from its last change)
    /// before a poll deletes it (default 7 days).
    #[serde(deserialize_with = "rule::duration")]
    pub retention: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            enabled: false,
            poll_interval: 60_000,
            database_url: None,
            auto_migrate: true,
            retention: 7 * 86_400_000,
        }
    }
}

impl SchedulerConfig {
    /// Read a `scheduler` block found at `path`.
    pub fn from_value(value: &ConfigValue, path: &str) -> Result<Checked<Self>, ConfigError> {
        read(value, path)
    }
}

/// The whole `queue` block, every default filled in.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueConfig {
    pub enabled: bool,
    /// The default memory provider when the queue is disabled (its own settings unchecked).
    pub provider_config: ProviderConfig,
    pub worker: WorkerConfig,
    pub scheduler: SchedulerConfig,
}

/// What the `queue` block is read into before `providerConfig` is looked at.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueueBlock {
    #[serde(default, deserialize_with = "rule::boolean")]
    enabled: bool,
    #[serde(default)]
    provider_config: Option<ConfigValue>,
    #[serde(default)]
    worker: WorkerConfig,
    #[serde(default)]
    scheduler: SchedulerConfig,
}

impl QueueConfig {
    /// Read the `queue` block found at `path` (normally `queue`). A disabled queue runs on the
    /// default memory provider, and its `providerConfig` is not checked.
    pub fn from_value(value: &ConfigValue, path: &str) -> Result<Checked<Self>, ConfigError> {
        let reader = Reader::default();
        let block: QueueBlock = reader.read(value, path)?;
        let provider_config = match (block.enabled, &block.provider_config) {
            (false, _) => ProviderConfig::default_memory(),
            (true, None) => {
                return Err(ConfigError::type_error(format!(
                    "is required when {path}.enabled is true"
                ))
                .at(&format!("{path}.providerConfig")))
            }
            (true, Some(v)) => reader.provider(v, &format!("{path}.providerConfig"))?,
        };
        Ok(reader.finish(QueueConfig {
            enabled: block.enabled,
            provider_config,
            worker: block.worker,
            scheduler: block.scheduler,
        }))
    }
}

/// A config read without error, and the warnings reading it gave (unknown keys).
#[derive(Debug)]
pub struct Checked<T> {
    pub config: T,
    pub warnings: Vec<String>,
}

/// Read a block that needs no more than serde and its rules; an unset block (`undefined`,
/// `null`) is all defaults.
fn read<T: DeserializeOwned>(value: &ConfigValue, path: &str) -> Result<Checked<T>, ConfigError> {
    let reader = Reader::default();
    let empty = ConfigValue::Object(Vec::new());
    let config = reader.read(if value.is_unset() { &empty } else { value }, path)?;
    Ok(reader.finish(config))
}

/// One reading of a config: collects the warnings.
#[derive(Default)]
struct Reader {
    warnings: RefCell<Vec<String>>,
}

impl Reader {
    fn read<T: DeserializeOwned>(&self, value: &ConfigValue, path: &str) -> Result<T, ConfigError> {
        T::deserialize(ValueDe {
            value,
            path: path.to_owned(),
            warnings: &self.warnings,
        })
        .map_err(|e| e.at(path))
    }

    fn provider(&self, value: &ConfigValue, path: &str) -> Result<ProviderConfig, ConfigError> {
        let ConfigValue::Object(entries) = value else {
            return Err(ConfigError::type_error(format!(
                "must be an object, got {}",
                value.describe()
            ))
            .at(path));
        };
        let ty = entries.iter().find(|(k, _)| k == "type").map(|(_, v)| v);
        let rest = ConfigValue::Object(
            entries
                .iter()
                .filter(|(k, _)| k != "type")
                .cloned()
                .collect(),
        );
        let at = |e: ConfigError| e.at(path);
        match ty {
            Some(ConfigValue::String(t)) if t == "memory" => {
                Ok(ProviderConfig::Memory(self.read(&rest, path)?))
            }
            Some(ConfigValue::String(t)) if t == "sqs" => {
                let c: SqsConfig = self
                    .read(&rest, path)
                    .map_err(|e| e.when_missing(" when type is 'sqs'"))?;
                c.validate().map_err(|e| e.within(path))?;
                Ok(ProviderConfig::Sqs(c))
            }
            Some(ConfigValue::String(t)) if t == "postgres" => {
                Ok(ProviderConfig::Postgres(self.read(&rest, path)?))
            }
            Some(ConfigValue::String(t)) if t == "sqlite" => {
                Ok(ProviderConfig::Sqlite(self.read(&rest, path)?))
            }
            other => {
                let shown = match other {
                    Some(ConfigValue::String(t)) => t.clone(),
                    Some(v) => v.describe(),
                    None => "undefined".to_owned(),
                };
                let mut e = ConfigError::new(
                    ErrorKind::Plain,
                    format!(
                        "Unknown queue provider type: {shown} ({path}.type must be {})",
                        rule::one_of(ProviderConfig::TYPES)
                    ),
                );
                e.path = Some(String::new());
                Err(at(e))
            }
        }
    }

    fn finish<T>(self, config: T) -> Checked<T> {
        Checked {
            config,
            warnings: self.warnings.into_inner(),
        }
    }
}

pub use crate::redact::redact_url;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn queue(v: serde_json::Value) -> Result<Checked<QueueConfig>, ConfigError> {
        QueueConfig::from_value(&v.into(), "queue")
    }

    fn err(v: ConfigValue) -> (ErrorKind, String) {
        let e = QueueConfig::from_value(&v, "queue").unwrap_err();
        (e.kind, e.to_string())
    }

    #[test]
    fn defaults_fill_a_minimal_config() {
        let c = queue(json!({ "enabled": true, "providerConfig": { "type": "memory" } })).unwrap();
        assert_eq!(
            serde_json::to_value(&c.config).unwrap(),
            json!({
                "enabled": true,
                "providerConfig": { "type": "memory", "maxHistorySize": 1000 },
                "worker": { "mode": "in-process", "concurrency": 5, "pollInterval": 1000, "shutdownTimeout": 30000 },
                "scheduler": { "enabled": false, "pollInterval": 60000, "autoMigrate": true, "retention": 604800000 },
            })
        );
        assert!(c.warnings.is_empty());
        let sqs = queue(json!({ "enabled": true, "providerConfig": { "type": "sqs", "region": "r", "queueUrl": "http://h/q" } })).unwrap();
        let ProviderConfig::Sqs(s) = sqs.config.provider_config else {
            panic!("not sqs")
        };
        assert_eq!(
            (s.visibility_timeout, s.max_message_bytes),
            (DEFAULT_VISIBILITY_TIMEOUT_S, DEFAULT_MAX_MESSAGE_BYTES)
        );
    }

    #[test]
    fn errors_name_the_path_the_value_and_the_class() {
        use ErrorKind::*;
        let sqs = |extra: serde_json::Value| {
            let mut p = json!({ "type": "sqs", "region": "r", "queueUrl": "http://h/q" });
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            ConfigValue::from(json!({ "enabled": true, "providerConfig": p }))
        };
        let with = |k: &str, v: ConfigValue| {
            ConfigValue::Object(vec![
                ("enabled".into(), ConfigValue::Bool(true)),
                ("providerConfig".into(), json!({ "type": "memory" }).into()),
                ("worker".into(), ConfigValue::Object(vec![(k.into(), v)])),
            ])
        };
        let cases: Vec<(ConfigValue, ErrorKind, &str)> = vec![
            (ConfigValue::Null, Type, "queue must be an object, got null"),
            (json!({ "enabled": "yes" }).into(), Type, "queue.enabled must be a boolean, got \"yes\""),
            (json!({ "enabled": true }).into(), Type, "queue.providerConfig is required when queue.enabled is true"),
            (json!({ "enabled": true, "providerConfig": { "type": "kafka" } }).into(), Plain, "Unknown queue provider type: kafka (queue.providerConfig.type must be 'memory', 'sqs', 'postgres' or 'sqlite')"),
            (json!({ "enabled": true, "providerConfig": { "type": "sqs", "region": "r" } }).into(), Type, "queue.providerConfig.queueUrl is required when type is 'sqs', got undefined"),
            (sqs(json!({ "queueUrl": "not a url" })), Type, "queue.providerConfig.queueUrl must be an http(s) URL, got \"not a url\""),
            (sqs(json!({ "visibilityTimeout": 0 })), Range, "queue.providerConfig.visibilityTimeout must be at least 1, got 0"),
            (sqs(json!({ "maxMessageBytes": 1023 })), Range, "queue.providerConfig.maxMessageBytes must be at least 1024, got 1023"),
            (sqs(json!({ "deadLetterQueueUrl": "http://h/q" })), Range, "queue.providerConfig.deadLetterQueueUrl must differ from queueUrl (jobs out of retries would go back to the queue they came from), got \"http://h/q\""),
            (sqs(json!({ "endpoint": "ftp://u:secret@h:1" })), Type, "queue.providerConfig.endpoint must be an http(s) URL, got \"ftp://u:***@h:1/\""),
            (with("concurrency", ConfigValue::Number(0.0)), Range, "queue.worker.concurrency must be at least 1, got 0"),
            (with("shutdownTimeout", ConfigValue::Number(f64::NAN)), Range, "queue.worker.shutdownTimeout must be a non-negative finite number up to 2147483647, got NaN"),
            (with("mode", "cluster".into()), Range, "queue.worker.mode must be 'in-process' or 'standalone', got \"cluster\""),
            (with("mode", ConfigValue::Other("a symbol".into())), Range, "queue.worker.mode must be 'in-process' or 'standalone', got a symbol"),
            (json!({ "scheduler": { "databaseUrl": "mysql://u:pw@h/db" } }).into(), Type, "queue.scheduler.databaseUrl must be a postgres://, postgresql:// or sqlite: URL, got \"mysql://u:***@h/db\""),
            // The scheme as the provider takes it: lowercase (its connect applies this rule too).
            (json!({ "enabled": true, "providerConfig": { "type": "postgres", "databaseUrl": "POSTGRES://u:pw@h/db" } }).into(), Type, "queue.providerConfig.databaseUrl must be a postgres:// or postgresql:// URL, got \"postgres://u:***@h/db\""),
            (json!({ "enabled": true, "providerConfig": { "type": "sqlite", "databaseUrl": "SQLITE:q.db" } }).into(), Type, "queue.providerConfig.databaseUrl must be a sqlite: URL, got \"SQLITE:q.db\""),
        ];
        for (v, kind, msg) in cases {
            assert_eq!(err(v), (kind, msg.to_owned()));
        }
    }

    #[test]
    fn a_disabled_queue_ignores_its_provider_and_unknown_keys_warn() {
        let c =
            queue(json!({ "providerConfig": { "type": "sqs" }, "worker": { "concurency": 3 } }))
                .unwrap();
        assert_eq!(c.config.provider_config, ProviderConfig::default_memory());
        assert_eq!(
            c.warnings,
            vec!["queue.worker.concurency is not a known option (known: mode, concurrency, pollInterval, shutdownTimeout, metricsPort); it is ignored"]
        );
        // undefined and null mean "not set".
        let v = ConfigValue::Object(vec![(
            "worker".into(),
            ConfigValue::Object(vec![("concurrency".into(), ConfigValue::Undefined)]),
        )]);
        assert_eq!(
            QueueConfig::from_value(&v, "queue")
                .unwrap()
                .config
                .worker
                .concurrency,
            5
        );
    }

    #[test]
    fn sqs_validate_checks_a_config_built_in_rust() {
        let c = SqsConfig {
            region: "r".into(),
            queue_url: "http://h/q".into(),
            dead_letter_queue_url: None,
            visibility_timeout: 0,
            endpoint: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            message_group_id: None,
            wait_time_seconds: DEFAULT_WAIT_TIME_SECONDS,
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "providerConfig.visibilityTimeout must be at least 1, got 0"
        );
    }

    #[test]
    fn numbers_and_urls_print_as_javascript_would() {
        assert_eq!(js_number(-0.0), "-0");
        assert_eq!(js_number(1.5), "1.5");
        assert_eq!(js_number(f64::INFINITY), "Infinity");
        assert_eq!(js_number(1e21), "1e+21");
        assert_eq!(js_number(4294967295.0), "4294967295");
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db?x=a@b"), "postgres://h/db?x=a@b");
        assert_eq!(redact_url("sqlite:x.db"), "sqlite:x.db");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = ConfigValue> {
        let key = prop_oneof![
            Just("type".to_owned()),
            Just("enabled".to_owned()),
            Just("providerConfig".to_owned()),
            Just("worker".to_owned()),
            Just("scheduler".to_owned()),
            Just("queueUrl".to_owned()),
            Just("region".to_owned()),
            Just("concurrency".to_owned()),
            Just("mode".to_owned()),
            Just("databaseUrl".to_owned()),
            any::<String>(),
        ];
        let leaf = prop_oneof![
            Just(ConfigValue::Undefined),
            Just(ConfigValue::Null),
            any::<bool>().prop_map(ConfigValue::Bool),
            any::<f64>().prop_map(ConfigValue::Number),
            prop_oneof![
                Just("sqs".to_owned()),
                Just("memory".to_owned()),
                Just("http://h/q".to_owned()),
                any::<String>()
            ]
            .prop_map(ConfigValue::String),
            any::<String>().prop_map(ConfigValue::Other),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(ConfigValue::Array),
                prop::collection::vec((key.clone(), inner), 0..8).prop_map(ConfigValue::Object),
            ]
        })
    }

    proptest! {
        /// Any value reads without a panic: a config, or an error that says where.
        #[test]
        fn any_value_reads_or_names_the_path(v in value()) {
            match QueueConfig::from_value(&v, "queue") {
                Ok(c) => prop_assert!(c.config.worker.concurrency >= 1),
                Err(e) => prop_assert!(e.to_string().starts_with("queue") || e.to_string().starts_with("Unknown queue provider type")),
            }
            let _ = ProviderConfig::from_value(&v, "providerConfig");
        }
    }
}
