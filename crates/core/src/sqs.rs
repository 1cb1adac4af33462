//! The AWS SQS provider: the `QueueProvider` contract on an SQS queue, in the old JavaScript
//! queue's message format. Here: its shared state and wiring; each concern is a submodule.
//!
//! What SQS cannot tell, this provider keeps per process: `getJob` answers for the jobs this
//! process enqueued or received recently (the 10,000 most recently touched, within 32 MiB),
//! else `None`; progress, results and the `completed`/`failed` counts of `getStats` are this
//! process's.

mod cache;
mod client;
mod dead_letter;
mod errors;
mod heartbeat;
mod receive;
mod send;
mod settle;
mod stats;
mod wire;

use crate::config::SqsConfig;
use crate::error::{QueueError, Result};
use crate::job::{Job, JobOptions, NewJob, QueueStats, ReceivedJob};
use crate::lock;
use crate::provider::{DelaySink, QueueProvider};
use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;
use cache::JobCache;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

pub use receive::MAX_RECEIVE;
pub use wire::{decode_body, encode_body, is_fifo, BodyFields, Decoded};

/// Longest delay SQS holds (`DelaySeconds` ≤ 900).
pub const MAX_DELAY_MS: u64 = 900_000;
/// Most messages one `ReceiveMessage`, `SendMessageBatch` or `DeleteMessageBatch` carries.
pub const MAX_BATCH: usize = 10;
/// Longest long poll of one `ReceiveMessage`.
pub const MAX_WAIT_SECONDS: u64 = 20;
/// Longest visibility timeout SQS accepts (12 h).
pub const MAX_VISIBILITY_SECONDS: u32 = crate::config::MAX_VISIBILITY_TIMEOUT_S;
/// Largest message SQS accepts today (1 MiB).
pub const MAX_MESSAGE_BYTES: usize = crate::config::MAX_MESSAGE_BYTES;

/// The SQS provider. Build it with [`SqsProvider::connect`].
pub struct SqsProvider {
    inner: Arc<Inner>,
    acks: settle::AckSender,
}

/// What every part of the provider shares.
struct Inner {
    client: Client,
    queue_url: String,
    dlq_url: Option<String>,
    fifo: bool,
    visibility_s: u32,
    /// A worker's longest long poll (`waitTimeSeconds`).
    wait_s: u32,
    max_message_bytes: usize,
    message_group_id: Option<String>,
    closed: watch::Sender<bool>,
    /// Received messages not yet acknowledged, failed or released, by receipt handle.
    held: Mutex<HashMap<String, Held>>,
    known: Mutex<JobCache>,
    sink: RwLock<Option<Arc<dyn DelaySink>>>,
    completed: AtomicU64,
    failed: AtomicU64,
    requests: Arc<AtomicU64>,
    /// Whether receives are failing (to log the start and end of an outage once).
    receive_failing: AtomicBool,
    /// Ids of messages that are not jobs, each logged once (the most recent few thousand).
    foreign_logged: Mutex<lru::LruCache<String, ()>>,
}

/// A message this process holds: what `fail` and the heartbeat need.
struct Held {
    job_id: String,
    job_type: String,
    attempts: u32,
    options: JobOptions,
    body: String,
    message_id: String,
    group_id: Option<String>,
    /// When the heartbeat next extends the visibility timeout.
    extend_at: Instant,
}

fn string_attr(value: &str) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type(wire::STRING)
        .string_value(value)
        .build()
        .map_err(|e| QueueError::Backend(format!("cannot build an SQS message attribute: {e}")))
}

/// A URL fit for an error or a log (the password, if any, replaced by `***`).
fn display_url(url: &str) -> String {
    crate::redact_url(url)
}

/// The config's rules (config.rs), then the FIFO id rule for `messageGroupId`.
fn validate(cfg: &SqsConfig) -> Result<()> {
    cfg.validate()
        .map_err(|e| QueueError::invalid(e.to_string()))?;
    if let Some(g) = &cfg.message_group_id {
        wire::check_fifo_id(g, "providerConfig.messageGroupId")?;
    }
    Ok(())
}

