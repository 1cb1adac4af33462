//! Receiving: a long poll for up to 10 messages, topped up by a few short polls when a full
//! batch came and more are wanted; each message becomes a held job, or a dead letter.

use super::{client, dead_letter, display_url, errors, lock, settle, wire, Held, Inner};
use super::{MAX_BATCH, MAX_WAIT_SECONDS};
use crate::error::{QueueError, Result};
use crate::job::{now_ms, Job, JobStatus, ReceivedJob};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use futures_util::stream::{self, StreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Most jobs one `receive` returns, whatever `max` asks: one long poll and nine short polls'
/// worth. A caller that wants more calls again.
pub const MAX_RECEIVE: usize = 10 * MAX_BATCH;
/// Short polls of one `receive` in flight at once.
const TOP_UP_IN_FLIGHT: usize = 3;
/// Extra time a `ReceiveMessage` may take beyond its long poll before it counts as lost.
const RECEIVE_GRACE: Duration = Duration::from_secs(10);

type Polls = JoinHandle<Result<Vec<ReceivedJob>>>;

/// The polls of one `receive`, run in a task of their own. If the `receive` ends before
/// them (the provider closed, or its caller dropped it), they still finish — SQS keeps a
/// long poll going whatever this side does — and what they bring is given back at once.
struct InFlight {
    inner: Arc<Inner>,
    polls: Option<Polls>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let (Some(polls), Ok(rt)) = (self.polls.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(give_back(self.inner.clone(), polls));
        }
    }
}

async fn give_back(inner: Arc<Inner>, polls: Polls) {
    let Ok(Ok(jobs)) = polls.await else { return };
    for j in jobs {
        if let Err(e) = settle::release(&inner, &j.receipt_handle).await {
            warn!(job_id = %j.job.id, error = %e, "could not give back a job received after its receive ended");
        }
    }
}

pub(super) async fn receive(
    inner: &Arc<Inner>,
    max: usize,
    wait: Duration,
) -> Result<Vec<ReceivedJob>> {
    if max == 0 || inner.is_closed() {
        return Ok(Vec::new());
    }
    let max = max.min(MAX_RECEIVE);
    let mut closed = inner.closed.subscribe();
    let deadline = Instant::now() + wait;
    let mut flight = InFlight {
        inner: inner.clone(),
        polls: Some(tokio::spawn(receive_until(inner.clone(), max, deadline))),
    };
    let Some(polls) = flight.polls.as_mut() else {
        return Ok(Vec::new());
    };
    let done = tokio::select! {
        res = polls => res,
        _ = closed.wait_for(|c| *c) => return Ok(Vec::new()),
    };
    flight.polls = None;
    done.map_err(|e| QueueError::Backend(format!("SQS receive task failed: {e}")))?
}

/// Receive until `deadline`: a long poll for up to 10, topped up with short polls when a full
/// batch came and more are wanted. When a poll fails even after the SDK's retries, it pauses
/// and polls again while the caller's wait lasts.
async fn receive_until(
    inner: Arc<Inner>,
    max: usize,
    deadline: Instant,
) -> Result<Vec<ReceivedJob>> {
    let mut failures = 0u32;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // A long poll waits whole seconds: round up, so a short wait still waits.
        let wait_s = remaining
            .as_millis()
            .div_ceil(1000)
            .min(u128::from(MAX_WAIT_SECONDS)) as i32;
        let want = max.min(MAX_BATCH);
        match receive_once(&inner, want, wait_s).await {
            Ok(messages) => {
                if inner.receive_failing.swap(false, Ordering::Relaxed) {
                    info!(queue = %display_url(&inner.queue_url), "SQS receive works again");
                }
                let full = messages.len() >= want;
                let mut jobs = accept(&inner, messages).await;
                if full && max > want {
                    top_up(&inner, &mut jobs, max).await;
                }
                if !jobs.is_empty() || wait_s == 0 || Instant::now() >= deadline {
                    return Ok(jobs);
                }
            }
            Err(e) if e.transient => {
                failures += 1;
                if !inner.receive_failing.swap(true, Ordering::Relaxed) {
                    warn!(queue = %display_url(&inner.queue_url), error = %e.error, "SQS receive failed; polling again while the wait lasts");
                } else {
                    debug!(error = %e.error, "SQS receive failed again");
                }
                let now = Instant::now();
                if now >= deadline {
                    return Ok(Vec::new());
                }
                tokio::time::sleep(client::pause(failures).min(deadline - now)).await;
                if Instant::now() >= deadline {
                    return Ok(Vec::new());
                }
            }
            Err(e) => return Err(e.error),
        }
    }
}

