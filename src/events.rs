//! `NativeEvents`: a provider's cross-process event stream (PostgreSQL LISTEN/NOTIFY), handed
//! to JavaScript in batches as JSON text.

use crate::bridge::{guarded, napi_err, to_json, EmitEvent};
use crate::provider::NativeProvider;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;
use std::sync::Mutex;
use tokio::task::JoinHandle;

/// A subscription; `close()` ends it (so does closing its provider).
#[napi]
pub struct NativeEvents {
    task: Mutex<Option<JoinHandle<()>>>,
}

#[napi]
impl NativeProvider {
    /// Listen to the queue's events from every process. Resolves once listening; each batch
    /// reaches `on_events(json)` as `[{ e, id, job, a?, ms?, r?, p? }]`.
    #[napi(ts_return_type = "Promise<NativeEvents>")]
    pub async fn listen_events(&self, on_events: EmitEvent) -> Result<NativeEvents> {
        let provider = self.shared();
        guarded("createQueueEvents", async move {
            let mut rx = provider.subscribe_events().await.map_err(napi_err)?;
            let task = tokio::spawn(async move {
                while let Some(batch) = rx.recv().await {
                    match to_json(&batch) {
                        Ok(json) => {
                            on_events.call(json, ThreadsafeFunctionCallMode::NonBlocking);
                        }
                        Err(e) => tracing::error!("queue events: {e}"),
                    }
                }
            });
            Ok(NativeEvents {
                task: Mutex::new(Some(task)),
            })
        })
        .await
    }
}

#[napi]
impl NativeEvents {
    /// Stop listening; the callback is released (the process may exit).
    #[napi(catch_unwind)]
    pub fn close(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }
}