impl SqsProvider {
    /// Connect to the queue of `cfg` and check it answers (`GetQueueAttributes`), as well as
    /// the dead-letter queue when one is configured. Credentials come from the AWS SDK's
    /// standard chain; the endpoint from `cfg.endpoint`, else `AWS_ENDPOINT_URL_SQS` /
    /// `AWS_ENDPOINT_URL`, else AWS for `cfg.region`.
    pub async fn connect(cfg: SqsConfig) -> Result<Arc<SqsProvider>> {
        validate(&cfg)?;
        let requests = Arc::new(AtomicU64::new(0));
        let client = client::build(&cfg, requests.clone()).await;
        let endpoint = match &cfg.endpoint {
            Some(e) => display_url(e),
            None => format!("the SQS endpoint for region {}", cfg.region),
        };
        let redrive = client::check_queue(&client, &cfg.queue_url, "queueUrl", &endpoint).await?;
        if let Some(dlq) = &cfg.dead_letter_queue_url {
            client::check_queue(&client, dlq, "deadLetterQueueUrl", &endpoint).await?;
        } else if !redrive {
            warn!(
                queue = %display_url(&cfg.queue_url),
                "SQS queue has no deadLetterQueueUrl configured and no redrive policy: jobs out of retries and \
                 messages that are not jobs come back until the queue's retention period ends"
            );
        }
        let (closed, closed_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            client,
            fifo: wire::is_fifo(&cfg.queue_url),
            queue_url: cfg.queue_url,
            dlq_url: cfg.dead_letter_queue_url,
            visibility_s: cfg.visibility_timeout,
            wait_s: cfg.wait_time_seconds,
            max_message_bytes: cfg.max_message_bytes,
            message_group_id: cfg.message_group_id,
            closed,
            held: Mutex::new(HashMap::new()),
            known: Mutex::new(JobCache::new(cache::MAX_JOBS, cache::MAX_BYTES)),
            sink: RwLock::new(None),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            requests,
            receive_failing: AtomicBool::new(false),
            foreign_logged: Mutex::new(lru::LruCache::new(dead_letter::FOREIGN_LOGGED)),
        });
        let acks = settle::start_ack_batcher(inner.clone());
        tokio::spawn(heartbeat::run(Arc::downgrade(&inner), closed_rx));
        info!(queue = %display_url(&inner.queue_url), fifo = inner.fifo, "SQS provider connected");
        Ok(Arc::new(SqsProvider { inner, acks }))
    }

    /// HTTP requests sent to SQS so far (SDK retries included).
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Received messages not yet acknowledged, failed or released.
    pub fn held_count(&self) -> usize {
        lock(&self.inner.held).len()
    }

    /// Whether the queue URL names a FIFO queue.
    pub fn is_fifo(&self) -> bool {
        self.inner.fifo
    }
}

impl Inner {
    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(QueueError::Closed)
        } else {
            Ok(())
        }
    }

    fn half_visibility(&self) -> Duration {
        Duration::from_millis(u64::from(self.visibility_s) * 500)
    }

    fn remember(&self, job: Job) {
        lock(&self.known).put(job);
    }

    fn update_known(&self, id: &str, f: impl FnOnce(&mut Job)) {
        lock(&self.known).update(id, f);
    }

    fn sink(&self) -> Option<Arc<dyn DelaySink>> {
        self.sink.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn take_held(&self, receipt: &str) -> Result<Held> {
        lock(&self.held)
            .remove(receipt)
            .ok_or_else(|| QueueError::UnknownReceipt(receipt.to_owned()))
    }
}

