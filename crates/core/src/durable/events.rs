//! Job events: what this provider publishes for other processes (one NOTIFY per batch), and
//! the events it reads back with their jobs (`createQueueEvents`).

use super::{lock, DbQueue, Inner, Lease};
use crate::error::Result;
use crate::events::{self, Delivered, EventKind, EventRecord};
use crate::job::Job;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// How long queued events gather before one NOTIFY statement publishes them.
const PUBLISH_WINDOW: Duration = Duration::from_millis(5);

impl Inner {
    /// The events with their jobs as stored now, in order; events of jobs gone are dropped.
    pub(super) async fn deliver(&self, records: Vec<EventRecord>) -> Result<Vec<Delivered>> {
        let mut ids: Vec<Uuid> = records
            .iter()
            .filter_map(|r| Uuid::try_parse(&r.id).ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let jobs: HashMap<String, Job> = self
            .backend
            .table()
            .by_ids(&ids)
            .await?
            .into_iter()
            .map(|j| (j.id.clone(), j))
            .collect();
        Ok(records
            .into_iter()
            .filter_map(|record| {
                let job = jobs.get(&record.id)?.clone();
                Some(Delivered { record, job })
            })
            .collect())
    }

    /// Queue events for other processes (nothing when this provider does not publish).
    pub(super) fn publish(&self, records: Vec<EventRecord>) {
        if let Some(tx) = &self.publish_tx {
            if !records.is_empty() {
                let _ = tx.send(records);
            }
        }
    }

    /// The events of settled attempts: `completed` for `acked`, `failed` (then `dead` when
    /// out of retries) for `failed`.
    pub(super) fn publish_settled(&self, acked: &[Lease], failed: &[Lease]) {
        if self.publish_tx.is_none() {
            return;
        }
        let held = lock(&self.held);
        let mut out = Vec::with_capacity(acked.len() + failed.len());
        let info = |l: &Lease| {
            held.get(&l.id)
                .filter(|h| h.delivery == l.delivery)
                .copied()
        };
        for l in acked {
            let mut r = EventRecord::new(EventKind::Completed, l.id.hyphenated().to_string());
            if let Some(h) = info(l) {
                r.duration_ms = Some(h.since.elapsed().as_millis() as u64);
            }
            out.push(r);
        }
        for l in failed {
            let id = l.id.hyphenated().to_string();
            let h = info(l);
            let last = h.is_some_and(|h| h.last);
            let mut r = EventRecord::new(EventKind::Failed, id.clone());
            r.attempt = h.map(|h| h.attempt);
            r.will_retry = Some(!last);
            out.push(r);
            if last {
                out.push(EventRecord::new(EventKind::Dead, id));
            }
        }
        drop(held);
        self.publish(out);
    }
}

impl DbQueue {
    /// Events with their jobs, as they happen in any process (the provider's `subscribe_events`).
    pub(super) async fn events(&self) -> Result<mpsc::UnboundedReceiver<Vec<Delivered>>> {
        self.check_open()?;
        let mut raw = self
            .inner
            .backend
            .listen_events(Arc::downgrade(&self.inner.shared))
            .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some(first) = raw.recv().await {
                let Some(i) = inner.upgrade() else { return };
                // Whatever else has arrived goes in the same read.
                let mut records = Vec::new();
                let mut next = Some(first);
                while let Some(p) = next {
                    if let Some(r) = events::decode(i.backend.schema(), &p) {
                        records.extend(r);
                    }
                    next = raw.try_recv().ok();
                }
                if records.is_empty() {
                    continue;
                }
                let delivered = match i.deliver(records).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!("queue events: reading the jobs of a notification failed; its events are dropped: {e}");
                        continue;
                    }
                };
                if !delivered.is_empty() && tx.send(delivered).is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

/// Publishes queued events: whatever was queued while one NOTIFY statement ran goes in the
/// next, in payloads of at most [`events::MAX_NOTIFY_BYTES`].
pub(super) async fn publish_loop(
    inner: Weak<Inner>,
    mut rx: mpsc::UnboundedReceiver<Vec<EventRecord>>,
) {
    while let Some(mut records) = rx.recv().await {
        // Gather for a moment: a NOTIFY takes PostgreSQL's notification-queue lock at commit,
        // so under load fewer, fuller payloads cost the workers less.
        tokio::time::sleep(PUBLISH_WINDOW).await;
        while let Ok(more) = rx.try_recv() {
            records.extend(more);
        }
        let Some(i) = inner.upgrade() else { return };
        let payloads = events::encode(i.backend.schema(), &records);
        if let Err(e) = i.backend.publish(&payloads).await {
            if !i.shared.is_closed() {
                tracing::warn!(
                    "queue events: publishing {} event(s) failed: {e}",
                    records.len()
                );
            }
        }
    }
}
