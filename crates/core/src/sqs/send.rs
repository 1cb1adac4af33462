//! Sending jobs: each job checked and turned into a message (or handed to the scheduler when
//! SQS cannot hold its delay), then one `SendMessage`, or `SendMessageBatch`es for a bulk.

use super::{client, display_url, errors, string_attr, wire, Inner, MAX_BATCH, MAX_DELAY_MS};
use crate::error::{QueueError, Result};
use crate::job::{now_ms, Job, JobStatus, Millis, NewJob};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures_util::stream::{self, StreamExt};
use wire::BodyFields;

/// `SendMessageBatch` requests of one `enqueueBulk` in flight at once.
const SEND_CONCURRENCY: usize = 16;

/// A job ready to be sent.
struct Outgoing {
    job: Job,
    body: String,
    delay_s: i32,
    group: Option<String>,
    dedup: Option<String>,
}

enum Prepared {
    Send(Outgoing),
    /// Handed to the delay sink, to be enqueued at the time given.
    Sink(NewJob, Millis),
}

pub(super) async fn enqueue(inner: &Inner, job: NewJob) -> Result<Job> {
    inner.check_open()?;
    match prepare(inner, job, now_ms())? {
        Prepared::Sink(job, at) => match inner.sink() {
            Some(sink) => sink.schedule_at(job, at).await,
            None => Err(QueueError::invalid(
                "the scheduler stopped before the job could be handed to it",
            )),
        },
        Prepared::Send(out) => {
            send_one(inner, &out).await?;
            inner.remember(out.job.clone());
            Ok(out.job)
        }
    }
}

