//! The config exports: `validateQueueConfig`, `defaultProviderConfig` and `redactUrl`. The
//! rules and defaults are the core's (`crates/core/src/config.rs`); this only carries them.

use crate::bridge::{config_value, throw_config, warn_all};
use chaaskit_queue_core::config::{self, ProviderConfig, QueueConfig};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// The whole `queue` block found at `path` (default `queue`) checked, every default filled in,
/// unknown keys warned about. Throws a `TypeError`/`RangeError` (an `Error` for an unknown
/// provider type) whose message begins with the path at fault.
#[napi(catch_unwind, ts_return_type = "Record<string, unknown>")]
pub fn validate_queue_config(
    env: Env,
    config: Unknown,
    path: Option<String>,
) -> Result<serde_json::Value> {
    let value = config_value(&config, 0)?;
    let checked = QueueConfig::from_value(&value, path.as_deref().unwrap_or("queue"))
        .map_err(|e| throw_config(&env, e))?;
    warn_all(&checked.warnings);
    to_value(&checked.config)
}

/// A `providerConfig` found at `path` checked and with its defaults (for the provider constructors).
pub(crate) fn provider_config(env: &Env, config: &Unknown, path: &str) -> Result<ProviderConfig> {
    let value = config_value(config, 0)?;
    let checked = ProviderConfig::from_value(&value, path).map_err(|e| throw_config(env, e))?;
    warn_all(&checked.warnings);
    Ok(checked.config)
}

/// `{ type: 'memory', maxHistorySize: 1000 }`: the provider of a queue with no config.
#[napi(ts_return_type = "{ type: 'memory'; maxHistorySize: number }")]
pub fn default_provider_config() -> Result<serde_json::Value> {
    to_value(&ProviderConfig::default_memory())
}

/// `url` with its password, if any, replaced by `***`.
#[napi(catch_unwind)]
pub fn redact_url(url: String) -> String {
    config::redact_url(&url)
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v)
        .map_err(|e| Error::from_reason(format!("serialising a config failed: {e}")))
}
