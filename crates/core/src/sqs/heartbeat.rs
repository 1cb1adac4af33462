//! The heartbeat: one task that keeps each held message invisible while its job runs, by
//! extending its visibility timeout every half of it, in batches.

use super::{errors, lock, Inner, MAX_BATCH, MAX_VISIBILITY_SECONDS};
use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::warn;

/// One task for all held messages: extends the visibility timeout of each message held for
/// half of it, until the provider closes.
pub(super) async fn run(inner: Weak<Inner>, mut closed: watch::Receiver<bool>) {
    let tick = match inner.upgrade() {
        Some(i) => Duration::from_millis((u64::from(i.visibility_s) * 250).clamp(200, 5000)),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = closed.wait_for(|c| *c) => return,
        }
        let Some(inner) = inner.upgrade() else { return };
        inner.extend_due().await;
    }
}

impl Inner {
    /// Extend, in batches of 10, the visibility of each held message that is due.
    async fn extend_due(&self) {
        let now = Instant::now();
        let due: Vec<String> = lock(&self.held)
            .iter()
            .filter(|(_, h)| h.extend_at <= now)
            .map(|(r, _)| r.clone())
            .collect();
        for chunk in due.chunks(MAX_BATCH) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .visibility_timeout(self.visibility_s as i32)
                        .build()
                        .ok()
                })
                .collect();
            let res = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match res {
                Ok(out) => {
                    let next = now + self.half_visibility();
                    let mut held = lock(&self.held);
                    for ok in out.successful() {
                        if let Some(h) = ok
                            .id()
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| chunk.get(i))
                            .and_then(|r| held.get_mut(r))
                        {
                            h.extend_at = next;
                        }
                    }
                    for f in out.failed() {
                        let Some(receipt) = f.id().parse::<usize>().ok().and_then(|i| chunk.get(i))
                        else {
                            continue;
                        };
                        let Some(h) = held.get_mut(receipt) else {
                            continue;
                        };
                        warn!(job_id = %h.job_id, code = f.code(), "SQS refused to extend a held message's visibility");
                        if f.sender_fault() {
                            // The handle is stale (the message came back or was deleted): stop.
                            h.extend_at =
                                now + Duration::from_secs(u64::from(MAX_VISIBILITY_SECONDS));
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %errors::describe(&e), "SQS heartbeat failed; retrying at the next tick")
                }
            }
        }
    }
}
