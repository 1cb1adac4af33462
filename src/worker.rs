//! `NativeWorker`: the core worker pool driven from JavaScript. Jobs go to the JavaScript
//! thread in batches through a threadsafe function; outcomes come back in batches.

use crate::bridge::{to_json, AbortJobs, StartJobs};
use crate::provider::NativeProvider;
use chaaskit_queue_core::config::WorkerConfig;
use chaaskit_queue_core::worker::{AbortReason, Dispatch, HandlerRuntime, Outcome, Worker};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;
use std::sync::{Arc, Mutex};

/// The JavaScript side of the worker: two callbacks, held only while the worker runs so a
/// stopped worker does not keep Node's event loop alive.
#[derive(Default)]
struct JsRuntime {
    callbacks: Mutex<Option<(StartJobs, AbortJobs)>>,
}

impl JsRuntime {
    fn with<F: FnOnce(&StartJobs, &AbortJobs)>(&self, f: F) {
        if let Some((start, abort)) = self
            .callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            f(start, abort);
        }
    }
}

impl HandlerRuntime for JsRuntime {
    fn start(&self, jobs: Vec<Dispatch>) {
        match to_json(&jobs) {
            Ok(json) => self.with(|start, _| {
                start.call(json, ThreadsafeFunctionCallMode::NonBlocking);
            }),
            Err(e) => tracing::error!("worker: could not hand jobs to JavaScript: {e}"),
        }
    }

    fn abort(&self, tokens: Vec<u64>, reason: AbortReason) {
        let reason = match reason {
            AbortReason::Timeout => "timeout",
            AbortReason::Shutdown => "shutdown",
        };
        let tokens: Vec<f64> = tokens.into_iter().map(|t| t as f64).collect();
        self.with(|_, abort| {
            abort.call(
                (tokens, reason.to_owned()),
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        });
    }

    fn close(&self) {
        self.callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

#[napi]
pub struct NativeWorker {
    core: Arc<Worker>,
    runtime: Arc<JsRuntime>,
}

#[napi]
impl NativeWorker {
    /// `config_json`: the `worker` config block (defaults filled in by the core).
    #[napi(constructor)]
    pub fn new(provider: &NativeProvider, config_json: String) -> Result<Self> {
        let config: WorkerConfig = serde_json::from_str(&config_json)
            .map_err(|e| Error::new(Status::InvalidArg, format!("invalid worker config: {e}")))?;
        let runtime = Arc::new(JsRuntime::default());
        Ok(NativeWorker {
            core: Worker::new(provider.shared(), config, runtime.clone()),
            runtime,
        })
    }

    /// Run until stopped. `on_jobs(json)` starts a batch; `on_abort(tokens, reason)` aborts signals.
    /// The worker counts as running when this returns its promise, so a `stop()` called right
    /// after it ends this run.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn run<'env>(
        &self,
        env: &'env Env,
        on_jobs: StartJobs,
        on_abort: AbortJobs,
    ) -> Result<PromiseRaw<'env, ()>> {
        *self
            .runtime
            .callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((on_jobs, on_abort));
        let run = self.core.run();
        env.spawn_future(async move {
            run.await;
            Ok(())
        })
    }

    /// The worker stops taking jobs before this returns its promise.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let stop = self.core.stop();
        env.spawn_future(async move {
            stop.await;
            Ok(())
        })
    }

    /// Report outcomes (`[{ t, e?, r? }]` as JSON text); returns the next batch, if one is ready.
    #[napi]
    pub fn complete(&self, outcomes_json: String) -> Result<Option<String>> {
        let outcomes: Vec<Outcome> = serde_json::from_str(&outcomes_json)
            .map_err(|e| Error::new(Status::InvalidArg, format!("invalid outcomes: {e}")))?;
        let next = self.core.complete(outcomes);
        if next.is_empty() {
            Ok(None)
        } else {
            to_json(&next).map(Some)
        }
    }

    /// Store progress for a running attempt; false when it is no longer running.
    #[napi]
    pub fn progress(&self, token: f64, percent: f64) -> bool {
        self.core.progress(token as u64, percent)
    }

    #[napi]
    pub fn stats(&self) -> Result<String> {
        to_json(&self.core.stats())
    }

    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.core.is_running()
    }
}