pub(super) async fn enqueue_bulk(inner: &Inner, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
    inner.check_open()?;
    let now = now_ms();
    let n = jobs.len();
    let mut sends = Vec::new();
    let mut send_slots = Vec::new();
    let mut sinks = Vec::new();
    for (i, job) in jobs.into_iter().enumerate() {
        match prepare(inner, job, now) {
            Ok(Prepared::Send(out)) => {
                send_slots.push(i);
                sends.push(out);
            }
            Ok(Prepared::Sink(job, at)) => sinks.push((i, job, at)),
            Err(QueueError::Invalid(m)) => {
                return Err(QueueError::Invalid(format!("items[{i}]: {m}")))
            }
            Err(e) => return Err(e),
        }
    }
    let mut results: Vec<Option<Job>> = (0..n).map(|_| None).collect();
    if !sinks.is_empty() {
        let sink = inner.sink().ok_or_else(|| {
            QueueError::invalid("the scheduler stopped before jobs could be handed to it")
        })?;
        for (i, job, at) in sinks {
            results[i] = Some(sink.schedule_at(job, at).await?);
        }
    }
    let sizes: Vec<usize> = sends
        .iter()
        .map(|o| {
            wire::message_size(
                &o.body,
                wire::job_attrs(&o.job.id, &o.job.job_type, &o.job.options),
            )
        })
        .collect();
    let batches = plan_batches(&sizes, inner.max_message_bytes);
    let mut refused: Vec<(usize, String)> = stream::iter(batches)
        .map(|indexes| send_batch(inner, &sends, indexes))
        .buffer_unordered(SEND_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    refused.sort_by_key(|(i, _)| *i);
    let mut refused_iter = refused.iter().peekable();
    let mut first_error = None;
    for (k, out) in sends.into_iter().enumerate() {
        if refused_iter.peek().is_some_and(|(i, _)| *i == k) {
            if let Some((_, why)) = refused_iter.next() {
                first_error.get_or_insert_with(|| why.clone());
            }
            continue;
        }
        inner.remember(out.job.clone());
        results[send_slots[k]] = Some(out.job);
    }
    if let Some(why) = first_error {
        let sent = results.iter().filter(|r| r.is_some()).count();
        return Err(QueueError::Backend(format!(
            "enqueueBulk: {} of {n} jobs were not queued ({sent} were): {why}",
            n - sent
        )));
    }
    Ok(results.into_iter().flatten().collect())
}

/// Validate a job and build its message, or route it to the delay sink.
fn prepare(inner: &Inner, new: NewJob, now: Millis) -> Result<Prepared> {
    if new.job_type.is_empty() {
        return Err(QueueError::invalid(
            "job type must be a non-empty string, got \"\"",
        ));
    }
    let visible_at = new.options.visible_at(now);
    let delay_ms = visible_at.map_or(0, |at| (at - now) as u64);
    if delay_ms > 0 && (inner.fifo || delay_ms > MAX_DELAY_MS) {
        return match (inner.sink(), visible_at) {
            (Some(_), Some(at)) => Ok(Prepared::Sink(new, at)),
            _ if inner.fifo => Err(QueueError::invalid(format!(
                "delay of {delay_ms} ms cannot be held by FIFO queue {}: FIFO queues take no per-message \
                 delay; start the scheduler or use scheduler.schedule()",
                display_url(&inner.queue_url)
            ))),
            _ => Err(QueueError::invalid(format!(
                "delay of {delay_ms} ms exceeds SQS's 15-minute limit; start the scheduler or use \
                 scheduler.schedule()"
            ))),
        };
    }
    let options = new.options.job_options();
    let id = uuid::Uuid::new_v4().to_string();
    let (group, dedup) = if inner.fifo {
        let (g, d) = wire::fifo_ids(
            inner.message_group_id.as_deref(),
            &new.job_type,
            options.deduplication_key.as_deref(),
            &id,
        )?;
        (Some(g), Some(d))
    } else {
        (None, None)
    };
    let body = wire::encode_body(&BodyFields {
        id: &id,
        job_type: &new.job_type,
        payload: &new.payload,
        options: &options,
        created_at: now,
        scheduled_for: visible_at,
    })?;
    let size = wire::message_size(&body, wire::job_attrs(&id, &new.job_type, &options));
    if size > inner.max_message_bytes {
        return Err(QueueError::invalid(format!(
            "job of type {:?} is {size} bytes as an SQS message, over the limit of {} bytes \
             (providerConfig.maxMessageBytes)",
            new.job_type, inner.max_message_bytes
        )));
    }
    let job = Job {
        id,
        job_type: new.job_type,
        payload: new.payload,
        options,
        status: if visible_at.is_some() {
            JobStatus::Scheduled
        } else {
            JobStatus::Pending
        },
        attempts: 0,
        created_at: now,
        scheduled_for: visible_at,
        started_at: None,
        completed_at: None,
        last_error: None,
        progress: None,
        result: None,
    };
    let delay_s = delay_ms.div_ceil(1000) as i32;
    Ok(Prepared::Send(Outgoing {
        job,
        body,
        delay_s,
        group,
        dedup,
    }))
}

async fn send_one(inner: &Inner, out: &Outgoing) -> Result<()> {
    let mut req = inner
        .client
        .send_message()
        .queue_url(&inner.queue_url)
        .message_body(&out.body);
    for (k, v) in wire::job_attrs(&out.job.id, &out.job.job_type, &out.job.options) {
        req = req.message_attributes(k, string_attr(v)?);
    }
    if out.delay_s > 0 {
        req = req.delay_seconds(out.delay_s);
    }
    if let (Some(g), Some(d)) = (&out.group, &out.dedup) {
        req = req.message_group_id(g).message_deduplication_id(d);
    }
    req.send()
        .await
        .map_err(|e| errors::backend("SendMessage", &e))?;
    Ok(())
}

/// Send the jobs `batch[i]` for `i` in `indexes` (≤ 10) in one `SendMessageBatch`; returns
/// those not sent, with why.
///
/// The SDK retries the request when it fails as a whole. A successful answer may still list
/// entries that failed on the server's side (`SenderFault: false`); the SDK cannot see those,
/// so they are sent once more after a short pause, and refused if they fail again.
async fn send_batch(
    inner: &Inner,
    batch: &[Outgoing],
    indexes: Vec<usize>,
) -> Vec<(usize, String)> {
    let mut refused = Vec::new();
    let mut pending = indexes;
    for last_try in [false, true] {
        let mut entries = Vec::with_capacity(pending.len());
        let mut built = Vec::with_capacity(pending.len());
        for &i in &pending {
            match batch_entry(i, &batch[i]) {
                Ok(e) => {
                    entries.push(e);
                    built.push(i);
                }
                Err(e) => refused.push((i, e.to_string())),
            }
        }
        if entries.is_empty() {
            break;
        }
        let res = inner
            .client
            .send_message_batch()
            .queue_url(&inner.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        pending = Vec::new();
        match res {
            Ok(out) => {
                for f in out.failed() {
                    let Ok(i) = f.id().parse::<usize>() else {
                        continue;
                    };
                    if !f.sender_fault() && !last_try {
                        pending.push(i);
                    } else {
                        refused.push((
                            i,
                            format!("{}: {}", f.code(), f.message().unwrap_or_default()),
                        ));
                    }
                }
            }
            Err(e) => {
                let why = errors::describe(&e);
                refused.extend(built.into_iter().map(|i| (i, why.clone())));
            }
        }
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(client::INITIAL_BACKOFF).await;
    }
    refused
}

fn batch_entry(i: usize, out: &Outgoing) -> Result<SendMessageBatchRequestEntry> {
    let mut b = SendMessageBatchRequestEntry::builder()
        .id(i.to_string())
        .message_body(&out.body);
    for (k, v) in wire::job_attrs(&out.job.id, &out.job.job_type, &out.job.options) {
        b = b.message_attributes(k, string_attr(v)?);
    }
    if out.delay_s > 0 {
        b = b.delay_seconds(out.delay_s);
    }
    if let (Some(g), Some(d)) = (&out.group, &out.dedup) {
        b = b.message_group_id(g).message_deduplication_id(d);
    }
    b.build()
        .map_err(|e| QueueError::Backend(format!("cannot build an SQS batch entry: {e}")))
}

/// Split jobs into `SendMessageBatch` requests: at most 10 messages and `max_bytes` each.
fn plan_batches(sizes: &[usize], max_bytes: usize) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        if !current.is_empty() && (current.len() == MAX_BATCH || bytes + size > max_bytes) {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += size;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_bytes() {
        assert_eq!(plan_batches(&[], 100), Vec::<Vec<usize>>::new());
        let b = plan_batches(&[1; 25], 1000);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
        let b = plan_batches(&[40, 40, 40, 90, 10], 100);
        assert_eq!(b, vec![vec![0, 1], vec![2], vec![3, 4]]);
    }
}
