//! The JavaScript bridge: how errors, panics and values cross, and the typed callbacks the
//! worker calls on the JavaScript thread.

use chaaskit_queue_core::config::{ConfigError, ConfigValue, ErrorKind};
use chaaskit_queue_core::QueueError;
use futures_util::FutureExt;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use serde::Serialize;
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// The `code` of the JavaScript error for each kind of core error (README "Error codes",
/// `QueueErrorCode` in index.d.ts).
pub(crate) fn error_code(e: &QueueError) -> &'static str {
    match e {
        QueueError::Closed => "ERR_QUEUE_CLOSED",
        QueueError::UnknownReceipt(_) => "ERR_QUEUE_UNKNOWN_RECEIPT",
        QueueError::Invalid(_) => INVALID,
        QueueError::Backend(_) => "ERR_QUEUE_BACKEND",
        QueueError::Unsupported(_) => "ERR_QUEUE_NOT_SUPPORTED",
        QueueError::Store(_) => "ERR_QUEUE_STORE",
    }
}

/// The code of a value a caller passed that is out of range or of the wrong form.
pub(crate) const INVALID: &str = "ERR_QUEUE_INVALID";
/// The code of a panic in the addon (a bug).
const INTERNAL: &str = "ERR_QUEUE_INTERNAL";

/// An `Error` with `code`. napi names an error's `code` after its `Status` and gives it no other
/// field, so the code rides in the error's `cause` (an `Error` whose message is the code);
/// `lib/native.js` moves it to `code` as the error leaves the addon.
fn coded(status: Status, code: &'static str, msg: impl ToString) -> Error {
    let mut e = Error::new(status, msg);
    e.set_cause(Error::new(Status::GenericFailure, code));
    e
}

/// A core error as a JavaScript `Error` whose message is the core's, its `code` its kind's.
pub(crate) fn napi_err(e: QueueError) -> Error {
    let status = match e {
        QueueError::Invalid(_) => Status::InvalidArg,
        _ => Status::GenericFailure,
    };
    coded(status, error_code(&e), e.to_string())
}

/// A value read from JavaScript that is not valid (`code` `ERR_QUEUE_INVALID`).
pub(crate) fn invalid_arg(msg: impl ToString) -> Error {
    coded(Status::InvalidArg, INVALID, msg)
}

/// Throw a config error as the JavaScript class its kind names (`TypeError`, `RangeError`, `Error`).
pub(crate) fn throw_config(env: &Env, e: ConfigError) -> Error {
    // napi takes the message as a C string: a NUL the caller passed in (quoted in the
    // message) is written as JSON would write it, or the throw itself would fail.
    let msg = e.to_string().replace('\0', "\\u0000");
    let thrown = match e.kind {
        ErrorKind::Type => env.throw_type_error(&msg, Some(INVALID)),
        ErrorKind::Range => env.throw_range_error(&msg, Some(INVALID)),
        ErrorKind::Plain => env.throw_error(&msg, Some(INVALID)),
    };
    match thrown {
        Ok(()) => Error::new(Status::PendingException, msg),
        Err(e) => e,
    }
}

/// Log the warnings reading a config gave.
pub(crate) fn warn_all(warnings: &[String]) {
    for w in warnings {
        tracing::warn!(target: "chaaskit_queue", "{w}");
    }
}

/// Serialise for JavaScript, which parses the text with `JSON.parse`.
pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v)
        .map_err(|e| Error::from_reason(format!("serialising a job failed: {e}")))
}

/// The text of a panic's payload.
fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Run an exported async function's body so that a panic in it rejects its promise with a
/// real message (napi's own would be a bare "Panic in async function"), logged through `tracing`.
pub(crate) async fn guarded<T, F: Future<Output = Result<T>>>(
    what: &'static str,
    f: F,
) -> Result<T> {
    match AssertUnwindSafe(f).catch_unwind().await {
        Ok(r) => r,
        Err(payload) => {
            let text = panic_text(&*payload);
            tracing::error!(target: "chaaskit_queue", call = what, "internal error (panic): {text}");
            Err(coded(
                Status::GenericFailure,
                INTERNAL,
                format!("{what} failed with an internal error: {text} (a bug in @chaaskit/queue; please report it)"),
            ))
        }
    }
}

