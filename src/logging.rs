//! Logging for the addon and for JavaScript callers: one `tracing` subscriber on stderr,
//! filtered by `CHAASKIT_QUEUE_LOG` (or `RUST_LOG`), default `info`.

use napi_derive::napi;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub(crate) fn init() {
    let filter = EnvFilter::try_from_env("CHAASKIT_QUEUE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Another copy of the addon in this process may have set one already; keep it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // Node may leave stderr non-blocking: a full pipe fails a write with EAGAIN, and
        // reporting that through `eprintln!` would panic in whatever task was logging.
        .log_internal_errors(false)
        .try_init();
}

/// Log a line from JavaScript (the package's warnings, `ctx.log`) through `tracing`.
/// `level` is `error`, `warn`, `info`, `debug` or `trace`.
#[napi(catch_unwind)]
pub fn log(level: String, message: String) {
    match level.as_str() {
        "error" => tracing::error!(target: "chaaskit_queue", "{message}"),
        "warn" => tracing::warn!(target: "chaaskit_queue", "{message}"),
        "debug" => tracing::debug!(target: "chaaskit_queue", "{message}"),
        "trace" => tracing::trace!(target: "chaaskit_queue", "{message}"),
        _ => tracing::info!(target: "chaaskit_queue", "{message}"),
    }
}

/// Whether a line at `level` would be written, so callers can skip formatting it.
#[napi(catch_unwind)]
pub fn log_enabled(level: String) -> bool {
    match level.as_str() {
        "error" => tracing::enabled!(target: "chaaskit_queue", tracing::Level::ERROR),
        "warn" => tracing::enabled!(target: "chaaskit_queue", tracing::Level::WARN),
        "debug" => tracing::enabled!(target: "chaaskit_queue", tracing::Level::DEBUG),
        "trace" => tracing::enabled!(target: "chaaskit_queue", tracing::Level::TRACE),
        _ => tracing::enabled!(target: "chaaskit_queue", tracing::Level::INFO),
    }
}
