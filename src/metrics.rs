//! `renderMetrics`: the core's Prometheus registry rendered as text, with the queue depths the
//! JavaScript side gathered from its providers.

use chaaskit_queue_core::{metrics, QueueStats};
use napi_derive::napi;

/// One provider's `getStats()`, labelled.
#[napi(object)]
pub struct ProviderDepth {
    pub provider: String,
    pub pending: f64,
    pub processing: f64,
    pub completed: f64,
    pub failed: f64,
    pub dead: f64,
    pub scheduled: f64,
    /// Absent for a provider that has no cancelled jobs to count.
    pub cancelled: Option<f64>,
}

/// The Prometheus text format of this process's metrics.
#[napi(catch_unwind)]
pub fn render_metrics(depths: Vec<ProviderDepth>) -> String {
    let depths: Vec<(String, QueueStats)> = depths
        .into_iter()
        .map(|d| {
            (
                d.provider,
                QueueStats {
                    pending: d.pending as u64,
                    processing: d.processing as u64,
                    completed: d.completed as u64,
                    failed: d.failed as u64,
                    dead: d.dead as u64,
                    scheduled: d.scheduled as u64,
                    cancelled: d.cancelled.unwrap_or(0.0) as u64,
                },
            )
        })
        .collect();
    metrics::render(&depths)
}
