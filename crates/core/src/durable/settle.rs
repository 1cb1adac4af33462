//! Settlement: receipts, acknowledgements and failures merged into batches (one statement
//! each), the retry backoff the SQL applies, and forgetting a settled attempt's lease.

use super::{lock, DbQueue, Inner};
use crate::error::{QueueError, Result};
use crate::job::{retry_backoff_ms, JobStatus};
use serde_json::value::RawValue;
use std::sync::Weak;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Receipts settled in one statement at most.
const SETTLE_BATCH: usize = 1000;

/// One attempt to settle: the job and the delivery its receipt names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    pub id: Uuid,
    pub delivery: i64,
}

/// Backoff after attempt `n` at index `n` (`n` capped at 16), for the SQL of `fail`.
pub(super) fn backoff_table() -> Vec<i64> {
    (0..=16)
        .map(|n| i64::try_from(retry_backoff_ms(n)).unwrap_or(i64::MAX))
        .collect()
}

pub(super) enum Settle {
    Ack(Lease, Option<Box<RawValue>>),
    Fail(Lease, String),
}

pub(super) struct SettleReq {
    pub(super) op: Settle,
    pub(super) done: oneshot::Sender<Result<bool>>,
}

impl DbQueue {
    pub(super) async fn settle(
        &self,
        receipt: &str,
        op: impl FnOnce(Lease) -> Settle,
    ) -> Result<()> {
        let lease = parse_receipt(receipt)?;
        let (done, rx) = oneshot::channel();
        {
            let tx = lock(&self.inner.settle_tx);
            let tx = tx.as_ref().ok_or(QueueError::Closed)?;
            tx.send(SettleReq {
                op: op(lease),
                done,
            })
            .map_err(|_| QueueError::Closed)?;
        }
        let outcome = rx.await.map_err(|_| QueueError::Closed).and_then(|r| r);
        // Whatever the database said, this attempt is over here: stop renewing its lease (if
        // the write was lost, the job runs again once the lease ends).
        self.inner.forget(lease);
        if outcome? || self.was_cancelled(lease).await? {
            Ok(())
        } else {
            Err(QueueError::UnknownReceipt(receipt.to_owned()))
        }
    }

    /// Whether the job of an attempt that settled nothing was cancelled (its outcome is then
    /// discarded, not an error).
    pub(super) async fn was_cancelled(&self, lease: Lease) -> Result<bool> {
        let job = self.inner.backend.table().get(lease.id).await?;
        Ok(job.is_some_and(|j| j.status == JobStatus::Cancelled))
    }
}

impl Inner {
    pub(super) fn forget(&self, lease: Lease) {
        let mut held = lock(&self.held);
        if held.get(&lease.id).map(|h| h.delivery) == Some(lease.delivery) {
            held.remove(&lease.id);
        }
    }
}

/// `"<uuid>:<delivery>"`.
pub(super) fn parse_receipt(receipt: &str) -> Result<Lease> {
    let unknown = || QueueError::UnknownReceipt(receipt.to_owned());
    let (id, delivery) = receipt.rsplit_once(':').ok_or_else(unknown)?;
    Ok(Lease {
        id: Uuid::try_parse(id).map_err(|_| unknown())?,
        delivery: delivery.parse().map_err(|_| unknown())?,
    })
}

/// Settles attempts in batches: whatever is queued while one statement runs goes in the next.
pub(super) async fn settle_loop(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<SettleReq>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < SETTLE_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let Some(i) = inner.upgrade() else {
            for r in batch {
                let _ = r.done.send(Err(QueueError::Closed));
            }
            return;
        };
        let (acks, fails): (Vec<SettleReq>, Vec<SettleReq>) = batch
            .into_iter()
            .partition(|r| matches!(r.op, Settle::Ack(..)));
        if !acks.is_empty() {
            let rows: Vec<(Lease, Option<&RawValue>)> = acks
                .iter()
                .filter_map(|r| match &r.op {
                    Settle::Ack(l, res) => Some((*l, res.as_deref())),
                    Settle::Fail(..) => None,
                })
                .collect();
            let r = i.backend.table().complete(&rows).await;
            if let Ok(done) = &r {
                // Before the replies: each caller forgets its lease once answered.
                i.publish_settled(done, &[]);
            }
            reply(acks, r, |r| match &r.op {
                Settle::Ack(l, _) | Settle::Fail(l, _) => *l,
            });
        }
        if !fails.is_empty() {
            let rows: Vec<(Lease, &str)> = fails
                .iter()
                .filter_map(|r| match &r.op {
                    Settle::Fail(l, e) => Some((*l, e.as_str())),
                    Settle::Ack(..) => None,
                })
                .collect();
            let r = i.backend.table().fail(&rows).await;
            if let Ok(done) = &r {
                i.publish_settled(&[], done);
            }
            reply(fails, r, |r| match &r.op {
                Settle::Ack(l, _) | Settle::Fail(l, _) => *l,
            });
            // A retry may be due before an idle receiver's next look.
            i.shared.wake();
        }
    }
}

pub(super) fn reply(
    reqs: Vec<SettleReq>,
    r: Result<Vec<Lease>>,
    lease: impl Fn(&SettleReq) -> Lease,
) {
    match r {
        Ok(matched) => {
            let matched: std::collections::HashSet<Lease> = matched.into_iter().collect();
            for req in reqs {
                let ok = matched.contains(&lease(&req));
                let _ = req.done.send(Ok(ok));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for req in reqs {
                let _ = req.done.send(Err(QueueError::Backend(msg.clone())));
            }
        }
    }
}
