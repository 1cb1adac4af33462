//! The `queue` block of the app config: its types, every default and every rule, in one place.
//! [`QueueConfig::from_value`] reads the block as JavaScript gave it, naming the path and value at fault.
//!
//! The block arrives as a [`ConfigValue`] (a JavaScript value, `undefined` and `NaN` included)
//! and is read with serde through [`ConfigValue`]'s own deserializer, which tracks the path of
//! the value being read (as `serde_path_to_error` does) and reports keys no struct knows, with
//! the keys it does know (which a wrapping deserializer cannot see). The rules are the
//! `deserialize_with` functions in [`rule`] and each block's `validate`.

use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fmt;

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
/// Largest delay a JavaScript timer takes, in milliseconds: the bound of every config interval.
pub const MAX_INTERVAL_MS: u64 = 2_147_483_647;
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
}

impl ProviderConfig {
    /// The accepted values of `providerConfig.type`, in the order error messages list them.
    pub const TYPES: &'static [&'static str] = &["memory", "sqs"];

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

// ---- errors ---------------------------------------------------------------------------------

/// Which JavaScript error class an error becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A value of the wrong kind, or a missing one: `TypeError`.
    Type,
    /// A value out of its range or set: `RangeError`.
    Range,
    /// Anything else (an unknown provider type): `Error`.
    Plain,
}

/// A config error: `"<path> <message>"`, e.g. `queue.worker.concurrency must be at least 1, got 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError(Box<ErrorParts>);

/// What a [`ConfigError`] holds (boxed: errors are rare, results are common).
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorParts {
    pub kind: ErrorKind,
    /// Where, once known; `Some("")` when the message already says where.
    path: Option<String>,
    /// A field found missing inside the struct at `path`.
    missing: Option<String>,
    message: String,
    /// `(expected, got)` of a `must be <expected>, got <got>` message.
    parts: Option<(String, String)>,
}

impl ConfigError {
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Type, message)
    }
    pub fn range(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Range, message)
    }
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ConfigError(Box::new(ErrorParts {
            kind,
            path: None,
            missing: None,
            message: message.into(),
            parts: None,
        }))
    }

    /// `must be <expected>, got <got>`.
    pub fn expected(kind: ErrorKind, expected: impl Into<String>, got: impl Into<String>) -> Self {
        let (expected, got) = (expected.into(), got.into());
        let mut e = Self::new(kind, format!("must be {expected}, got {got}"));
        e.parts = Some((expected, got));
        e
    }

    /// The path of the value at fault, unless a deeper one is already known.
    fn at(mut self, path: &str) -> Self {
        if self.path.is_none() {
            self.path = Some(match self.missing.take() {
                Some(field) => format!("{path}.{field}"),
                None => path.to_owned(),
            });
        }
        self
    }

    /// Prefix a path relative to a block (`providerConfig.x`) with where the block is.
    fn within(mut self, block_path: &str) -> Self {
        if let Some(p) = &self.path {
            if let Some(rest) = p.strip_prefix("providerConfig") {
                self.path = Some(format!("{block_path}{rest}"));
            }
        }
        self
    }

    fn when_missing(mut self, condition: &str) -> Self {
        if self.message.starts_with("is required") {
            self.message =
                self.message
                    .replacen("is required", &format!("is required{condition}"), 1);
        }
        self
    }

    /// The message without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::ops::Deref for ConfigError {
    type Target = ErrorParts;
    fn deref(&self) -> &ErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for ConfigError {
    fn deref_mut(&mut self) -> &mut ErrorParts {
        &mut self.0
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.as_deref() {
            Some("") | None => f.write_str(&self.message),
            Some(p) => write!(f, "{p} {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl de::Error for ConfigError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ConfigError::type_error(msg.to_string())
    }
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        ConfigError::type_error(format!("must be {exp}, got {}", unexpected(unexp)))
    }
    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        ConfigError::range(format!("must be {exp}, got {}", unexpected(unexp)))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        ConfigError::range(format!(
            "must be {}, got {}",
            rule::one_of(expected),
            ConfigValue::from(variant).describe()
        ))
    }
    fn missing_field(field: &'static str) -> Self {
        let mut e = ConfigError::type_error("is required, got undefined");
        e.missing = Some(field.to_owned());
        e
    }
}

