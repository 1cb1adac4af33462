//! Job events beyond one worker's own attempts.
//!
//! - [`Signals`]: what a provider tells the workers of its own process — a running job was
//!   cancelled (its handler's signal must abort), a lease ran out (`stalled`). Sent through a
//!   broadcast channel that costs nothing while no worker subscribes.
//! - [`EventRecord`] and [`encode`]/[`decode`]: the cross-process event stream of the
//!   PostgreSQL provider, as NOTIFY payloads (each at most [`MAX_NOTIFY_BYTES`]). A record
//!   carries what only the publisher knows (attempt, duration, whether it retries); the
//!   listener reads the jobs themselves from the table, in one query per notification.

use crate::job::Job;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Largest NOTIFY payload sent: PostgreSQL refuses 8000 bytes and more.
pub const MAX_NOTIFY_BYTES: usize = 7900;
/// Signals a slow worker may fall behind by before it misses some (it then rescans).
const SIGNAL_BUFFER: usize = 1024;

/// What a provider tells the workers of its process.
#[derive(Clone, Debug)]
pub enum Signal {
    /// This job was cancelled (here or, on PostgreSQL, in another process): an attempt of it
    /// running here must abort, and its outcome is discarded.
    Cancelled(String),
    /// This job's lease ran out and the provider took it back (pending again, or dead when out
    /// of retries): the `stalled` event.
    Stalled(Box<Job>),
}

/// A provider's signal channel.
pub struct Signals {
    tx: broadcast::Sender<Signal>,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            tx: broadcast::channel(SIGNAL_BUFFER).0,
        }
    }
}

impl Signals {
    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.tx.subscribe()
    }

    /// Send to the subscribed workers; nothing happens when none is.
    pub fn send(&self, s: Signal) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(s);
        }
    }
}

/// Event names, as JavaScript sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Active,
    Completed,
    Failed,
    Dead,
    Progress,
    Stalled,
}

/// One event of the cross-process stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    #[serde(rename = "e")]
    pub kind: EventKind,
    /// The job's id.
    pub id: String,
    /// The attempt (1-based): `failed`.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// How long the attempt ran, in ms: `completed`.
    #[serde(rename = "ms", default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `failed`: whether the job runs again.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub will_retry: Option<bool>,
    /// `progress`: the percent.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}

impl EventRecord {
    pub fn new(kind: EventKind, id: impl Into<String>) -> Self {
        EventRecord {
            kind,
            id: id.into(),
            attempt: None,
            duration_ms: None,
            will_retry: None,
            percent: None,
        }
    }
}

/// A payload: `{"s": schema, "ev": [records]}` (one channel serves every schema).
#[derive(Deserialize)]
struct Incoming {
    s: String,
    ev: Vec<EventRecord>,
}

/// NOTIFY payloads for `records` of `schema`, each at most [`MAX_NOTIFY_BYTES`], in order;
/// each record is serialised once. A record too big for a payload of its own (it cannot be:
/// records are ids and numbers) is dropped with a warning.
pub fn encode(schema: &str, records: &[EventRecord]) -> Vec<String> {
    let head = match serde_json::to_string(schema) {
        Ok(s) => format!("{{\"s\":{s},\"ev\":["),
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    let mut cur = head.clone();
    for r in records {
        let Ok(text) = serde_json::to_string(r) else {
            continue;
        };
        let empty = cur.len() == head.len();
        // What the payload becomes with this record: a comma unless first, then `]}`.
        if cur.len() + usize::from(!empty) + text.len() + 2 > MAX_NOTIFY_BYTES {
            if head.len() + text.len() + 2 > MAX_NOTIFY_BYTES {
                tracing::warn!(
                    "a queue event of job {} is too big for a notification; it is not sent",
                    r.id
                );
                continue;
            }
            if !empty {
                cur.push_str("]}");
                out.push(std::mem::replace(&mut cur, head.clone()));
            }
        }
        if cur.len() != head.len() {
            cur.push(',');
        }
        cur.push_str(&text);
    }
    if cur.len() != head.len() {
        cur.push_str("]}");
        out.push(cur);
    }
    out
}

/// The records of a payload of `schema`; `None` for another schema's (or foreign) payload.
pub fn decode(schema: &str, payload: &str) -> Option<Vec<EventRecord>> {
    let m: Incoming = serde_json::from_str(payload).ok()?;
    (m.s == schema).then_some(m.ev)
}

/// The wake-up channel's payload that tells every process job `id` of `schema` was cancelled.
pub fn cancel_payload(schema: &str, id: &str) -> String {
    format!("cancel\u{1f}{schema}\u{1f}{id}")
}

/// The job id of a cancel payload of `schema` (see [`cancel_payload`]).
pub fn parse_cancel<'a>(schema: &str, payload: &'a str) -> Option<&'a str> {
    let rest = payload.strip_prefix("cancel\u{1f}")?;
    let (s, id) = rest.rsplit_once('\u{1f}')?;
    (s == schema).then_some(id)
}

/// What a listener hands JavaScript for one event: the record and the job as stored.
#[derive(Serialize)]
pub struct Delivered {
    #[serde(flatten)]
    pub record: EventRecord,
    pub job: Job,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: usize) -> EventRecord {
        let mut r = EventRecord::new(
            EventKind::Completed,
            format!("{i:08}-0000-0000-0000-000000000000"),
        );
        r.duration_ms = Some(i as u64);
        r
    }

    #[test]
    fn chunks_fit_a_notification_and_keep_every_record_in_order() {
        let records: Vec<EventRecord> = (0..1000).map(rec).collect();
        let chunks = encode("public", &records);
        assert!(chunks.len() > 1, "1000 records need several payloads");
        let mut back = Vec::new();
        for c in &chunks {
            assert!(c.len() <= MAX_NOTIFY_BYTES, "{} bytes", c.len());
            back.extend(decode("public", c).expect("own schema"));
        }
        assert_eq!(back, records);
        assert!(decode("other", &chunks[0]).is_none());
        assert!(
            decode("public", "public").is_none(),
            "a wake-up payload is not events"
        );
        assert!(encode("public", &[]).is_empty());
    }

    #[test]
    fn a_record_too_big_is_dropped_not_sent() {
        let mut big = rec(1);
        big.id = "x".repeat(MAX_NOTIFY_BYTES);
        let chunks = encode("s", &[rec(0), big, rec(2)]);
        let ids: Vec<String> = chunks
            .iter()
            .flat_map(|c| decode("s", c).unwrap())
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![rec(0).id, rec(2).id]);
    }

    #[test]
    fn cancel_payloads_name_their_schema() {
        let p = cancel_payload("a:b", "id-1");
        assert_eq!(parse_cancel("a:b", &p), Some("id-1"));
        assert_eq!(parse_cancel("a", &p), None);
        assert_eq!(parse_cancel("public", "public"), None);
    }

    #[tokio::test]
    async fn signals_reach_subscribers_and_cost_nothing_without_them() {
        let s = Signals::default();
        s.send(Signal::Cancelled("lost".into()));
        let mut rx = s.subscribe();
        s.send(Signal::Cancelled("a".into()));
        match rx.recv().await.unwrap() {
            Signal::Cancelled(id) => assert_eq!(id, "a"),
            other => panic!("{other:?}"),
        }
        assert!(
            rx.try_recv().is_err(),
            "the one sent before subscribing is gone"
        );
    }
}
