//! The SQS message format shared with the old JavaScript queue (body JSON and attributes),
//! and the FIFO identifiers derived from a job.

use crate::error::{QueueError, Result};
use crate::job::{JobOptions, Millis};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// Message attribute carrying the job id.
pub const ATTR_JOB_ID: &str = "JobId";
/// Message attribute carrying the job type.
pub const ATTR_JOB_TYPE: &str = "JobType";
/// Message attribute carrying the job's W3C `traceparent` (OpenTelemetry's name for it on
/// SQS), so the body keeps the old queue's format.
pub const ATTR_TRACEPARENT: &str = "traceparent";
/// Message attribute carrying the job's W3C `tracestate`.
pub const ATTR_TRACESTATE: &str = "tracestate";
/// Message attribute added to a message sent to the dead-letter queue.
pub const ATTR_LAST_ERROR: &str = "LastError";
/// `DataType` of every attribute this package writes.
pub const STRING: &str = "String";
/// Longest `LastError` attribute written (characters beyond are cut).
pub const MAX_LAST_ERROR_CHARS: usize = 4096;

/// The body of a job message, field order as the old queue's `JSON.stringify` wrote it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BodyOut<'a> {
    job_id: &'a str,
    #[serde(rename = "type")]
    job_type: &'a str,
    payload: &'a RawValue,
    options: BodyOptions<'a>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_for: Option<String>,
}

/// The options in a body: the old queue's fields only (the trace context is an attribute).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BodyOptions<'a> {
    max_retries: u32,
    timeout: u64,
    priority: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    deduplication_key: Option<&'a str>,
}

/// What [`encode_body`] needs of a job.
pub struct BodyFields<'a> {
    pub id: &'a str,
    pub job_type: &'a str,
    pub payload: &'a RawValue,
    pub options: &'a JobOptions,
    pub created_at: Millis,
    pub scheduled_for: Option<Millis>,
}

/// A job message's body as JSON text: `{ jobId, type, payload, options, createdAt, scheduledFor? }`.
pub fn encode_body(f: &BodyFields<'_>) -> Result<String> {
    let body = BodyOut {
        job_id: f.id,
        job_type: f.job_type,
        payload: f.payload,
        options: BodyOptions {
            max_retries: f.options.max_retries,
            timeout: f.options.timeout,
            priority: f.options.priority,
            deduplication_key: f.options.deduplication_key.as_deref(),
        },
        created_at: iso(f.created_at),
        scheduled_for: f.scheduled_for.map(iso),
    };
    serde_json::to_string(&body)
        .map_err(|e| QueueError::invalid(format!("cannot encode job {}: {e}", f.id)))
}

/// A job decoded from a message body.
#[derive(Debug)]
pub struct Decoded {
    pub id: String,
    pub job_type: String,
    pub payload: Box<RawValue>,
    pub options: JobOptions,
    pub created_at: Millis,
    pub scheduled_for: Option<Millis>,
}

/// Decode a message body written by this package or the old JavaScript queue. `Err` says
/// why the message is not one of ours.
pub fn decode_body(body: &str) -> std::result::Result<Decoded, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct BodyIn {
        job_id: Option<Value>,
        #[serde(rename = "type")]
        job_type: Option<Value>,
        payload: Option<Box<RawValue>>,
        options: Option<Value>,
        created_at: Option<Value>,
        scheduled_for: Option<Value>,
    }
    let b: BodyIn =
        serde_json::from_str(body).map_err(|e| format!("body is not a JSON object: {e}"))?;
    let id = non_empty_string(b.job_id, "jobId")?;
    let job_type = non_empty_string(b.job_type, "type")?;
    let created_at = match b.created_at {
        Some(v) => date(&v).ok_or_else(|| format!("createdAt is not a date: {v}"))?,
        None => return Err("missing field createdAt".into()),
    };
    let scheduled_for = match b.scheduled_for {
        None | Some(Value::Null) => None,
        Some(v) => Some(date(&v).ok_or_else(|| format!("scheduledFor is not a date: {v}"))?),
    };
    let payload = match b.payload {
        Some(p) => p,
        // `JSON.stringify` drops an `undefined` payload.
        None => RawValue::from_string("null".to_owned()).map_err(|e| e.to_string())?,
    };
    Ok(Decoded {
        id,
        job_type,
        payload,
        options: options(b.options.as_ref()),
        created_at,
        scheduled_for,
    })
}

