//! The JavaScript bridge: how errors and values cross, and the typed callbacks the worker
//! calls on the JavaScript thread.

use chaaskit_queue_core::QueueError;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use serde::Serialize;

/// A core error as a JavaScript `Error` whose message is the core's; `code` tells kinds apart.
pub(crate) fn napi_err(e: QueueError) -> Error {
    let status = match e {
        QueueError::Invalid(_) => Status::InvalidArg,
        _ => Status::GenericFailure,
    };
    Error::new(status, e.to_string())
}

/// Serialise for JavaScript, which parses the text with `JSON.parse`.
pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v)
        .map_err(|e| Error::from_reason(format!("serialising a job failed: {e}")))
}

/// `(jobsJson: string) => void`: start a batch of jobs on the JavaScript thread.
pub(crate) type StartJobs = ThreadsafeFunction<String, (), String, Status, false>;

/// `([tokens, reason]: [number[], 'timeout' | 'shutdown']) => void`: abort running handlers' signals.
pub(crate) type AbortJobs =
    ThreadsafeFunction<(Vec<f64>, String), (), (Vec<f64>, String), Status, false>;
