//! What an enqueue passes in: the job type, `EnqueueOptions` and `enqueueBulk`'s items, read
//! from their JavaScript values and checked by the core's input rules (`job.rs`), which name
//! the field and value at fault. JavaScript dates are read here, as their time values.

use crate::bridge::{config_value, invalid_arg, throw_config};
use chaaskit_queue_core::config::{ConfigError, ConfigValue};
use chaaskit_queue_core::job as rule;
use chaaskit_queue_core::job::{raw_json, EnqueueInput, EnqueueOptions, Millis, NewJob};
use napi::bindgen_prelude::*;
use napi::JsDate;
use napi_derive::napi;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// `EnqueueOptions` as JavaScript passes them: each field is read as it is and checked by the
/// core (`EnqueueOptions::from_input`); unknown keys (`tx`) are not read.
#[napi(object, object_to_js = false)]
pub struct EnqueueArgs<'a> {
    #[napi(ts_type = "number")]
    pub delay: Option<Unknown<'a>>,
    #[napi(ts_type = "Date | number | string")]
    pub scheduled_for: Option<Unknown<'a>>,
    #[napi(ts_type = "number")]
    pub max_retries: Option<Unknown<'a>>,
    #[napi(ts_type = "number")]
    pub timeout: Option<Unknown<'a>>,
    #[napi(ts_type = "number")]
    pub priority: Option<Unknown<'a>>,
    #[napi(ts_type = "string")]
    pub deduplication_key: Option<Unknown<'a>>,
    /// W3C trace context of the enqueue (set by `otel.js`; a value that is not a valid one is
    /// dropped by the core, never an error: a trace context is advisory).
    #[napi(ts_type = "string")]
    pub traceparent: Option<Unknown<'a>>,
    #[napi(ts_type = "string")]
    pub tracestate: Option<Unknown<'a>>,
}

/// The W3C trace context of an `enqueueBulk` call, given to every item without its own
/// (`otel.js`).
#[napi(object)]
pub struct TraceArgs {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

/// A trace-context field: kept when it is a string, ignored otherwise.
fn trace_field(v: Option<Unknown>) -> Result<Option<String>> {
    match v {
        Some(u) if u.get_type()? == ValueType::String => Ok(Some(unsafe { u.cast::<String>()? })),
        _ => Ok(None),
    }
}

/// A config error thrown as its JavaScript class.
fn thrown(env: &Env) -> impl Fn(ConfigError) -> Error + '_ {
    move |e| throw_config(env, e)
}

/// A field's value as the rules read it (`Undefined` when absent).
fn field(v: Option<Unknown>) -> Result<ConfigValue> {
    match v {
        None => Ok(ConfigValue::Undefined),
        Some(u) => config_value(&u, 1),
    }
}

/// A date argument as the rules read it: a `Date` as its time value (an invalid one
/// described), a string as `Date.parse` reads it (kept as the string when it cannot), any
/// other value as it is.
pub(crate) fn date_value(env: &Env, v: Option<Unknown>) -> Result<ConfigValue> {
    let Some(u) = v else {
        return Ok(ConfigValue::Undefined);
    };
    match u.get_type()? {
        ValueType::Number => Ok(ConfigValue::Number(unsafe { u.cast::<f64>()? })),
        ValueType::Object if u.is_date()? => {
            let ms = unsafe { u.cast::<JsDate>()? }.value_of()?;
            Ok(if ms.is_finite() {
                ConfigValue::Number(ms)
            } else {
                ConfigValue::Other("Date(Invalid Date)".into())
            })
        }
        ValueType::String => {
            let s: String = unsafe { u.cast()? };
            // `Date` is a function; its properties are read as an object's.
            let date: Unknown = env.get_global()?.get_named_property("Date")?;
            let date = Object::from_raw(env.raw(), date.raw());
            let parse: Function<String, f64> = date.get_named_property("parse")?;
            let ms = parse.call(s.clone())?;
            Ok(if ms.is_finite() {
                ConfigValue::Number(ms)
            } else {
                ConfigValue::String(s)
            })
        }
        _ => config_value(&u, 1),
    }
}

