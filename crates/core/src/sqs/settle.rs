//! Settling attempts: acknowledgements gathered into `DeleteMessageBatch`es, failures backed
//! off (or dead-lettered) with `ChangeMessageVisibility`, releases made visible at once.

use super::{client, dead_letter, errors, lock, Inner, MAX_BATCH, MAX_VISIBILITY_SECONDS};
use crate::error::{QueueError, Result};
use crate::job::{has_retries_left, now_ms, retry_backoff_ms, JobStatus};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{error, warn};

/// How long an acknowledgement waits for others to share its `DeleteMessageBatch`.
const ACK_WINDOW: Duration = Duration::from_millis(5);

pub(super) struct AckRequest {
    receipt: String,
    done: oneshot::Sender<Result<()>>,
}

pub(super) type AckSender = mpsc::UnboundedSender<AckRequest>;

/// Start the task that batches acknowledgements; it ends when the sender is dropped.
pub(super) fn start_ack_batcher(inner: Arc<Inner>) -> AckSender {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(ack_batcher(inner, rx));
    tx
}

pub(super) async fn acknowledge(
    inner: &Inner,
    acks: &AckSender,
    receipt: &str,
    result: Option<Box<RawValue>>,
) -> Result<()> {
    let held = inner.take_held(receipt)?;
    let (done, answer) = oneshot::channel();
    acks.send(AckRequest {
        receipt: receipt.to_owned(),
        done,
    })
    .map_err(|_| QueueError::Backend("SQS acknowledgements stopped".into()))?;
    answer
        .await
        .map_err(|_| QueueError::Backend("SQS acknowledgement was dropped".into()))??;
    inner.completed.fetch_add(1, Ordering::Relaxed);
    let now = now_ms();
    inner.update_known(&held.job_id, |j| {
        j.status = JobStatus::Completed;
        j.completed_at = Some(now);
        j.result = result;
    });
    Ok(())
}

pub(super) async fn fail(inner: &Inner, receipt: &str, error: &str) -> Result<()> {
    let held = inner.take_held(receipt)?;
    inner.failed.fetch_add(1, Ordering::Relaxed);
    let backoff_s =
        (retry_backoff_ms(held.attempts) / 1000).min(u64::from(MAX_VISIBILITY_SECONDS)) as i32;
    let status = if has_retries_left(held.attempts, &held.options) {
        change_visibility(inner, receipt, backoff_s).await?;
        JobStatus::Failed
    } else if let Some(dlq) = &inner.dlq_url {
        dead_letter::job(inner, dlq, &held, error, receipt).await?;
        JobStatus::Dead
    } else {
        warn!(
            job_id = %held.job_id,
            attempts = held.attempts,
            "SQS job is out of retries and no deadLetterQueueUrl is configured; leaving it for the queue's \
             redrive policy"
        );
        change_visibility(inner, receipt, backoff_s).await?;
        JobStatus::Failed
    };
    let now = now_ms();
    let error = error.to_owned();
    inner.update_known(&held.job_id, |j| {
        j.status = status;
        j.last_error = Some(error);
        if status == JobStatus::Dead {
            j.completed_at = Some(now);
        }
    });
    Ok(())
}

/// Give an attempt back: visible again at once, not counted as a failure. (SQS still counts
/// the receive in `ApproximateReceiveCount`, which is where attempts come from.)
pub(super) async fn release(inner: &Inner, receipt: &str) -> Result<()> {
    let held = inner.take_held(receipt)?;
    change_visibility(inner, receipt, 0).await?;
    inner.update_known(&held.job_id, |j| j.status = JobStatus::Pending);
    Ok(())
}

async fn change_visibility(inner: &Inner, receipt: &str, seconds: i32) -> Result<()> {
    inner
        .client
        .change_message_visibility()
        .queue_url(&inner.queue_url)
        .receipt_handle(receipt)
        .visibility_timeout(seconds)
        .send()
        .await
        .map_err(|e| errors::backend("ChangeMessageVisibility", &e))?;
    Ok(())
}

/// Collects acknowledgements into `DeleteMessageBatch` requests of up to 10: it waits up to
/// [`ACK_WINDOW`] for more while other messages are held, and sends at once otherwise.
async fn ack_batcher(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<AckRequest>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if batch.len() < MAX_BATCH && !lock(&inner.held).is_empty() {
            let until = Instant::now() + ACK_WINDOW;
            while batch.len() < MAX_BATCH {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(r)) => batch.push(r),
                    _ => break,
                }
            }
        }
        tokio::spawn(delete_batch(inner.clone(), batch));
    }
}

/// Delete a batch of messages and answer each request.
///
/// The SDK retries the request when it fails as a whole. A successful answer may still list
/// entries that failed on the server's side (`SenderFault: false`); the SDK cannot see those,
/// so they are sent once more after a short pause, and refused if they fail again.
async fn delete_batch(inner: Arc<Inner>, batch: Vec<AckRequest>) {
    let mut pending = batch;
    for last_try in [false, true] {
        let mut entries = Vec::with_capacity(pending.len());
        let mut sendable = Vec::with_capacity(pending.len());
        for r in pending {
            match DeleteMessageBatchRequestEntry::builder()
                .id(sendable.len().to_string())
                .receipt_handle(&r.receipt)
                .build()
            {
                Ok(e) => {
                    entries.push(e);
                    sendable.push(r);
                }
                Err(e) => {
                    let _ = r.done.send(Err(QueueError::Backend(format!(
                        "cannot build an SQS delete entry: {e}"
                    ))));
                }
            }
        }
        if sendable.is_empty() {
            return;
        }
        let res = inner
            .client
            .delete_message_batch()
            .queue_url(&inner.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        let mut again = Vec::new();
        match res {
            Ok(out) => {
                let failed: HashMap<usize, _> = out
                    .failed()
                    .iter()
                    .filter_map(|f| f.id().parse::<usize>().ok().map(|i| (i, f)))
                    .collect();
                for (i, r) in sendable.into_iter().enumerate() {
                    match failed.get(&i) {
                        None => {
                            let _ = r.done.send(Ok(()));
                        }
                        Some(f) if !f.sender_fault() && !last_try => again.push(r),
                        Some(f) => {
                            let _ = r.done.send(Err(QueueError::Backend(format!(
                                "SQS DeleteMessageBatch refused the receipt handle: {}: {}",
                                f.code(),
                                f.message().unwrap_or_default()
                            ))));
                        }
                    }
                }
            }
            Err(e) => {
                let err = errors::backend("DeleteMessageBatch", &e);
                error!(error = %err, count = sendable.len(), "SQS acknowledgements failed");
                for r in sendable {
                    let _ = r.done.send(Err(QueueError::Backend(err.to_string())));
                }
            }
        }
        if again.is_empty() {
            return;
        }
        pending = again;
        tokio::time::sleep(client::INITIAL_BACKOFF).await;
    }
}
