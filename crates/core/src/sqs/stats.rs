//! `getStats` for SQS: the queue's approximate counts (and the dead-letter queue's) from
//! `GetQueueAttributes`, with this process's completed and failed counts.

use super::{errors, Inner};
use crate::error::Result;
use crate::job::QueueStats;
use aws_sdk_sqs::types::QueueAttributeName;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// The queue's counts, as SQS approximates them.
pub(super) async fn stats(inner: &Inner) -> Result<QueueStats> {
    let main = inner
        .client
        .get_queue_attributes()
        .queue_url(&inner.queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send();
    let dead = async {
        match &inner.dlq_url {
            Some(dlq) => inner
                .client
                .get_queue_attributes()
                .queue_url(dlq)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .send()
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (main, dead) = tokio::join!(main, dead);
    let main = main.map_err(|e| errors::backend("GetQueueAttributes", &e))?;
    let dead = dead.map_err(|e| errors::backend("GetQueueAttributes (dead-letter queue)", &e))?;
    let count = |attrs: Option<&HashMap<QueueAttributeName, String>>, name: QueueAttributeName| {
        attrs
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(QueueStats {
        pending: count(
            main.attributes(),
            QueueAttributeName::ApproximateNumberOfMessages,
        ),
        processing: count(
            main.attributes(),
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ),
        scheduled: count(
            main.attributes(),
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ),
        dead: dead.map_or(0, |d| {
            count(
                d.attributes(),
                QueueAttributeName::ApproximateNumberOfMessages,
            )
        }),
        completed: inner.completed.load(Ordering::Relaxed),
        failed: inner.failed.load(Ordering::Relaxed),
        // SQS cannot cancel a job.
        cancelled: 0,
    })
}