fn non_empty_string(v: Option<Value>, field: &str) -> std::result::Result<String, String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(other) => Err(format!("field {field} is not a non-empty string: {other}")),
        None => Err(format!("missing field {field}")),
    }
}

/// Options as the old queue wrote them, leniently: any field that is absent or not of the
/// expected form takes its default (JavaScript numbers may be fractional or negative).
fn options(v: Option<&Value>) -> JobOptions {
    let mut o = JobOptions::default();
    let Some(Value::Object(m)) = v else { return o };
    let num = |k: &str| m.get(k).and_then(Value::as_f64).filter(|n| n.is_finite());
    if let Some(n) = num("maxRetries") {
        o.max_retries = n.clamp(0.0, u32::MAX as f64) as u32;
    }
    if let Some(n) = num("timeout") {
        o.timeout = n.clamp(0.0, u64::MAX as f64) as u64;
    }
    if let Some(n) = num("priority") {
        o.priority = n.clamp(0.0, u32::MAX as f64) as u32;
    }
    if let Some(Value::String(s)) = m.get("deduplicationKey") {
        o.deduplication_key = Some(s.clone());
    }
    o
}

/// An ISO 8601 date as JavaScript's `toISOString` writes it: `2024-05-01T12:00:00.000Z`, and
/// for years outside 0–9999 a sign and six digits: `+010000-01-01T00:00:00.000Z`.
pub fn iso(ms: Millis) -> String {
    let d = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let year = d.year();
    if (0..=9999).contains(&year) {
        d.to_rfc3339_opts(SecondsFormat::Millis, true)
    } else {
        let sign = if year < 0 { '-' } else { '+' };
        let rest = d.format("-%m-%dT%H:%M:%S%.3fZ");
        format!("{sign}{:06}{rest}", year.unsigned_abs())
    }
}

/// A date of JavaScript's extended form (`±YYYYYY-MM-DDTHH:MM:SS.sssZ`), which RFC 3339 lacks.
fn extended_iso(s: &str) -> Option<DateTime<FixedOffset>> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = s.get(1..7)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year = sign * digits.parse::<i32>().ok()?;
    // Month, day, time and offset as RFC 3339 reads them, in a leap year (so 29 February
    // parses); the day is then checked against the real year.
    let probe = DateTime::parse_from_rfc3339(&format!("2000{}", s.get(7..)?)).ok()?;
    NaiveDate::from_ymd_opt(year, probe.month(), probe.day())?
        .and_time(probe.time())
        .and_local_timezone(*probe.offset())
        .single()
}

/// An ISO 8601 string or epoch milliseconds.
fn date(v: &Value) -> Option<Millis> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .or_else(|| extended_iso(s))
            .map(|d| d.timestamp_millis()),
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(|f| f as Millis),
        _ => None,
    }
}

/// Whether a queue URL names a FIFO queue.
pub fn is_fifo(url: &str) -> bool {
    url.trim_end_matches('/').ends_with(".fifo")
}

/// Check a value SQS takes as `MessageGroupId` or `MessageDeduplicationId`: 1–128 characters,
/// letters, digits and ASCII punctuation. `what` names the value in the error.
pub fn check_fifo_id(value: &str, what: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(QueueError::invalid(format!(
            "{what} {value:?} cannot be used on a FIFO queue: it must be 1-128 characters of letters, digits \
             and ASCII punctuation"
        )))
    }
}

/// `MessageGroupId` and `MessageDeduplicationId` of a job on a FIFO queue: the configured
/// group (else the job type), and the deduplication key (else the job id).
pub fn fifo_ids(
    configured_group: Option<&str>,
    job_type: &str,
    dedup_key: Option<&str>,
    job_id: &str,
) -> Result<(String, String)> {
    let group = match configured_group {
        Some(g) => {
            check_fifo_id(g, "providerConfig.messageGroupId")?;
            g
        }
        None => {
            check_fifo_id(
                job_type,
                "job type (used as MessageGroupId; set providerConfig.messageGroupId)",
            )?;
            job_type
        }
    };
    let dedup = match dedup_key {
        Some(k) => {
            check_fifo_id(k, "options.deduplicationKey")?;
            k
        }
        None => job_id,
    };
    Ok((group.to_owned(), dedup.to_owned()))
}

