//! `NativeWorker`: the core worker pool driven from JavaScript. Jobs go to the JavaScript
//! thread in batches through a threadsafe function; outcomes come back in batches.

use crate::bridge::{
    config_value, guarded, invalid_arg, throw_config, to_json, warn_all, AbortJobs, EmitEvent,
    StartJobs,
};
use crate::provider::NativeProvider;
use chaaskit_queue_core::config::{ConfigValue, WorkerConfig};
use chaaskit_queue_core::events::{Delivered, EventKind, EventRecord};
use chaaskit_queue_core::job::Job;
use chaaskit_queue_core::worker::{AbortReason, Dispatch, HandlerRuntime, Outcome, Worker};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;
use std::sync::{Arc, Mutex};

/// The JavaScript side of the worker: three callbacks, held only while the worker runs so a
/// stopped worker does not keep Node's event loop alive.
#[derive(Default)]
struct JsRuntime {
    callbacks: Mutex<Option<Callbacks>>,
}

struct Callbacks {
    start: StartJobs,
    abort: AbortJobs,
    event: EmitEvent,
}

impl JsRuntime {
    fn with<F: FnOnce(&Callbacks)>(&self, f: F) {
        if let Some(c) = self
            .callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            f(c);
        }
    }
}

impl HandlerRuntime for JsRuntime {
    fn start(&self, jobs: Vec<Dispatch>) {
        match to_json(&jobs) {
            Ok(json) => self.with(|c| {
                c.start.call(json, ThreadsafeFunctionCallMode::NonBlocking);
            }),
            Err(e) => tracing::error!("worker: could not hand jobs to JavaScript: {e}"),
        }
    }

    fn abort(&self, tokens: Vec<u64>, reason: AbortReason) {
        let reason = match reason {
            AbortReason::Timeout => "timeout",
            AbortReason::Shutdown => "shutdown",
            AbortReason::Cancelled => "cancel",
        };
        let tokens: Vec<f64> = tokens.into_iter().map(|t| t as f64).collect();
        self.with(|c| {
            c.abort.call(
                (tokens, reason.to_owned()),
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        });
    }

    fn stalled(&self, job: Job) {
        let event = Delivered {
            record: EventRecord::new(EventKind::Stalled, job.id.clone()),
            job,
        };
        match to_json(&event) {
            Ok(json) => self.with(|c| {
                c.event.call(json, ThreadsafeFunctionCallMode::NonBlocking);
            }),
            Err(e) => tracing::error!("worker: could not hand an event to JavaScript: {e}"),
        }
    }

    fn close(&self) {
        self.callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

/// `WorkerStats`.
#[napi(object)]
pub struct WorkerStatsObject {
    pub processed: f64,
    pub succeeded: f64,
    pub failed: f64,
    pub active: f64,
    pub running: bool,
}

#[napi]
pub struct NativeWorker {
    core: Arc<Worker>,
    config: WorkerConfig,
    runtime: Arc<JsRuntime>,
}

#[napi]
impl NativeWorker {
    /// `config`: the `worker` config block, checked here (errors name `worker.<field>`).
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, provider: &NativeProvider, config: Option<Unknown>) -> Result<Self> {
        let value = match config {
            Some(c) => config_value(&c, 0)?,
            None => ConfigValue::Undefined,
        };
        let checked =
            WorkerConfig::from_value(&value, "worker").map_err(|e| throw_config(&env, e))?;
        warn_all(&checked.warnings);
        let runtime = Arc::new(JsRuntime::default());
        Ok(NativeWorker {
            core: Worker::new(provider.shared(), checked.config.clone(), runtime.clone()),
            config: checked.config,
            runtime,
        })
    }

    /// The worker config, every default filled in.
    #[napi(
        getter,
        ts_return_type = "{ mode: 'in-process' | 'standalone'; concurrency: number; pollInterval: number; shutdownTimeout: number; metricsPort?: number }"
    )]
    pub fn config(&self) -> Result<serde_json::Value> {
        serde_json::to_value(&self.config).map_err(|e| Error::from_reason(e.to_string()))
    }

    /// Run until stopped. `on_jobs(json)` starts a batch; `on_abort(tokens, reason)` aborts
    /// signals; `on_event(json)` delivers an event of the provider (`stalled`).
    /// The worker counts as running when this returns its promise, so a `stop()` called right
    /// after it ends this run.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn run<'env>(
        &self,
        env: &'env Env,
        on_jobs: StartJobs,
        on_abort: AbortJobs,
        on_event: EmitEvent,
    ) -> Result<PromiseRaw<'env, ()>> {
        *self
            .runtime
            .callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Callbacks {
            start: on_jobs,
            abort: on_abort,
            event: on_event,
        });
        let run = self.core.run();
        env.spawn_future(guarded("Worker.start", async move {
            run.await;
            Ok(())
        }))
    }

    /// The worker stops taking jobs before this returns its promise.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn stop<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let stop = self.core.stop();
        env.spawn_future(guarded("Worker.stop", async move {
            stop.await;
            Ok(())
        }))
    }

    /// Report outcomes (`[{ t, e?, r? }]` as JSON text); returns the next batch, if one is ready.
    #[napi(catch_unwind)]
    pub fn complete(&self, outcomes_json: String) -> Result<Option<String>> {
        let outcomes: Vec<Outcome> = serde_json::from_str(&outcomes_json)
            .map_err(|e| invalid_arg(format!("invalid outcomes: {e}")))?;
        let next = self.core.complete(outcomes);
        if next.is_empty() {
            Ok(None)
        } else {
            to_json(&next).map(Some)
        }
    }

    /// Store progress for a running attempt; false when it is no longer running.
    /// `percent` is checked here (a number from 0 to 100).
    #[napi(catch_unwind, ts_args_type = "token: number, percent: number")]
    pub fn progress(&self, env: Env, token: f64, percent: Unknown) -> Result<bool> {
        let percent =
            chaaskit_queue_core::job::progress_of(&crate::bridge::config_value(&percent, 1)?)
                .map_err(|e| crate::bridge::throw_config(&env, e))?;
        Ok(self.core.progress(token as u64, percent))
    }

    /// Store a line the handler logged (`ctx.log`) on its job; false when the attempt is no
    /// longer running.
    #[napi(catch_unwind)]
    pub fn log(&self, token: f64, line: String) -> bool {
        self.core.log(token as u64, line)
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> WorkerStatsObject {
        let s = self.core.stats();
        WorkerStatsObject {
            processed: s.processed as f64,
            succeeded: s.succeeded as f64,
            failed: s.failed as f64,
            active: s.active as f64,
            running: s.running,
        }
    }

    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.core.is_running()
    }
}