/// Short polls for what a full first batch left wanted, [`TOP_UP_IN_FLIGHT`] at a time.
async fn top_up(inner: &Inner, jobs: &mut Vec<ReceivedJob>, max: usize) {
    let missing = max.saturating_sub(jobs.len());
    let wants = (0..missing.div_ceil(MAX_BATCH)).map(|r| (missing - r * MAX_BATCH).min(MAX_BATCH));
    let mut polls = stream::iter(wants)
        .map(|want| receive_once(inner, want, 0))
        .buffer_unordered(TOP_UP_IN_FLIGHT);
    while let Some(res) = polls.next().await {
        match res {
            Ok(messages) => jobs.extend(accept(inner, messages).await),
            Err(e) => debug!(error = %e.error, "SQS short poll failed"),
        }
    }
}

struct ReceiveError {
    transient: bool,
    error: QueueError,
}

async fn receive_once(
    inner: &Inner,
    want: usize,
    wait_s: i32,
) -> std::result::Result<Vec<Message>, ReceiveError> {
    let req = inner
        .client
        .receive_message()
        .queue_url(&inner.queue_url)
        .max_number_of_messages(want as i32)
        .wait_time_seconds(wait_s)
        .visibility_timeout(inner.visibility_s as i32)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .send();
    let limit = Duration::from_secs(wait_s as u64) + RECEIVE_GRACE;
    match tokio::time::timeout(limit, req).await {
        Ok(Ok(out)) => Ok(out.messages.unwrap_or_default()),
        Ok(Err(e)) => Err(ReceiveError {
            transient: errors::is_transient(&e),
            error: errors::backend("ReceiveMessage", &e),
        }),
        Err(_) => Err(ReceiveError {
            transient: true,
            error: QueueError::Backend(format!(
                "SQS ReceiveMessage failed: no answer within {limit:?}"
            )),
        }),
    }
}

/// Turn messages into held jobs; messages that are not jobs go to the dead-letter queue.
async fn accept(inner: &Inner, messages: Vec<Message>) -> Vec<ReceivedJob> {
    let now = now_ms();
    let extend_at = Instant::now() + inner.half_visibility();
    let mut jobs = Vec::with_capacity(messages.len());
    for m in messages {
        let Some(receipt) = m.receipt_handle() else {
            continue;
        };
        let body = m.body().unwrap_or_default();
        let system =
            |name: MessageSystemAttributeName| m.attributes().and_then(|a| a.get(&name)).cloned();
        let attempts = system(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let mut decoded = match wire::decode_body(body) {
            Ok(d) => d,
            Err(reason) => {
                dead_letter::foreign(inner, &m, receipt, &reason).await;
                continue;
            }
        };
        wire::read_trace(&mut decoded.options, |k| {
            m.message_attributes()
                .and_then(|a| a.get(k))
                .and_then(|v| v.string_value())
        });
        let job = Job {
            id: decoded.id,
            job_type: decoded.job_type,
            payload: decoded.payload,
            options: decoded.options,
            status: JobStatus::Processing,
            attempts,
            created_at: decoded.created_at,
            scheduled_for: decoded.scheduled_for,
            started_at: Some(now),
            completed_at: None,
            last_error: None,
            progress: None,
            result: None,
        };
        lock(&inner.held).insert(
            receipt.to_owned(),
            Held {
                job_id: job.id.clone(),
                job_type: job.job_type.clone(),
                attempts,
                options: job.options.clone(),
                body: body.to_owned(),
                message_id: m.message_id().unwrap_or_default().to_owned(),
                group_id: system(MessageSystemAttributeName::MessageGroupId),
                extend_at,
            },
        );
        inner.remember(job.clone());
        jobs.push(ReceivedJob {
            job,
            receipt_handle: receipt.to_owned(),
        });
    }
    jobs
}