/// Log every panic through `tracing` (the synchronous exports turn theirs into a thrown
/// `Error` with `#[napi(catch_unwind)]`; the async ones through [`guarded`]).
pub(crate) fn log_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(target: "chaaskit_queue", "panic{at}: {}", panic_text(info.payload()));
        if std::env::var_os("CHAASKIT_QUEUE_PANIC_BACKTRACE").is_some() {
            previous(info);
        }
    }));
}

/// Deepest nesting read from a JavaScript config value (deeper parts are described, not read).
const MAX_DEPTH: usize = 8;
/// Most array items or object keys read from one JavaScript config value.
const MAX_ENTRIES: u32 = 256;

/// A JavaScript value as the config reader sees it. Getters (and Proxy traps) that throw
/// make this fail with their exception pending, so the caller sees it as thrown.
pub(crate) fn config_value(v: &Unknown, depth: usize) -> Result<ConfigValue> {
    Ok(match v.get_type()? {
        ValueType::Undefined => ConfigValue::Undefined,
        ValueType::Null => ConfigValue::Null,
        ValueType::Boolean => ConfigValue::Bool(unsafe { v.cast::<bool>()? }),
        ValueType::Number => ConfigValue::Number(unsafe { v.cast::<f64>()? }),
        ValueType::String => ConfigValue::String(unsafe { v.cast::<String>()? }),
        ValueType::BigInt => ConfigValue::Other("a bigint".into()),
        ValueType::Symbol => ConfigValue::Other("a symbol".into()),
        ValueType::Function => ConfigValue::Other("a function".into()),
        ValueType::External | ValueType::Unknown => ConfigValue::Other("a native value".into()),
        ValueType::Object => {
            if v.is_date()? {
                return Ok(ConfigValue::Other("a Date".into()));
            }
            if depth >= MAX_DEPTH {
                return Ok(ConfigValue::Other("an object nested too deeply".into()));
            }
            let obj: Object = unsafe { v.cast()? };
            if v.is_array()? {
                let n = obj.get_array_length()?;
                let mut items = Vec::with_capacity(n.min(MAX_ENTRIES) as usize);
                for i in 0..n.min(MAX_ENTRIES) {
                    let item: Unknown = obj.get_element(i)?;
                    items.push(config_value(&item, depth + 1)?);
                }
                return Ok(ConfigValue::Array(items));
            }
            let names: Object = obj.get_all_property_names(
                KeyCollectionMode::OwnOnly,
                KeyFilter::Enumerable,
                KeyConversion::NumbersToStrings,
            )?;
            let n = names.get_array_length()?;
            let mut entries = Vec::with_capacity(n.min(MAX_ENTRIES) as usize);
            for i in 0..n.min(MAX_ENTRIES) {
                let key: Unknown = names.get_element(i)?;
                if key.get_type()? != ValueType::String {
                    continue; // a symbol key: no config option has one
                }
                let key: String = unsafe { key.cast()? };
                let value: Unknown = obj.get_named_property(&key)?;
                entries.push((key, config_value(&value, depth + 1)?));
            }
            ConfigValue::Object(entries)
        }
    })
}

/// `(jobsJson: string) => void`: start a batch of jobs on the JavaScript thread.
pub(crate) type StartJobs = ThreadsafeFunction<String, (), String, Status, false>;

/// `(eventJson: string) => void`: a worker event from its provider (`{"e":"stalled","job":…}`).
pub(crate) type EmitEvent = ThreadsafeFunction<String, (), String, Status, false>;

/// `([tokens, reason]: [number[], 'timeout' | 'shutdown' | 'cancel']) => void`: abort running handlers' signals.
pub(crate) type AbortJobs =
    ThreadsafeFunction<(Vec<f64>, String), (), (Vec<f64>, String), Status, false>;

/// Panics on purpose, synchronously or in a promise (`__panicForTests`), so the tests can show
/// that a panic at the boundary becomes an `Error` with its message, logged, and no crash.
/// Test builds only (the `test-exports` feature): not in the shipped addon.
#[cfg(feature = "test-exports")]
#[doc(hidden)]
#[napi_derive::napi(js_name = "__panicForTests", catch_unwind)]
pub fn panic_for_tests(message: String) -> Result<()> {
    panic!("{message}")
}

#[cfg(feature = "test-exports")]
#[doc(hidden)]
#[napi_derive::napi(js_name = "__panicInPromiseForTests")]
pub async fn panic_in_promise_for_tests(message: String) -> Result<()> {
    guarded("__panicInPromiseForTests", async move {
        if !message.is_empty() {
            panic!("{message}");
        }
        Ok(())
    })
    .await
}