/// Bytes SQS counts for a message: the body plus each attribute's name, type and value.
pub fn message_size<'a, 'b>(
    body: &str,
    attrs: impl IntoIterator<Item = (&'a str, &'b str)>,
) -> usize {
    body.len()
        + attrs
            .into_iter()
            .map(|(k, v)| k.len() + STRING.len() + v.len())
            .sum::<usize>()
}

/// The attributes of a job message: its id and type, and its trace context when it has one.
pub fn job_attrs<'a>(
    id: &'a str,
    job_type: &'a str,
    options: &'a JobOptions,
) -> impl Iterator<Item = (&'static str, &'a str)> {
    [(ATTR_JOB_ID, id), (ATTR_JOB_TYPE, job_type)]
        .into_iter()
        .chain(
            options
                .traceparent
                .as_deref()
                .map(|v| (ATTR_TRACEPARENT, v)),
        )
        .chain(options.tracestate.as_deref().map(|v| (ATTR_TRACESTATE, v)))
}

/// Set `options`' trace context from a received message's attributes (`attr` reads one by
/// name); an invalid one is dropped.
pub fn read_trace<'a>(options: &mut JobOptions, attr: impl Fn(&str) -> Option<&'a str>) {
    let (tp, ts) = crate::job::trace_context(attr(ATTR_TRACEPARENT), attr(ATTR_TRACESTATE));
    options.traceparent = tp;
    options.tracestate = ts;
}