/// The date found at `path` (`date`, `options.from`), as epoch ms.
pub(crate) fn date_at(env: &Env, v: Option<Unknown>, path: &str) -> Result<Millis> {
    rule::date_at(&date_value(env, v)?, path).map_err(thrown(env))
}

/// The job type found at `path`.
pub(crate) fn job_type(env: &Env, v: Option<Unknown>, path: &str) -> Result<String> {
    rule::job_type_at(field(v)?, path).map_err(thrown(env))
}

/// An options argument found at `path`: `Some` when it is an object, `None` when it is
/// `undefined` or `null`, a `TypeError` naming it otherwise.
pub(crate) fn options_object<'a>(
    env: &Env,
    v: Option<Unknown<'a>>,
    path: &str,
) -> Result<Option<Unknown<'a>>> {
    let Some(u) = v else {
        return Ok(None);
    };
    match u.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        ValueType::Object => Ok(Some(u)),
        _ => {
            let got = config_value(&u, 1)?;
            Err(thrown(env)(
                rule::options_object_error(&got, path).unwrap_or_else(|| {
                    ConfigError::type_error(format!("{path} must be an object"))
                }),
            ))
        }
    }
}

/// The options found at `path` checked (`undefined` and `null` are none).
pub(crate) fn enqueue_options(env: &Env, v: Option<Unknown>, path: &str) -> Result<EnqueueOptions> {
    let Some(u) = options_object(env, v, path)? else {
        return Ok(EnqueueOptions::default());
    };
    let a = unsafe { EnqueueArgs::from_napi_value(env.raw(), u.raw())? };
    let input = EnqueueInput {
        delay: field(a.delay)?,
        scheduled_for: date_value(env, a.scheduled_for)?,
        max_retries: field(a.max_retries)?,
        timeout: field(a.timeout)?,
        priority: field(a.priority)?,
        deduplication_key: field(a.deduplication_key)?,
    };
    let mut options = EnqueueOptions::from_input(&input, path).map_err(thrown(env))?;
    options.traceparent = trace_field(a.traceparent)?;
    options.tracestate = trace_field(a.tracestate)?;
    Ok(options)
}

/// `receive`'s arguments, checked and with their defaults.
#[napi(object, object_from_js = false)]
pub struct ReceiveArgs {
    pub max: u32,
    pub wait_ms: f64,
}

/// `receive(maxMessages, waitTimeSeconds)`'s arguments checked, defaults filled in (the core's).
#[napi(
    catch_unwind,
    ts_args_type = "maxMessages?: number | undefined, waitTimeSeconds?: number | undefined"
)]
pub fn receive_args(
    env: Env,
    max_messages: Option<Unknown>,
    wait_time_seconds: Option<Unknown>,
) -> Result<ReceiveArgs> {
    let (max, wait_ms) = rule::receive_args(&field(max_messages)?, &field(wait_time_seconds)?)
        .map_err(thrown(&env))?;
    Ok(ReceiveArgs {
        max,
        wait_ms: wait_ms as f64,
    })
}

/// One job of `enqueue`: its type and options checked, its payload the JSON text `index.js` made.
pub(crate) fn new_job(
    env: &Env,
    job_type_value: Unknown,
    payload_json: &str,
    options: Option<Unknown>,
) -> Result<NewJob> {
    let job_type = job_type(env, Some(job_type_value), "type")?;
    let options = enqueue_options(env, options, "options")?;
    let payload =
        raw_json(payload_json).map_err(|e| invalid_arg(format!("payload is not JSON: {e}")))?;
    Ok(NewJob::new(job_type, payload, options))
}

