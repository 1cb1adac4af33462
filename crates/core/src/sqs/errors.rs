//! SQS errors: which are transient (a receive polls again while its wait lasts), and their
//! text as a `QueueError`, with anything that could be a credential taken out.

use crate::error::QueueError;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// Error codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "RequestThrottled",
    "Throttling",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "KmsThrottled",
];

/// Whether a failed request may succeed if sent again: the network, a timeout, a throttle or
/// a server error; not a missing queue, a refused credential or a bad request.
pub fn is_transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => {
            let code = e.code().unwrap_or_default();
            TRANSIENT_CODES.contains(&code) || status(e).is_some_and(|s| s >= 500)
        }
        _ => false,
    }
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    match e {
        SdkError::ServiceError(ctx) => Some(ctx.raw().status().as_u16()),
        SdkError::ResponseError(ctx) => Some(ctx.raw().status().as_u16()),
        _ => None,
    }
}

/// A short text for an SDK error: the service's code and message when it answered, else the
/// cause chain (connection refused, timeout, …).
pub fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let text = match e {
        SdkError::ServiceError(ctx) => {
            let err = ctx.err();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_owned(),
                _ => chain(e),
            }
        }
        _ => chain(e),
    };
    redact(&text)
}

/// An error and its sources, as `DisplayErrorContext` writes them but without the debug dump:
/// `dispatch failure: io error: …: Connection refused (os error 111)`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !t.is_empty() && !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cur = c.source();
    }
    text
}

/// `QueueError::Backend` for a failed SQS request: `SQS <op> failed: <describe>`.
pub fn backend<E, R>(op: &str, e: &SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    QueueError::Backend(format!("SQS {op} failed: {}", describe(e)))
}

/// Markers after which a request's signature or credential scope may follow.
const SECRET_MARKERS: &[&str] = &[
    "Credential=",
    "Signature=",
    "X-Amz-Security-Token=",
    "x-amz-security-token:",
    "AWSAccessKeyId=",
    "aws_secret_access_key",
    "aws_access_key_id",
];

/// Remove what could be a credential from an error text: anything after a signing marker,
/// and anything shaped like an access key id (`AKIA…`/`ASIA…`).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for m in SECRET_MARKERS {
            if let Some(tail) = strip_prefix_ignore_case(rest, m) {
                out.push_str(&rest[..m.len()]);
                out.push_str("[redacted]");
                let end = tail.find(|c: char| {
                    c == ',' || c == '&' || c == '"' || c == '\'' || c.is_whitespace()
                });
                rest = &tail[end.unwrap_or(tail.len())..];
                continue 'outer;
            }
        }
        if looks_like_key_id(rest)
            && !out
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            out.push_str("[redacted]");
            rest = &rest[20..];
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `AKIA`/`ASIA` followed by 16 upper-case letters or digits, not part of a longer word.
fn looks_like_key_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && (b.starts_with(b"AKIA") || b.starts_with(b"ASIA"))
        && b[4..20]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && !b.get(20).is_some_and(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_signatures_and_key_ids() {
        let t = "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/sqs/aws4_request, \
                 SignedHeaders=host, Signature=abcdef0123 and key AKIAIOSFODNN7EXAMPLE here";
        let r = redact(t);
        assert!(!r.contains("AKIAIOSFODNN7EXAMPLE"), "{r}");
        assert!(!r.contains("abcdef0123"), "{r}");
        assert!(r.contains("SignedHeaders=host"), "{r}");
        assert_eq!(
            redact("connection refused (os error 111)"),
            "connection refused (os error 111)"
        );
        assert_eq!(redact("queue é.fifo"), "queue é.fifo");
    }
}
