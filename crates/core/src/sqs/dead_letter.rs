//! The dead-letter queue: jobs out of retries and messages that are not jobs are sent there
//! with their last error, then deleted from the main queue.

use super::{errors, lock, string_attr, wire, Held, Inner};
use crate::error::{QueueError, Result};
use aws_sdk_sqs::types::MessageSystemAttributeName as SysAttr;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use std::num::NonZeroUsize;
use tracing::{error, warn};

/// Foreign message ids remembered so each is logged once.
pub(super) const FOREIGN_LOGGED: NonZeroUsize = NonZeroUsize::new(10_000).unwrap();

/// A message that is not a job: to the dead-letter queue when there is one (then deleted),
/// else logged once and left for the queue's redrive policy.
pub(super) async fn foreign(inner: &Inner, m: &Message, receipt: &str, reason: &str) {
    let message_id = m.message_id().unwrap_or_default();
    let Some(dlq) = &inner.dlq_url else {
        if lock(&inner.foreign_logged)
            .put(message_id.to_owned(), ())
            .is_none()
        {
            warn!(
                message_id,
                reason,
                "SQS message is not a job and no deadLetterQueueUrl is configured; leaving it for the queue's \
                 redrive policy"
            );
        }
        return;
    };
    let mut attrs: Vec<(String, MessageAttributeValue)> = m
        .message_attributes()
        .map(|a| {
            a.iter()
                .filter(|(k, _)| *k != wire::ATTR_LAST_ERROR)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    attrs.truncate(9);
    let group = m
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
        .cloned();
    let last_error = format!("not a job message: {reason}");
    let letter = Letter {
        body: m.body().unwrap_or_default(),
        attrs,
        last_error: &last_error,
        group,
        message_id,
    };
    match send(inner, dlq, letter, receipt).await {
        Ok(()) => warn!(
            message_id,
            reason, "moved an SQS message that is not a job to the dead-letter queue"
        ),
        Err(e) => {
            error!(message_id, error = %e, "could not move an SQS message that is not a job to the dead-letter queue")
        }
    }
}

/// A job out of retries: to the dead-letter queue `dlq` with `error`, then deleted.
pub(super) async fn job(
    inner: &Inner,
    dlq: &str,
    held: &Held,
    error: &str,
    receipt: &str,
) -> Result<()> {
    let attrs = wire::job_attrs(&held.job_id, &held.job_type, &held.options)
        .map(|(k, v)| Ok((k.to_owned(), string_attr(v)?)))
        .collect::<Result<Vec<_>>>()?;
    let letter = Letter {
        body: &held.body,
        attrs,
        last_error: error,
        group: held.group_id.clone(),
        message_id: &held.message_id,
    };
    send(inner, dlq, letter, receipt).await
}

/// What goes to the dead-letter queue.
struct Letter<'a> {
    body: &'a str,
    attrs: Vec<(String, MessageAttributeValue)>,
    last_error: &'a str,
    group: Option<String>,
    /// The original message's id: the deduplication id on a FIFO dead-letter queue.
    message_id: &'a str,
}

/// Send a letter to the dead-letter queue, then delete its message (`receipt`) from the main
/// queue. Both requests are retried by the SDK.
async fn send(inner: &Inner, dlq: &str, letter: Letter<'_>, receipt: &str) -> Result<()> {
    let mut req = inner
        .client
        .send_message()
        .queue_url(dlq)
        .message_body(letter.body);
    for (k, v) in letter.attrs {
        req = req.message_attributes(k, v);
    }
    req = req.message_attributes(
        wire::ATTR_LAST_ERROR,
        string_attr(&wire::last_error_value(letter.last_error))?,
    );
    if wire::is_fifo(dlq) {
        let group = letter
            .group
            .filter(|g| wire::check_fifo_id(g, "group").is_ok())
            .unwrap_or_else(|| "dead-letter".into());
        let dedup = if letter.message_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            letter.message_id.to_owned()
        };
        req = req.message_group_id(group).message_deduplication_id(dedup);
    }
    req.send()
        .await
        .map_err(|e| errors::backend("SendMessage (dead-letter queue)", &e))?;
    inner
        .client
        .delete_message()
        .queue_url(&inner.queue_url)
        .receipt_handle(receipt)
        .send()
        .await
        .map_err(|e| errors::backend("DeleteMessage", &e))?;
    Ok(())
}

/// `redriveDeadLetters`: every message of the dead-letter queue sent back to the main queue
/// (body and attributes, without its last error), then deleted there; returns how many.
pub(super) async fn redrive(inner: &Inner) -> Result<u64> {
    let Some(dlq) = &inner.dlq_url else {
        return Err(QueueError::invalid(
            "redriveDeadLetters needs the sqs provider's deadLetterQueueUrl, which is not set",
        ));
    };
    let mut moved = 0u64;
    loop {
        let got = inner
            .client
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .message_system_attribute_names(SysAttr::MessageGroupId)
            .send()
            .await
            .map_err(|e| errors::backend("ReceiveMessage (dead-letter queue)", &e))?;
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        for m in &messages {
            let mut req = inner
                .client
                .send_message()
                .queue_url(&inner.queue_url)
                .message_body(m.body().unwrap_or_default());
            if let Some(attrs) = m.message_attributes() {
                for (k, v) in attrs.iter().filter(|(k, _)| *k != wire::ATTR_LAST_ERROR) {
                    req = req.message_attributes(k.clone(), v.clone());
                }
            }
            if inner.fifo {
                let group = m
                    .attributes()
                    .and_then(|a| a.get(&SysAttr::MessageGroupId))
                    .cloned()
                    .or_else(|| inner.message_group_id.clone())
                    .unwrap_or_else(|| "redrive".into());
                req = req
                    .message_group_id(group)
                    .message_deduplication_id(uuid::Uuid::new_v4().to_string());
            }
            req.send()
                .await
                .map_err(|e| errors::backend("SendMessage (redrive)", &e))?;
            if let Some(receipt) = m.receipt_handle() {
                inner
                    .client
                    .delete_message()
                    .queue_url(dlq)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| errors::backend("DeleteMessage (dead-letter queue)", &e))?;
            }
            moved += 1;
        }
    }
}