/// serde's description of a value, as close to JavaScript's as it allows.
fn unexpected(u: Unexpected<'_>) -> String {
    match u {
        Unexpected::Other(s) => s.to_owned(),
        Unexpected::Str(s) => ConfigValue::from(s).describe(),
        Unexpected::Float(n) => js_number(n),
        Unexpected::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

// ---- the value ------------------------------------------------------------------------------

/// A JavaScript value as the config reader sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<ConfigValue>),
    /// Own enumerable properties, in order.
    Object(Vec<(String, ConfigValue)>),
    /// Anything JSON has no place for (a function, a symbol, a bigint, a Date), described.
    Other(String),
}

impl From<&str> for ConfigValue {
    fn from(s: &str) -> Self {
        ConfigValue::String(s.to_owned())
    }
}

impl From<serde_json::Value> for ConfigValue {
    fn from(v: serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null => ConfigValue::Null,
            J::Bool(b) => ConfigValue::Bool(b),
            J::Number(n) => ConfigValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            J::String(s) => ConfigValue::String(s),
            J::Array(a) => ConfigValue::Array(a.into_iter().map(Into::into).collect()),
            J::Object(o) => {
                ConfigValue::Object(o.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}

/// A number as JavaScript prints it (`NaN`, `Infinity`, `-0`, `1.5`, `1e+21`).
pub fn js_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if n == 0.0 && n.is_sign_negative() {
        "-0".into()
    } else if n.abs() >= 1e21 || (n != 0.0 && n.abs() < 1e-6) {
        let s = format!("{n:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{n}")
    }
}

impl ConfigValue {
    /// How an error message shows the value: strings quoted, objects shortened.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        self.describe_into(&mut s, 0);
        if s.chars().count() > 120 {
            s = s.chars().take(117).collect::<String>() + "...";
        }
        s
    }

    fn describe_into(&self, out: &mut String, depth: usize) {
        match self {
            ConfigValue::Undefined => out.push_str("undefined"),
            ConfigValue::Null => out.push_str("null"),
            ConfigValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            ConfigValue::Number(n) => out.push_str(&js_number(*n)),
            ConfigValue::String(s) => {
                let shown: String = s.chars().take(100).collect();
                out.push_str(&serde_json::Value::String(shown).to_string());
                if s.chars().count() > 100 {
                    out.push_str("...");
                }
            }
            ConfigValue::Other(d) => out.push_str(d),
            ConfigValue::Array(items) if depth > 0 => {
                out.push_str(if items.is_empty() { "[]" } else { "[Array]" })
            }
            ConfigValue::Object(e) if depth > 0 => {
                out.push_str(if e.is_empty() { "{}" } else { "[Object]" })
            }
            ConfigValue::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().take(6).enumerate() {
                    out.push_str(if i == 0 { " " } else { ", " });
                    v.describe_into(out, depth + 1);
                }
                out.push_str(if items.is_empty() {
                    "]"
                } else if items.len() > 6 {
                    ", ... ]"
                } else {
                    " ]"
                });
            }
            ConfigValue::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().take(6).enumerate() {
                    out.push_str(if i == 0 { " " } else { ", " });
                    out.push_str(k);
                    out.push_str(": ");
                    v.describe_into(out, depth + 1);
                }
                out.push_str(if entries.is_empty() {
                    "}"
                } else if entries.len() > 6 {
                    ", ... }"
                } else {
                    " }"
                });
            }
        }
    }

    /// Whether the value means "not set" (`undefined` or `null`, as `??` treats them).
    fn is_unset(&self) -> bool {
        matches!(self, ConfigValue::Undefined | ConfigValue::Null)
    }
}

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ConfigValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_none<E>(self) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Undefined)
            }
            fn visit_unit<E>(self) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Bool(b))
            }
            fn visit_f64<E>(self, n: f64) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Number(n))
            }
            fn visit_i64<E>(self, n: i64) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Number(n as f64))
            }
            fn visit_u64<E>(self, n: u64) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Number(n as f64))
            }
            fn visit_str<E>(self, s: &str) -> Result<ConfigValue, E> {
                Ok(ConfigValue::String(s.to_owned()))
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<ConfigValue, D::Error> {
                // How [`ValueDe`] hands over a value JSON cannot hold: its description.
                Ok(ConfigValue::Other(String::deserialize(d)?))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<ConfigValue, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = a.next_element()? {
                    out.push(v);
                }
                Ok(ConfigValue::Array(out))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<ConfigValue, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry()? {
                    out.push((k, v));
                }
                Ok(ConfigValue::Object(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// serde's view of a [`ConfigValue`] at `path`.
struct ValueDe<'a> {
    value: &'a ConfigValue,
    path: String,
    warnings: &'a RefCell<Vec<String>>,
}

impl<'a> ValueDe<'a> {
    fn child(&self, value: &'a ConfigValue, key: &str) -> ValueDe<'a> {
        ValueDe {
            value,
            path: format!("{}.{key}", self.path),
            warnings: self.warnings,
        }
    }
}

impl<'de, 'a> Deserializer<'de> for ValueDe<'a> {
    type Error = ConfigError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        match self.value {
            ConfigValue::Undefined => v.visit_none(),
            ConfigValue::Null => v.visit_unit(),
            ConfigValue::Bool(b) => v.visit_bool(*b),
            ConfigValue::Number(n) => v.visit_f64(*n),
            ConfigValue::String(s) => v.visit_str(s),
            ConfigValue::Other(d) => v.visit_newtype_struct(d.as_str().into_deserializer()),
            ConfigValue::Array(items) => {
                let path = self.path.clone();
                let mut seq = SeqDe {
                    items: items.iter().enumerate(),
                    parent: &self,
                };
                v.visit_seq(&mut seq).map_err(|e| e.at(&path))
            }
            ConfigValue::Object(entries) => {
                let mut map = MapDe {
                    entries: entries.iter().collect::<Vec<_>>().into_iter(),
                    pending: None,
                    parent: &self,
                };
                v.visit_map(&mut map)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        if self.value.is_unset() {
            v.visit_none()
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConfigError> {
        let ConfigValue::Object(entries) = self.value else {
            return Err(ConfigError::type_error(format!(
                "must be an object, got {}",
                self.value.describe()
            )));
        };
        for (k, _) in entries {
            if !fields.contains(&k.as_str()) {
                self.warnings.borrow_mut().push(format!(
                    "{}.{k} is not a known option (known: {}); it is ignored",
                    self.path,
                    fields.join(", ")
                ));
            }
        }
        let known: Vec<&(String, ConfigValue)> = entries
            .iter()
            .filter(|(k, val)| fields.contains(&k.as_str()) && !val.is_unset())
            .collect();
        let mut map = MapDe {
            entries: known.into_iter(),
            pending: None,
            parent: &self,
        };
        v.visit_map(&mut map)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConfigError> {
        match self.value {
            ConfigValue::String(s) => v.visit_enum(s.as_str().into_deserializer()),
            other => Err(ConfigError::range(format!(
                "must be {}, got {}",
                rule::one_of(variants),
                other.describe()
            ))),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct SeqDe<'p, 'a, I> {
    items: I,
    parent: &'p ValueDe<'a>,
}

impl<'de, 'p, 'a, I: Iterator<Item = (usize, &'a ConfigValue)>> de::SeqAccess<'de>
    for SeqDe<'p, 'a, I>
{
    type Error = ConfigError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConfigError> {
        let Some((i, v)) = self.items.next() else {
            return Ok(None);
        };
        let child = ValueDe {
            value: v,
            path: format!("{}[{i}]", self.parent.path),
            warnings: self.parent.warnings,
        };
        let path = child.path.clone();
        seed.deserialize(child).map(Some).map_err(|e| e.at(&path))
    }
}

struct MapDe<'p, 'a> {
    entries: std::vec::IntoIter<&'a (String, ConfigValue)>,
    pending: Option<(&'a str, &'a ConfigValue)>,
    parent: &'p ValueDe<'a>,
}

impl<'de, 'p, 'a> de::MapAccess<'de> for MapDe<'p, 'a> {
    type Error = ConfigError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConfigError> {
        let Some((k, v)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((k.as_str(), v));
        seed.deserialize(k.as_str().into_deserializer()).map(Some)
    }
    fn next_value_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, ConfigError> {
        let Some((k, v)) = self.pending.take() else {
            return Err(ConfigError::type_error("a value without a key"));
        };
        let child = self.parent.child(v, k);
        let path = child.path.clone();
        seed.deserialize(child).map_err(|e| e.at(&path))
    }
}

// ---- the rules ------------------------------------------------------------------------------

/// Every rule a config value must meet, as `deserialize_with` functions (each reading the
/// value whole, so its message can show it) and the checks behind them.
pub mod rule {
    use super::*;

    type R<T> = Result<T, ConfigError>;

    fn value<'de, D: Deserializer<'de>>(d: D) -> Result<ConfigValue, D::Error> {
        ConfigValue::deserialize(d)
    }

    /// `'a', 'b' or 'c'`.
    pub fn one_of(names: &[&str]) -> String {
        let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            Some((last, _)) => last.clone(),
            None => String::new(),
        }
    }

    /// A rule's error as the deserializer's own (a [`ConfigError`] again, under [`ValueDe`]).
    fn to<E: de::Error, T>(r: R<T>) -> Result<T, E> {
        r.map_err(|e| match (&e.parts, e.kind) {
            (Some((exp, got)), ErrorKind::Range) => {
                E::invalid_value(Unexpected::Other(got), &exp.as_str())
            }
            (Some((exp, got)), _) => E::invalid_type(Unexpected::Other(got), &exp.as_str()),
            (None, _) => E::custom(&e.message),
        })
    }

    /// An integer in `min..=max`: `must be a non-negative integer up to MAX`, then `at least MIN`.
    pub fn integer_of(v: &ConfigValue, min: u64, max: u64, unit: &str) -> R<u64> {
        match *v {
            ConfigValue::Number(n)
                if n.is_finite() && n.fract() == 0.0 && n >= 0.0 && n <= max as f64 =>
            {
                let n = n as u64;
                if n < min {
                    Err(ConfigError::expected(
                        ErrorKind::Range,
                        format!("at least {min}{unit}"),
                        n.to_string(),
                    ))
                } else {
                    Ok(n)
                }
            }
            _ => Err(ConfigError::expected(
                ErrorKind::Range,
                format!("a non-negative integer up to {max}"),
                v.describe(),
            )),
        }
    }

    /// A finite number in `min..=max`, rounded to an integer.
    pub fn number_of(v: &ConfigValue, min: u64, max: u64, unit: &str) -> R<u64> {
        match *v {
            ConfigValue::Number(n) if n.is_finite() && n >= 0.0 && n <= max as f64 => {
                if n < min as f64 {
                    Err(ConfigError::expected(
                        ErrorKind::Range,
                        format!("at least {min}{unit}"),
                        js_number(n),
                    ))
                } else {
                    Ok(n.round() as u64)
                }
            }
            _ => Err(ConfigError::expected(
                ErrorKind::Range,
                format!("a non-negative finite number up to {max}"),
                v.describe(),
            )),
        }
    }

    pub fn boolean_of(v: &ConfigValue) -> R<bool> {
        match *v {
            ConfigValue::Bool(b) => Ok(b),
            _ => Err(ConfigError::expected(
                ErrorKind::Type,
                "a boolean",
                v.describe(),
            )),
        }
    }

    pub fn text_of(v: ConfigValue) -> R<String> {
        match v {
            ConfigValue::String(s) if !s.trim().is_empty() => Ok(s),
            other => Err(ConfigError::expected(
                ErrorKind::Type,
                "a non-empty string",
                other.describe(),
            )),
        }
    }

    pub fn http_url_of(v: ConfigValue) -> R<String> {
        let s = text_of(v)?;
        match url::Url::parse(&s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(s),
            _ => Err(ConfigError::expected(
                ErrorKind::Type,
                "an http(s) URL",
                ConfigValue::from(redact_url(&s).as_str()).describe(),
            )),
        }
    }

    pub fn visibility_timeout_of(v: ConfigValue) -> R<u32> {
        integer_of(&v, 1, u64::from(MAX_VISIBILITY_TIMEOUT_S), "").map(|n| n as u32)
    }

    pub fn max_message_bytes_of(v: ConfigValue) -> R<usize> {
        integer_of(&v, MIN_MESSAGE_BYTES as u64, MAX_MESSAGE_BYTES as u64, "").map(|n| n as usize)
    }

    pub fn database_url_of(v: ConfigValue) -> R<String> {
        const EXPECTED: &str = "a postgres://, postgresql:// or sqlite: URL";
        let ConfigValue::String(s) = v else {
            return Err(ConfigError::expected(
                ErrorKind::Type,
                EXPECTED,
                v.describe(),
            ));
        };
        let (scheme, rest) = s.split_once(':').unwrap_or_default();
        let ok = match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => rest.starts_with("//"),
            "sqlite" => !rest.is_empty(),
            _ => false,
        };
        if ok {
            return Ok(s);
        }
        Err(ConfigError::expected(
            ErrorKind::Type,
            EXPECTED,
            ConfigValue::from(redact_url(&s).as_str()).describe(),
        ))
    }

    // serde's entry points, one per field kind.

    pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        to(integer_of(&value(d)?, 0, u64::from(u32::MAX), "").map(|n| n as usize))
    }
    pub fn concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        to(integer_of(&value(d)?, 1, u64::from(MAX_CONCURRENCY), "").map(|n| n as u32))
    }
    pub fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        to(number_of(&value(d)?, 0, MAX_INTERVAL_MS, " ms"))
    }
    pub fn poll_interval<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        to(number_of(&value(d)?, 1, MAX_INTERVAL_MS, " ms"))
    }
    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        to(boolean_of(&value(d)?))
    }
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        to(text_of(value(d)?))
    }
    pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        to(text_of(value(d)?)).map(Some)
    }
    pub fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        to(http_url_of(value(d)?))
    }
    pub fn opt_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        to(http_url_of(value(d)?)).map(Some)
    }
    pub fn visibility_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        to(visibility_timeout_of(value(d)?))
    }
    pub fn max_message_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        to(max_message_bytes_of(value(d)?))
    }
    pub fn database_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        to(database_url_of(value(d)?)).map(Some)
    }
}