/// Cut an error text to what the `LastError` attribute carries.
pub fn last_error_value(error: &str) -> String {
    let text = if error.is_empty() {
        "(no message)"
    } else {
        error
    };
    match text.char_indices().nth(MAX_LAST_ERROR_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn body_is_byte_compatible_with_the_old_queue() {
        let payload = raw(r#"{"to":"a@b.c","n":[1,2]}"#);
        let options = JobOptions::default();
        let body = encode_body(&BodyFields {
            id: "j-1",
            job_type: "send-email",
            payload: &payload,
            options: &options,
            created_at: 1_714_564_800_123,
            scheduled_for: None,
        })
        .unwrap();
        // What `JSON.stringify` of the old queue's object gives.
        assert_eq!(
            body,
            r#"{"jobId":"j-1","type":"send-email","payload":{"to":"a@b.c","n":[1,2]},"options":{"maxRetries":3,"timeout":30000,"priority":0},"createdAt":"2024-05-01T12:00:00.123Z"}"#
        );
        let options = JobOptions {
            deduplication_key: Some("k".into()),
            max_retries: 0,
            ..Default::default()
        };
        let body = encode_body(&BodyFields {
            id: "j-2",
            job_type: "t",
            payload: &payload,
            options: &options,
            created_at: 0,
            scheduled_for: Some(1000),
        })
        .unwrap();
        assert!(body.ends_with(
            r#""options":{"maxRetries":0,"timeout":30000,"priority":0,"deduplicationKey":"k"},"createdAt":"1970-01-01T00:00:00.000Z","scheduledFor":"1970-01-01T00:00:01.000Z"}"#
        ));
    }

    #[test]
    fn trace_context_travels_as_attributes_not_in_the_body() {
        let payload = raw("1");
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let options = JobOptions {
            traceparent: Some(tp.into()),
            tracestate: Some("v=1".into()),
            ..Default::default()
        };
        let body = encode_body(&BodyFields {
            id: "j",
            job_type: "t",
            payload: &payload,
            options: &options,
            created_at: 0,
            scheduled_for: None,
        })
        .unwrap();
        assert!(!body.contains("trace"), "{body}");
        let attrs: Vec<_> = job_attrs("j", "t", &options).collect();
        assert_eq!(
            attrs,
            vec![
                (ATTR_JOB_ID, "j"),
                (ATTR_JOB_TYPE, "t"),
                (ATTR_TRACEPARENT, tp),
                (ATTR_TRACESTATE, "v=1")
            ]
        );
        let mut back = decode_body(&body).unwrap().options;
        assert_eq!(back.traceparent, None);
        read_trace(&mut back, |k| {
            attrs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
        });
        assert_eq!(back, options);
        read_trace(&mut back, |k| (k == ATTR_TRACEPARENT).then_some("junk"));
        assert_eq!((back.traceparent, back.tracestate), (None, None));
    }

    #[test]
    fn round_trip() {
        let payload = raw(r#"[1,"x",null]"#);
        let options = JobOptions {
            max_retries: 2,
            timeout: 5,
            priority: 1,
            deduplication_key: Some("d".into()),
            ..Default::default()
        };
        let body = encode_body(&BodyFields {
            id: "id",
            job_type: "ty",
            payload: &payload,
            options: &options,
            created_at: 1_700_000_000_000,
            scheduled_for: Some(1_700_000_005_000),
        })
        .unwrap();
        let d = decode_body(&body).unwrap();
        assert_eq!(d.id, "id");
        assert_eq!(d.job_type, "ty");
        assert_eq!(d.payload.get(), r#"[1,"x",null]"#);
        assert_eq!(d.options, options);
        assert_eq!(d.created_at, 1_700_000_000_000);
        assert_eq!(d.scheduled_for, Some(1_700_000_005_000));
    }

    #[test]
    fn old_messages_decode_leniently() {
        // No payload (undefined in JS), partial and odd options, no scheduledFor.
        let d = decode_body(r#"{"jobId":"a","type":"b","options":{"maxRetries":1.7,"priority":-3},"createdAt":"2024-01-02T03:04:05.006Z"}"#)
            .unwrap();
        assert_eq!(d.payload.get(), "null");
        assert_eq!(
            d.options,
            JobOptions {
                max_retries: 1,
                priority: 0,
                ..Default::default()
            }
        );
        assert_eq!(d.created_at, 1_704_164_645_006);
        assert_eq!(d.scheduled_for, None);
        let d = decode_body(
            r#"{"jobId":"a","type":"b","payload":1,"createdAt":5,"scheduledFor":null}"#,
        )
        .unwrap();
        assert_eq!(d.created_at, 5);
        assert_eq!(d.options, JobOptions::default());
    }

    #[test]
    fn foreign_messages_are_refused_with_a_reason() {
        for (body, why) in [
            ("hello", "not a JSON object"),
            ("[1,2]", "not a JSON object"),
            (
                r#"{"type":"b","createdAt":"2024-01-01T00:00:00Z"}"#,
                "missing field jobId",
            ),
            (
                r#"{"jobId":"a","createdAt":"2024-01-01T00:00:00Z"}"#,
                "missing field type",
            ),
            (
                r#"{"jobId":"a","type":""}"#,
                "field type is not a non-empty string",
            ),
            (
                r#"{"jobId":7,"type":"b"}"#,
                "field jobId is not a non-empty string",
            ),
            (r#"{"jobId":"a","type":"b"}"#, "missing field createdAt"),
            (
                r#"{"jobId":"a","type":"b","createdAt":"yesterday"}"#,
                "createdAt is not a date",
            ),
        ] {
            let err = decode_body(body).unwrap_err();
            assert!(err.contains(why), "{body}: {err}");
        }
    }

    #[test]
    fn fifo_urls_and_ids() {
        assert!(is_fifo("http://127.0.0.1:5000/123456789012/jobs.fifo"));
        assert!(is_fifo("https://sqs.us-east-1.amazonaws.com/1/q.fifo/"));
        assert!(!is_fifo("https://sqs.us-east-1.amazonaws.com/1/fifo"));
        assert_eq!(
            fifo_ids(None, "email", None, "id-1").unwrap(),
            ("email".into(), "id-1".into())
        );
        assert_eq!(
            fifo_ids(Some("g"), "email", Some("k1"), "id-1").unwrap(),
            ("g".into(), "k1".into())
        );
        let e = fifo_ids(None, "bad type", None, "id")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("messageGroupId") && e.contains("\"bad type\""),
            "{e}"
        );
        let long = "x".repeat(129);
        let e = fifo_ids(None, "t", Some(&long), "id")
            .unwrap_err()
            .to_string();
        assert!(e.contains("options.deduplicationKey"), "{e}");
        assert!(fifo_ids(None, "t", Some("é"), "id").is_err());
        assert!(fifo_ids(Some(""), "t", None, "id").is_err());
    }

    #[test]
    fn dates_outside_years_0_to_9999_as_javascript_writes_them() {
        // `new Date(253402300800000).toISOString()`, and year -1 in Node.
        assert_eq!(iso(253_402_300_800_000), "+010000-01-01T00:00:00.000Z");
        assert_eq!(iso(-62_193_657_600_000), "-000001-03-01T00:00:00.000Z");
        for ms in [
            253_402_300_800_000,
            -62_193_657_600_000,
            0,
            1_714_564_800_123,
        ] {
            assert_eq!(date(&Value::from(iso(ms))), Some(ms));
        }
        assert_eq!(date(&Value::from("-000001-02-29T00:00:00.000Z")), None);
        assert_eq!(date(&Value::from("+01000é-01-01T00:00:00.000Z")), None);
    }

    #[test]
    fn sizes_and_last_error() {
        assert_eq!(
            message_size("abcd", job_attrs("id", "ty", &JobOptions::default())),
            4 + 5 + 6 + 2 + 7 + 6 + 2
        );
        assert_eq!(last_error_value(""), "(no message)");
        let long = "é".repeat(MAX_LAST_ERROR_CHARS + 5);
        assert_eq!(
            last_error_value(&long).chars().count(),
            MAX_LAST_ERROR_CHARS + 1
        );
    }
}

/// The message parsers over arbitrary input: they answer (a job or the reason it is not one)
/// and never panic; what `encode_body` writes, `decode_body` reads back unchanged.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Any JSON value, strings drawn from all of Unicode.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            ".*".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::hash_map(".*", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A body with each field of the format absent or any JSON value, ISO dates likely.
    fn any_body() -> impl Strategy<Value = String> {
        let field = || {
            prop_oneof![
                Just(None),
                any_json().prop_map(Some),
                "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,12}Z?".prop_map(|s| Some(Value::from(s))),
            ]
        };
        (field(), field(), field(), field(), field(), field()).prop_map(|(a, b, c, d, e, f)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("jobId", a),
                ("type", b),
                ("payload", c),
                ("options", d),
                ("createdAt", e),
                ("scheduledFor", f),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m).to_string()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn decode_never_panics_on_any_text(body in ".*") {
            let _ = decode_body(&body);
        }

        #[test]
        fn decode_answers_any_body_and_keeps_its_promises(body in any_body()) {
            if let Ok(d) = decode_body(&body) {
                prop_assert!(!d.id.is_empty() && !d.job_type.is_empty());
                // What was decoded can be written again.
                let again = encode_body(&BodyFields {
                    id: &d.id,
                    job_type: &d.job_type,
                    payload: &d.payload,
                    options: &d.options,
                    created_at: d.created_at,
                    scheduled_for: d.scheduled_for,
                });
                prop_assert!(again.is_ok());
            }
        }

        #[test]
        fn encode_then_decode_is_identity(
            id in ".+",
            job_type in ".+",
            payload in any_json(),
            max_retries in any::<u32>(),
            timeout in 0u64..(1 << 53),
            priority in any::<u32>(),
            dedup in proptest::option::of(".*"),
            // JavaScript's date range (±8.64e15 ms), as far as chrono reaches (±262,143 years).
            created_at in -8_200_000_000_000_000i64..8_200_000_000_000_000,
            scheduled_for in proptest::option::of(0i64..4_102_444_800_000),
        ) {
            let payload = RawValue::from_string(payload.to_string()).unwrap();
            let options = JobOptions { max_retries, timeout, priority, deduplication_key: dedup, ..Default::default() };
            let body = encode_body(&BodyFields {
                id: &id,
                job_type: &job_type,
                payload: &payload,
                options: &options,
                created_at,
                scheduled_for,
            })
            .unwrap();
            let d = decode_body(&body).unwrap();
            prop_assert_eq!(d.id, id);
            prop_assert_eq!(d.job_type, job_type);
            prop_assert_eq!(d.payload.get(), payload.get());
            prop_assert_eq!(d.options, options);
            prop_assert_eq!(d.created_at, created_at);
            prop_assert_eq!(d.scheduled_for, scheduled_for);
        }

        #[test]
        fn fifo_ids_and_last_error_never_panic(text in ".*", other in ".*") {
            let ok = check_fifo_id(&text, "x").is_ok();
            prop_assert_eq!(ok, !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            let _ = fifo_ids(Some(&text), &other, Some(&other), &text);
            let cut = last_error_value(&text);
            prop_assert!(cut.chars().count() <= MAX_LAST_ERROR_CHARS + 1);
            prop_assert!(text.is_empty() || text.starts_with(cut.trim_end_matches('…')));
        }
    }
}