/// The jobs of `enqueueBulk(items)`. `index.js` serialises the items as `flat_json`,
/// `[type, payload, type, payload, …]` (one `JSON.stringify` for the batch, an item's absent
/// `type` as `null`), and passes the items that have options as `option_items` (their indexes)
/// and `options`. An item whose type is not a job type is read again from `items` to say what
/// is wrong with it.
pub(crate) fn bulk_jobs(
    env: &Env,
    items: &Unknown,
    flat_json: &str,
    option_items: Option<Vec<u32>>,
    options: Option<Vec<Unknown>>,
    trace: Option<TraceArgs>,
) -> Result<Vec<NewJob>> {
    if !items.is_array()? {
        let got = config_value(items, 1)?;
        return Err(thrown(env)(rule::bulk_items_error(&got)));
    }
    let Flat(slots) = serde_json::from_str(flat_json)
        .map_err(|e| invalid_arg(format!("enqueueBulk items are not valid: {e}")))?;
    let mut jobs = Vec::with_capacity(slots.len());
    for (i, (ty, payload)) in slots.into_iter().enumerate() {
        let checked = match ty {
            Some(s) => rule::item_type_of(ConfigValue::String(s), i),
            None => Err(item_error(items, i)?),
        };
        jobs.push(NewJob::new(
            checked.map_err(thrown(env))?,
            payload,
            EnqueueOptions::default(),
        ));
    }
    let indexes = option_items.unwrap_or_default();
    for (i, o) in indexes.into_iter().zip(options.unwrap_or_default()) {
        let path = format!("items[{i}].options");
        let job = jobs
            .get_mut(i as usize)
            .ok_or_else(|| invalid_arg(format!("{path}: no such item")))?;
        job.options = enqueue_options(env, Some(o), &path)?;
    }
    if let Some(t) = trace {
        for job in jobs.iter_mut().filter(|j| j.options.traceparent.is_none()) {
            job.options.traceparent = Some(t.traceparent.clone());
            job.options.tracestate.clone_from(&t.tracestate);
        }
    }
    Ok(jobs)
}

/// What is wrong with `items[i]`, whose type did not arrive as a string.
fn item_error(items: &Unknown, i: usize) -> Result<ConfigError> {
    let arr: Object = unsafe { items.cast()? };
    let item: Unknown = arr.get_element(i as u32)?;
    let value = config_value(&item, 0)?;
    Ok(rule::bulk_item_error(&value, i).unwrap_or_else(|| {
        ConfigError::type_error(format!("items[{i}].type must be a non-empty string"))
    }))
}

/// `[type, payload, …]` read straight into pairs, payloads kept as raw JSON; a type that is
/// not a string is `None`.
struct Flat(Vec<(Option<String>, Box<RawValue>)>);

/// A type slot: a string, or anything else (skipped).
struct TypeSlot(Option<String>);

impl<'de> Deserialize<'de> for TypeSlot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TypeSlot;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a job type")
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<TypeSlot, E> {
                Ok(TypeSlot(Some(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<TypeSlot, E> {
                Ok(TypeSlot(Some(s)))
            }
            fn visit_unit<E>(self) -> std::result::Result<TypeSlot, E> {
                Ok(TypeSlot(None))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<TypeSlot, E> {
                Ok(TypeSlot(None))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<TypeSlot, E> {
                Ok(TypeSlot(None))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<TypeSlot, E> {
                Ok(TypeSlot(None))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<TypeSlot, E> {
                Ok(TypeSlot(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<TypeSlot, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TypeSlot(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<TypeSlot, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TypeSlot(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Flat;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array [type, payload, type, payload, …]")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Flat, A::Error> {
                let mut jobs = Vec::with_capacity(seq.size_hint().unwrap_or(0) / 2);
                while let Some(TypeSlot(ty)) = seq.next_element()? {
                    let payload: Box<RawValue> = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::custom("a type without a payload"))?;
                    jobs.push((ty, payload));
                }
                Ok(Flat(jobs))
            }
        }
        d.deserialize_seq(Pairs)
    }
}