/// A URL fit for a message or a log: the password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    match authority[..at].split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &rest[at..]),
        None => url.to_owned(),
    }
}

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
                "scheduler": { "enabled": false, "pollInterval": 60000, "autoMigrate": true },
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
            (json!({ "enabled": true, "providerConfig": { "type": "kafka" } }).into(), Plain, "Unknown queue provider type: kafka (queue.providerConfig.type must be 'memory' or 'sqs')"),
            (json!({ "enabled": true, "providerConfig": { "type": "sqs", "region": "r" } }).into(), Type, "queue.providerConfig.queueUrl is required when type is 'sqs', got undefined"),
            (sqs(json!({ "queueUrl": "not a url" })), Type, "queue.providerConfig.queueUrl must be an http(s) URL, got \"not a url\""),
            (sqs(json!({ "visibilityTimeout": 0 })), Range, "queue.providerConfig.visibilityTimeout must be at least 1, got 0"),
            (sqs(json!({ "maxMessageBytes": 1023 })), Range, "queue.providerConfig.maxMessageBytes must be at least 1024, got 1023"),
            (sqs(json!({ "deadLetterQueueUrl": "http://h/q" })), Range, "queue.providerConfig.deadLetterQueueUrl must differ from queueUrl (jobs out of retries would go back to the queue they came from), got \"http://h/q\""),
            (sqs(json!({ "endpoint": "ftp://u:secret@h:1" })), Type, "queue.providerConfig.endpoint must be an http(s) URL, got \"ftp://u:***@h:1\""),
            (with("concurrency", ConfigValue::Number(0.0)), Range, "queue.worker.concurrency must be at least 1, got 0"),
            (with("shutdownTimeout", ConfigValue::Number(f64::NAN)), Range, "queue.worker.shutdownTimeout must be a non-negative finite number up to 2147483647, got NaN"),
            (with("mode", "cluster".into()), Range, "queue.worker.mode must be 'in-process' or 'standalone', got \"cluster\""),
            (with("mode", ConfigValue::Other("a symbol".into())), Range, "queue.worker.mode must be 'in-process' or 'standalone', got a symbol"),
            (json!({ "scheduler": { "databaseUrl": "mysql://u:pw@h/db" } }).into(), Type, "queue.scheduler.databaseUrl must be a postgres://, postgresql:// or sqlite: URL, got \"mysql://u:***@h/db\""),
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
            vec!["queue.worker.concurency is not a known option (known: mode, concurrency, pollInterval, shutdownTimeout); it is ignored"]
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
            prop_oneof![Just("sqs".to_owned()), Just("memory".to_owned()), Just("http://h/q".to_owned()), any::<String>()]
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
