//! Prometheus metrics of this process: jobs by type and outcome, wait and run time histograms,
//! and each worker's running and concurrency gauges, rendered in the Prometheus text format.
//!
//! Recording is a few relaxed atomic adds on per-type counters the worker holds; the registry
//! lock is taken only when a worker meets a job type for the first time and when rendering.

use crate::job::QueueStats;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

/// Upper bounds (seconds) of the wait and run time histogram buckets.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// How an attempt ended, as counted in `chaaskit_queue_jobs_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Completed,
    /// Failed with retries left.
    Failed,
    /// Failed with no retries left.
    Dead,
}

impl JobOutcome {
    const ALL: [JobOutcome; 3] = [JobOutcome::Completed, JobOutcome::Failed, JobOutcome::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Completed => "completed",
            JobOutcome::Failed => "failed",
            JobOutcome::Dead => "dead",
        }
    }
}

/// A cumulative histogram of durations.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| s <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            d.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// The metrics of one job type.
#[derive(Default)]
pub struct TypeMetrics {
    outcomes: [AtomicU64; 3],
    /// Enqueue (or due time, for a delayed job) to start of an attempt.
    pub wait: Histogram,
    /// Start to end of an attempt.
    pub run: Histogram,
}

impl TypeMetrics {
    pub fn record(&self, outcome: JobOutcome, run: Duration) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.run.observe(run);
    }

    pub fn count(&self, outcome: JobOutcome) -> u64 {
        self.outcomes[outcome as usize].load(Ordering::Relaxed)
    }
}

/// What a worker shows as gauges.
pub trait WorkerGauges: Send + Sync {
    /// Handlers running now.
    fn running(&self) -> u64;
    fn concurrency(&self) -> u64;
    /// The provider's name (`memory`, `sqs`, …).
    fn provider(&self) -> &'static str;
}

#[derive(Default)]
struct Registry {
    types: Mutex<BTreeMap<String, Arc<TypeMetrics>>>,
    workers: Mutex<Vec<(u64, Weak<dyn WorkerGauges>)>>,
    next_worker: AtomicU64,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

/// The metrics of `job_type`, made on first use.
pub fn for_type(job_type: &str) -> Arc<TypeMetrics> {
    let mut types = REGISTRY.types.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = types.get(job_type) {
        return m.clone();
    }
    let m = Arc::new(TypeMetrics::default());
    types.insert(job_type.to_owned(), m.clone());
    m
}

/// Show a worker's gauges while it lives; returns its `worker` label.
pub fn register_worker(w: Weak<dyn WorkerGauges>) -> u64 {
    let id = REGISTRY.next_worker.fetch_add(1, Ordering::Relaxed) + 1;
    let mut workers = REGISTRY.workers.lock().unwrap_or_else(|p| p.into_inner());
    workers.retain(|(_, w)| w.strong_count() > 0);
    workers.push((id, w));
    id
}

/// A label value escaped for the text format.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The Prometheus text format (version 0.0.4) of every metric of this process. `depths` are
/// the queue stats of the process's providers, each with its `provider` label.
pub fn render(depths: &[(String, QueueStats)]) -> String {
    let mut out = String::new();
    let types: Vec<(String, Arc<TypeMetrics>)> = REGISTRY
        .types
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (escape(k), v.clone()))
        .collect();

    out.push_str("# HELP chaaskit_queue_jobs_total Job attempts that ended, by job type and outcome (failed: will retry).\n");
    out.push_str("# TYPE chaaskit_queue_jobs_total counter\n");
    for (t, m) in &types {
        for o in JobOutcome::ALL {
            let _ = writeln!(
                out,
                "chaaskit_queue_jobs_total{{type=\"{t}\",outcome=\"{}\"}} {}",
                o.as_str(),
                m.count(o)
            );
        }
    }
    for (name, help) in [
        (
            "chaaskit_queue_job_wait_seconds",
            "Time from enqueue (or due time) to the start of an attempt.",
        ),
        (
            "chaaskit_queue_job_run_seconds",
            "Time an attempt ran, until its handler ended or timed out.",
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (t, m) in &types {
            let h = if name.ends_with("wait_seconds") {
                &m.wait
            } else {
                &m.run
            };
            h.render(&mut out, name, &format!("type=\"{t}\""));
        }
    }

    out.push_str("# HELP chaaskit_queue_jobs Jobs in each provider's queue, by status.\n");
    out.push_str("# TYPE chaaskit_queue_jobs gauge\n");
    for (p, s) in depths {
        let p = escape(p);
        for (status, n) in [
            ("pending", s.pending),
            ("scheduled", s.scheduled),
            ("processing", s.processing),
            ("completed", s.completed),
            ("failed", s.failed),
            ("dead", s.dead),
            ("cancelled", s.cancelled),
        ] {
            let _ = writeln!(
                out,
                "chaaskit_queue_jobs{{provider=\"{p}\",status=\"{status}\"}} {n}"
            );
        }
    }

    let workers: Vec<(u64, Arc<dyn WorkerGauges>)> = REGISTRY
        .workers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(|(id, w)| w.upgrade().map(|w| (*id, w)))
        .collect();
    for (name, help, running) in [
        (
            "chaaskit_queue_worker_running",
            "Handlers running now in each worker.",
            true,
        ),
        (
            "chaaskit_queue_worker_concurrency",
            "Handlers each worker runs at most at once.",
            false,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (id, w) in &workers {
            let v = if running {
                w.running()
            } else {
                w.concurrency()
            };
            let _ = writeln!(
                out,
                "{name}{{worker=\"{id}\",provider=\"{}\"}} {v}",
                w.provider()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(70));
        h.observe(Duration::from_secs(1000));
        let mut out = String::new();
        h.render(&mut out, "x", "type=\"a\"");
        assert!(out.contains("x_bucket{type=\"a\",le=\"0.005\"} 1\n"));
        assert!(out.contains("x_bucket{type=\"a\",le=\"0.1\"} 2\n"));
        assert!(out.contains("x_bucket{type=\"a\",le=\"300\"} 2\n"));
        assert!(out.contains("x_bucket{type=\"a\",le=\"+Inf\"} 3\n"));
        assert!(out.contains("x_count{type=\"a\"} 3\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        for_type("we\"ird\\\ntype").record(JobOutcome::Dead, Duration::ZERO);
        let text = render(&[]);
        assert!(text.contains(
            "chaaskit_queue_jobs_total{type=\"we\\\"ird\\\\\\ntype\",outcome=\"dead\"} 1\n"
        ));
    }
}