#[async_trait]
impl QueueProvider for SqsProvider {
    fn name(&self) -> &'static str {
        "sqs"
    }

    async fn redrive_dead_letters(&self) -> Result<u64> {
        dead_letter::redrive(&self.inner).await
    }

    async fn enqueue(&self, job: NewJob) -> Result<Job> {
        send::enqueue(&self.inner, job).await
    }

    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        send::enqueue_bulk(&self.inner, jobs).await
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>> {
        receive::receive(&self.inner, max, wait).await
    }

    async fn acknowledge(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()> {
        settle::acknowledge(&self.inner, &self.acks, receipt, result).await
    }

    async fn fail(&self, receipt: &str, error: &str) -> Result<()> {
        settle::fail(&self.inner, receipt, error).await
    }

    async fn release(&self, receipt: &str) -> Result<()> {
        settle::release(&self.inner, receipt).await
    }

    async fn set_progress(&self, receipt: &str, percent: f64) -> Result<()> {
        let inner = &self.inner;
        let job_id = lock(&inner.held)
            .get(receipt)
            .map(|h| h.job_id.clone())
            .ok_or_else(|| QueueError::UnknownReceipt(receipt.to_owned()))?;
        inner.update_known(&job_id, |j| j.progress = Some(percent));
        Ok(())
    }

    async fn get_job(&self, id: &str) -> Result<Option<Job>> {
        Ok(lock(&self.inner.known).get(id).cloned())
    }

    async fn stats(&self) -> Result<QueueStats> {
        stats::stats(&self.inner).await
    }

    async fn close(&self) -> Result<()> {
        if !self.inner.closed.send_replace(true) {
            debug!(queue = %display_url(&self.inner.queue_url), "SQS provider closed");
        }
        Ok(())
    }

    fn max_delay(&self) -> Option<Duration> {
        Some(if self.inner.fifo {
            Duration::ZERO
        } else {
            Duration::from_millis(MAX_DELAY_MS)
        })
    }

    fn set_delay_sink(&self, sink: Option<Arc<dyn DelaySink>>) {
        *self.inner.sink.write().unwrap_or_else(|e| e.into_inner()) = sink;
    }

    /// A long poll cut off on this side is not cut off on SQS's: the messages it takes stay
    /// invisible, held by nobody, for the visibility timeout.
    fn receive_is_cancel_safe(&self) -> bool {
        false
    }

    fn longest_uncancellable_wait(&self) -> Duration {
        Duration::from_secs(u64::from(self.inner.wait_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            display_url("http://user:pw@127.0.0.1:5000/1/q"),
            "http://user:***@127.0.0.1:5000/1/q"
        );
        assert_eq!(
            display_url("https://sqs.us-east-1.amazonaws.com/1/q"),
            "https://sqs.us-east-1.amazonaws.com/1/q"
        );
    }

    fn cfg() -> SqsConfig {
        SqsConfig {
            region: "us-east-1".into(),
            queue_url: "http://127.0.0.1:1/123456789012/q".into(),
            dead_letter_queue_url: None,
            visibility_timeout: 30,
            endpoint: Some("http://127.0.0.1:1".into()),
            max_message_bytes: 262_144,
            message_group_id: None,
            wait_time_seconds: crate::config::DEFAULT_WAIT_TIME_SECONDS,
        }
    }

    #[test]
    fn config_errors_name_the_field() {
        assert!(validate(&cfg()).is_ok());
        let cases: Vec<(SqsConfig, &str)> = vec![
            (
                SqsConfig {
                    region: " ".into(),
                    ..cfg()
                },
                "providerConfig.region",
            ),
            (
                SqsConfig {
                    queue_url: "q".into(),
                    ..cfg()
                },
                "providerConfig.queueUrl",
            ),
            (
                SqsConfig {
                    dead_letter_queue_url: Some("ftp://x".into()),
                    ..cfg()
                },
                "providerConfig.deadLetterQueueUrl",
            ),
            (
                SqsConfig {
                    visibility_timeout: 0,
                    ..cfg()
                },
                "providerConfig.visibilityTimeout",
            ),
            (
                SqsConfig {
                    visibility_timeout: 43_201,
                    ..cfg()
                },
                "providerConfig.visibilityTimeout",
            ),
            (
                SqsConfig {
                    max_message_bytes: 0,
                    ..cfg()
                },
                "providerConfig.maxMessageBytes",
            ),
            (
                SqsConfig {
                    endpoint: Some("localhost:1".into()),
                    ..cfg()
                },
                "providerConfig.endpoint",
            ),
            (
                SqsConfig {
                    message_group_id: Some("a b".into()),
                    ..cfg()
                },
                "providerConfig.messageGroupId",
            ),
        ];
        for (c, field) in cases {
            let e = validate(&c).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }
}
