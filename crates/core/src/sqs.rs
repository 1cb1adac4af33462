//! The AWS SQS provider: the `QueueProvider` contract on an SQS queue, in the old JavaScript
//! queue's message format, with batched deletes, a heartbeat and a dead-letter queue.
//!
//! What SQS cannot tell, this provider keeps per process: `getJob` answers for the jobs this
//! process enqueued or received recently (the newest 10,000, within 32 MiB), else `None`;
//! progress, results and the `completed`/`failed` counts of `getStats` are this process's.

mod cache;
mod errors;
mod wire;

use crate::config::SqsConfig;
use crate::error::{QueueError, Result};
use crate::job::{
    has_retries_left, now_ms, retry_backoff_ms, Job, JobOptions, JobStatus, Millis, NewJob,
    QueueStats, ReceivedJob,
};
use crate::provider::{DelaySink, QueueProvider};
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls;
use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_sqs::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use cache::JobCache;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

pub use wire::{decode_body, encode_body, is_fifo, BodyFields, Decoded};

/// Longest delay SQS holds (`DelaySeconds` ≤ 900).
pub const MAX_DELAY_MS: u64 = 900_000;
/// Most messages one `ReceiveMessage`, `SendMessageBatch` or `DeleteMessageBatch` carries.
pub const MAX_BATCH: usize = 10;
/// Longest long poll of one `ReceiveMessage`.
pub const MAX_WAIT_SECONDS: u64 = 20;
/// Longest visibility timeout SQS accepts (12 h).
pub const MAX_VISIBILITY_SECONDS: u32 = 43_200;
/// Largest message SQS accepts today (1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 1_048_576;
/// How long an acknowledgement waits for others to share its `DeleteMessageBatch`.
const ACK_WINDOW: Duration = Duration::from_millis(5);
/// Tries of one acknowledgement (or visibility change) on transient failures.
const ATTEMPTS: u32 = 8;
/// `SendMessageBatch` requests of one `enqueueBulk` in flight at once.
const SEND_CONCURRENCY: usize = 16;
/// Extra time a `ReceiveMessage` may take beyond its long poll before it counts as lost.
const RECEIVE_GRACE: Duration = Duration::from_secs(10);
/// Foreign message ids remembered so each is logged once.
const FOREIGN_LOGGED: usize = 10_000;

/// The SQS provider. Build it with [`SqsProvider::connect`].
pub struct SqsProvider {
    inner: Arc<Inner>,
    acks: mpsc::UnboundedSender<AckRequest>,
}

struct Inner {
    client: Client,
    queue_url: String,
    dlq_url: Option<String>,
    fifo: bool,
    visibility_s: u32,
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
    foreign_logged: Mutex<HashSet<String>>,
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

struct AckRequest {
    receipt: String,
    done: oneshot::Sender<Result<()>>,
}

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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts the HTTP requests the client sends (retries included).
#[derive(Debug)]
struct CountRequests(Arc<AtomicU64>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A URL fit for an error or a log: no user or password.
fn display_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

fn validate(cfg: &SqsConfig) -> Result<()> {
    let field = |name: &str, why: &str, value: &dyn std::fmt::Debug| {
        Err(QueueError::invalid(format!(
            "providerConfig.{name} {why}, got {value:?}"
        )))
    };
    if cfg.region.trim().is_empty() {
        return field("region", "must be a non-empty string", &cfg.region);
    }
    let is_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    if !is_url(&cfg.queue_url) {
        return field(
            "queueUrl",
            "must be an http(s) URL",
            &display_url(&cfg.queue_url),
        );
    }
    if let Some(d) = &cfg.dead_letter_queue_url {
        if !is_url(d) {
            return field(
                "deadLetterQueueUrl",
                "must be an http(s) URL",
                &display_url(d),
            );
        }
        if d == &cfg.queue_url {
            return field(
                "deadLetterQueueUrl",
                "must differ from queueUrl",
                &display_url(d),
            );
        }
    }
    if let Some(e) = &cfg.endpoint {
        if !is_url(e) {
            return field("endpoint", "must be an http(s) URL", &display_url(e));
        }
    }
    if !(1..=MAX_VISIBILITY_SECONDS).contains(&cfg.visibility_timeout) {
        return field(
            "visibilityTimeout",
            "must be 1 to 43200 seconds",
            &cfg.visibility_timeout,
        );
    }
    if !(1..=MAX_MESSAGE_BYTES).contains(&cfg.max_message_bytes) {
        return field(
            "maxMessageBytes",
            "must be 1 to 1048576",
            &cfg.max_message_bytes,
        );
    }
    if let Some(g) = &cfg.message_group_id {
        wire::check_fifo_id(g, "providerConfig.messageGroupId")?;
    }
    Ok(())
}

fn string_attr(value: &str) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type(wire::STRING)
        .string_value(value)
        .build()
        .map_err(|e| QueueError::Backend(format!("cannot build an SQS message attribute: {e}")))
}

/// Run `op` until it succeeds, fails for good, or has been tried [`ATTEMPTS`] times.
async fn retrying<T, E, F, Fut>(what: &str, mut op: F) -> Result<T>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, SdkError<E>>>,
{
    let mut failures = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if errors::is_transient(&e) && failures + 1 < ATTEMPTS => {
                failures += 1;
                debug!(op = what, error = %errors::describe(&e), "SQS request failed; retrying");
                tokio::time::sleep(errors::backoff(failures)).await;
            }
            Err(e) => return Err(errors::backend(what, &e)),
        }
    }
}

impl SqsProvider {
    /// Connect to the queue of `cfg` and check it answers (`GetQueueAttributes`), as well as
    /// the dead-letter queue when one is configured. Credentials come from the AWS SDK's
    /// standard chain; the endpoint from `cfg.endpoint`, else `AWS_ENDPOINT_URL_SQS` /
    /// `AWS_ENDPOINT_URL`, else AWS for `cfg.region`.
    pub async fn connect(cfg: SqsConfig) -> Result<Arc<SqsProvider>> {
        validate(&cfg)?;
        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https)
            .region(Region::new(cfg.region.clone()))
            .load()
            .await;
        let requests = Arc::new(AtomicU64::new(0));
        let mut builder = aws_sdk_sqs::config::Builder::from(&shared)
            .interceptor(CountRequests(requests.clone()));
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let client = Client::from_conf(builder.build());
        let endpoint = match &cfg.endpoint {
            Some(e) => display_url(e),
            None => format!("the SQS endpoint for region {}", cfg.region),
        };
        let redrive = check_queue(&client, &cfg.queue_url, "queueUrl", &endpoint).await?;
        if let Some(dlq) = &cfg.dead_letter_queue_url {
            check_queue(&client, dlq, "deadLetterQueueUrl", &endpoint).await?;
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
            foreign_logged: Mutex::new(HashSet::new()),
        });
        let (acks, ack_rx) = mpsc::unbounded_channel();
        tokio::spawn(ack_batcher(inner.clone(), ack_rx));
        tokio::spawn(heartbeat(Arc::downgrade(&inner), closed_rx));
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

/// `GetQueueAttributes` on a queue at start; whether it has a redrive policy.
async fn check_queue(client: &Client, url: &str, field: &str, endpoint: &str) -> Result<bool> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| {
            QueueError::Backend(format!(
                "cannot reach SQS queue {} (providerConfig.{field}) at {endpoint}: {}",
                display_url(url),
                errors::describe(&e)
            ))
        })?;
    Ok(out
        .attributes()
        .is_some_and(|a| a.contains_key(&QueueAttributeName::RedrivePolicy)))
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

    /// Validate a job and build its message, or route it to the delay sink.
    fn prepare(&self, new: NewJob, now: Millis) -> Result<Prepared> {
        if new.job_type.is_empty() {
            return Err(QueueError::invalid(
                "job type must be a non-empty string, got \"\"",
            ));
        }
        let visible_at = new.options.visible_at(now);
        let delay_ms = visible_at.map_or(0, |at| (at - now) as u64);
        if delay_ms > 0 && (self.fifo || delay_ms > MAX_DELAY_MS) {
            let sink = self.sink.read().unwrap_or_else(|e| e.into_inner()).clone();
            return match (sink, visible_at) {
                (Some(_), Some(at)) => Ok(Prepared::Sink(new, at)),
                _ if self.fifo => Err(QueueError::invalid(format!(
                    "delay of {delay_ms} ms cannot be held by FIFO queue {}: FIFO queues take no per-message \
                     delay; start the scheduler or use scheduler.schedule()",
                    display_url(&self.queue_url)
                ))),
                _ => Err(QueueError::invalid(format!(
                    "delay of {delay_ms} ms exceeds SQS's 15-minute limit; start the scheduler or use \
                     scheduler.schedule()"
                ))),
            };
        }
        let options = new.options.job_options();
        let id = uuid::Uuid::new_v4().to_string();
        let (group, dedup) = if self.fifo {
            let (g, d) = wire::fifo_ids(
                self.message_group_id.as_deref(),
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
        let size = wire::message_size(&body, wire::job_attrs(&id, &new.job_type));
        if size > self.max_message_bytes {
            return Err(QueueError::invalid(format!(
                "job of type {:?} is {size} bytes as an SQS message, over the limit of {} bytes \
                 (providerConfig.maxMessageBytes)",
                new.job_type, self.max_message_bytes
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

    fn remember(&self, job: Job) {
        lock(&self.known).put(job);
    }

    fn update_known(&self, id: &str, f: impl FnOnce(&mut Job)) {
        lock(&self.known).update(id, f);
    }

    fn sink(&self) -> Option<Arc<dyn DelaySink>> {
        self.sink.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn send_one(&self, out: &Outgoing) -> Result<()> {
        let mut req = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&out.body)
            .message_attributes(wire::ATTR_JOB_ID, string_attr(&out.job.id)?)
            .message_attributes(wire::ATTR_JOB_TYPE, string_attr(&out.job.job_type)?);
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

    /// Send the jobs `batch[i]` for `i` in `indexes` (≤ 10) in one `SendMessageBatch`,
    /// retrying entries that failed on the server's side. Returns those not sent, with why.
    async fn send_batch(
        self: Arc<Self>,
        batch: Arc<Vec<Outgoing>>,
        indexes: Vec<usize>,
    ) -> Vec<(usize, String)> {
        let mut pending = indexes;
        let mut refused = Vec::new();
        let mut failures = 0;
        while !pending.is_empty() {
            let mut entries = Vec::with_capacity(pending.len());
            for &i in &pending {
                match batch_entry(i, &batch[i]) {
                    Ok(e) => entries.push(e),
                    Err(e) => refused.push((i, e.to_string())),
                }
            }
            let may_retry = failures + 1 < ATTEMPTS;
            let mut retry = Vec::new();
            if !entries.is_empty() {
                let res = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await;
                match res {
                    Ok(out) => {
                        for f in out.failed() {
                            let Ok(i) = f.id().parse::<usize>() else {
                                continue;
                            };
                            if !f.sender_fault() && may_retry {
                                retry.push(i);
                            } else {
                                refused.push((
                                    i,
                                    format!("{}: {}", f.code(), f.message().unwrap_or_default()),
                                ));
                            }
                        }
                    }
                    Err(e) if errors::is_transient(&e) && may_retry => {
                        debug!(error = %errors::describe(&e), "SQS SendMessageBatch failed; retrying");
                        retry = pending.clone();
                    }
                    Err(e) => {
                        let why = errors::describe(&e);
                        let built: Vec<usize> = pending
                            .iter()
                            .copied()
                            .filter(|i| !refused.iter().any(|(r, _)| r == i))
                            .collect();
                        refused.extend(built.into_iter().map(|i| (i, why.clone())));
                    }
                }
            }
            pending = retry;
            if !pending.is_empty() {
                failures += 1;
                tokio::time::sleep(errors::backoff(failures)).await;
            }
        }
        refused
    }
}

fn batch_entry(i: usize, out: &Outgoing) -> Result<SendMessageBatchRequestEntry> {
    let mut b = SendMessageBatchRequestEntry::builder()
        .id(i.to_string())
        .message_body(&out.body)
        .message_attributes(wire::ATTR_JOB_ID, string_attr(&out.job.id)?)
        .message_attributes(wire::ATTR_JOB_TYPE, string_attr(&out.job.job_type)?);
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

// ---- receiving ----

impl Inner {
    /// Receive until `deadline`: a long poll for up to 10, topped up with short polls when a
    /// full batch came and more are wanted. Transient failures are retried with backoff.
    async fn receive_until(&self, max: usize, deadline: Instant) -> Result<Vec<ReceivedJob>> {
        let mut failures = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A long poll waits whole seconds: round up, so a short wait still waits.
            let wait_s = remaining
                .as_millis()
                .div_ceil(1000)
                .min(u128::from(MAX_WAIT_SECONDS)) as i32;
            let want = max.min(MAX_BATCH);
            match self.receive_once(want, wait_s).await {
                Ok(messages) => {
                    if self.receive_failing.swap(false, Ordering::Relaxed) {
                        info!(queue = %display_url(&self.queue_url), "SQS receive works again");
                    }
                    let full = messages.len() >= want;
                    let mut jobs = self.accept(messages).await;
                    if full && max > want {
                        self.top_up(&mut jobs, max).await;
                    }
                    if !jobs.is_empty() || wait_s == 0 || Instant::now() >= deadline {
                        return Ok(jobs);
                    }
                }
                Err(e) if e.transient => {
                    failures += 1;
                    if !self.receive_failing.swap(true, Ordering::Relaxed) {
                        warn!(queue = %display_url(&self.queue_url), error = %e.error, "SQS receive failed; retrying with backoff");
                    } else {
                        debug!(error = %e.error, "SQS receive failed again");
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(Vec::new());
                    }
                    tokio::time::sleep(errors::backoff(failures).min(deadline - now)).await;
                    if Instant::now() >= deadline {
                        return Ok(Vec::new());
                    }
                }
                Err(e) => return Err(e.error),
            }
        }
    }

    /// Short polls, concurrently, for what a full first batch left wanted.
    async fn top_up(&self, jobs: &mut Vec<ReceivedJob>, max: usize) {
        let missing = max.saturating_sub(jobs.len());
        let requests = missing.div_ceil(MAX_BATCH);
        let mut polls = Vec::with_capacity(requests);
        for r in 0..requests {
            let want = (missing - r * MAX_BATCH).min(MAX_BATCH);
            polls.push(self.receive_once(want, 0));
        }
        for res in join_all(polls).await {
            match res {
                Ok(messages) => jobs.extend(self.accept(messages).await),
                Err(e) => debug!(error = %e.error, "SQS short poll failed"),
            }
        }
    }

    async fn receive_once(
        &self,
        want: usize,
        wait_s: i32,
    ) -> std::result::Result<Vec<Message>, ReceiveError> {
        let req = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(want as i32)
            .wait_time_seconds(wait_s)
            .visibility_timeout(self.visibility_s as i32)
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

    /// Turn messages into jobs; messages that are not jobs go to the dead-letter queue.
    async fn accept(&self, messages: Vec<Message>) -> Vec<ReceivedJob> {
        let now = now_ms();
        let extend_at = Instant::now() + self.half_visibility();
        let mut jobs = Vec::with_capacity(messages.len());
        for m in messages {
            let Some(receipt) = m.receipt_handle() else {
                continue;
            };
            let body = m.body().unwrap_or_default();
            let system = |name: MessageSystemAttributeName| {
                m.attributes().and_then(|a| a.get(&name)).cloned()
            };
            let attempts = system(MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let decoded = match wire::decode_body(body) {
                Ok(d) => d,
                Err(reason) => {
                    self.foreign(&m, receipt, &reason).await;
                    continue;
                }
            };
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
            lock(&self.held).insert(
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
            self.remember(job.clone());
            jobs.push(ReceivedJob {
                job,
                receipt_handle: receipt.to_owned(),
            });
        }
        jobs
    }

    /// A message that is not a job: to the dead-letter queue when there is one (then deleted),
    /// else logged once and left for the queue's redrive policy.
    async fn foreign(&self, m: &Message, receipt: &str, reason: &str) {
        let message_id = m.message_id().unwrap_or_default();
        let Some(dlq) = &self.dlq_url else {
            let mut logged = lock(&self.foreign_logged);
            if logged.len() >= FOREIGN_LOGGED {
                logged.clear();
            }
            if logged.insert(message_id.to_owned()) {
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
        match self
            .dead_letter(
                dlq,
                m.body().unwrap_or_default(),
                attrs,
                &last_error,
                group,
                message_id,
                receipt,
            )
            .await
        {
            Ok(()) => warn!(
                message_id,
                reason, "moved an SQS message that is not a job to the dead-letter queue"
            ),
            Err(e) => {
                error!(message_id, error = %e, "could not move an SQS message that is not a job to the dead-letter queue")
            }
        }
    }

    /// Send a message's body to the dead-letter queue with its last error, then delete it.
    #[allow(clippy::too_many_arguments)]
    async fn dead_letter(
        &self,
        dlq: &str,
        body: &str,
        attrs: Vec<(String, MessageAttributeValue)>,
        last_error: &str,
        group: Option<String>,
        message_id: &str,
        receipt: &str,
    ) -> Result<()> {
        let mut req = self.client.send_message().queue_url(dlq).message_body(body);
        for (k, v) in attrs {
            req = req.message_attributes(k, v);
        }
        req = req.message_attributes(
            wire::ATTR_LAST_ERROR,
            string_attr(&wire::last_error_value(last_error))?,
        );
        if wire::is_fifo(dlq) {
            let group = group
                .filter(|g| wire::check_fifo_id(g, "group").is_ok())
                .unwrap_or_else(|| "dead-letter".into());
            let dedup = if message_id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                message_id.to_owned()
            };
            req = req.message_group_id(group).message_deduplication_id(dedup);
        }
        retrying("SendMessage (dead-letter queue)", || req.clone().send()).await?;
        retrying("DeleteMessage", || {
            self.client
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(receipt)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn change_visibility(&self, receipt: &str, seconds: i32) -> Result<()> {
        retrying("ChangeMessageVisibility", || {
            self.client
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(seconds)
                .send()
        })
        .await?;
        Ok(())
    }

    fn take_held(&self, receipt: &str) -> Result<Held> {
        lock(&self.held)
            .remove(receipt)
            .ok_or_else(|| QueueError::UnknownReceipt(receipt.to_owned()))
    }
}

struct ReceiveError {
    transient: bool,
    error: QueueError,
}

/// Await futures together (they make progress concurrently on this task).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in futures.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

// ---- acknowledging ----

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
        tokio::spawn(inner.clone().delete_batch(batch));
    }
}

impl Inner {
    /// Delete a batch of messages, retrying transient failures; answers each request.
    async fn delete_batch(self: Arc<Self>, batch: Vec<AckRequest>) {
        let mut pending = batch;
        let mut failures = 0;
        while !pending.is_empty() {
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
            let may_retry = failures + 1 < ATTEMPTS;
            let res = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            let mut retry = Vec::new();
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
                            Some(f) if !f.sender_fault() && may_retry => retry.push(r),
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
                Err(e) if errors::is_transient(&e) && may_retry => {
                    if failures == 0 {
                        warn!(error = %errors::describe(&e), "SQS DeleteMessageBatch failed; retrying");
                    }
                    retry = sendable;
                }
                Err(e) => {
                    let err = errors::backend("DeleteMessageBatch", &e);
                    error!(error = %err, count = sendable.len(), "SQS acknowledgements failed");
                    for r in sendable {
                        let _ = r.done.send(Err(QueueError::Backend(err.to_string())));
                    }
                }
            }
            pending = retry;
            if !pending.is_empty() {
                failures += 1;
                tokio::time::sleep(errors::backoff(failures)).await;
            }
        }
    }
}

// ---- heartbeat ----

/// One task for all held messages: extends the visibility timeout of each message held for
/// half of it, until the provider closes.
async fn heartbeat(inner: Weak<Inner>, mut closed: watch::Receiver<bool>) {
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

// ---- the contract ----

#[async_trait]
impl QueueProvider for SqsProvider {
    fn name(&self) -> &'static str {
        "sqs"
    }

    async fn enqueue(&self, job: NewJob) -> Result<Job> {
        let inner = &self.inner;
        inner.check_open()?;
        match inner.prepare(job, now_ms())? {
            Prepared::Sink(job, at) => match inner.sink() {
                Some(sink) => sink.schedule_at(job, at).await,
                None => Err(QueueError::invalid(
                    "the scheduler stopped before the job could be handed to it",
                )),
            },
            Prepared::Send(out) => {
                inner.send_one(&out).await?;
                inner.remember(out.job.clone());
                Ok(out.job)
            }
        }
    }

    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        let inner = &self.inner;
        inner.check_open()?;
        let now = now_ms();
        let n = jobs.len();
        let mut sends = Vec::new();
        let mut send_slots = Vec::new();
        let mut sinks = Vec::new();
        for (i, job) in jobs.into_iter().enumerate() {
            match inner.prepare(job, now) {
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
            .map(|o| wire::message_size(&o.body, wire::job_attrs(&o.job.id, &o.job.job_type)))
            .collect();
        let batches = plan_batches(&sizes, inner.max_message_bytes);
        let sends = Arc::new(sends);
        let permits = Arc::new(Semaphore::new(SEND_CONCURRENCY));
        let mut tasks = JoinSet::new();
        for indexes in batches {
            let (inner, sends, permits) = (self.inner.clone(), sends.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                inner.send_batch(sends, indexes).await
            });
        }
        let mut refused = Vec::new();
        while let Some(res) = tasks.join_next().await {
            match res {
                Ok(r) => refused.extend(r),
                Err(e) => {
                    return Err(QueueError::Backend(format!(
                        "enqueueBulk: a send task failed: {e}"
                    )))
                }
            }
        }
        refused.sort_by_key(|(i, _)| *i);
        let sends = Arc::try_unwrap(sends).map_err(|_| {
            QueueError::Backend("enqueueBulk: send tasks still hold the jobs".into())
        })?;
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

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>> {
        if max == 0 || self.inner.is_closed() {
            return Ok(Vec::new());
        }
        let mut closed = self.inner.closed.subscribe();
        let deadline = Instant::now() + wait;
        tokio::select! {
            res = self.inner.receive_until(max, deadline) => res,
            _ = closed.wait_for(|c| *c) => Ok(Vec::new()),
        }
    }

    async fn acknowledge(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()> {
        let inner = &self.inner;
        let held = inner.take_held(receipt)?;
        let (done, answer) = oneshot::channel();
        self.acks
            .send(AckRequest {
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

    async fn fail(&self, receipt: &str, error: &str) -> Result<()> {
        let inner = &self.inner;
        let held = inner.take_held(receipt)?;
        inner.failed.fetch_add(1, Ordering::Relaxed);
        let backoff_s =
            (retry_backoff_ms(held.attempts) / 1000).min(u64::from(MAX_VISIBILITY_SECONDS)) as i32;
        let status = if has_retries_left(held.attempts, &held.options) {
            inner.change_visibility(receipt, backoff_s).await?;
            JobStatus::Failed
        } else if let Some(dlq) = &inner.dlq_url {
            let attrs = vec![
                (wire::ATTR_JOB_ID.to_owned(), string_attr(&held.job_id)?),
                (wire::ATTR_JOB_TYPE.to_owned(), string_attr(&held.job_type)?),
            ];
            inner
                .dead_letter(
                    dlq,
                    &held.body,
                    attrs,
                    error,
                    held.group_id.clone(),
                    &held.message_id,
                    receipt,
                )
                .await?;
            JobStatus::Dead
        } else {
            warn!(
                job_id = %held.job_id,
                attempts = held.attempts,
                "SQS job is out of retries and no deadLetterQueueUrl is configured; leaving it for the queue's \
                 redrive policy"
            );
            inner.change_visibility(receipt, backoff_s).await?;
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

    async fn release(&self, receipt: &str) -> Result<()> {
        let inner = &self.inner;
        let held = inner.take_held(receipt)?;
        inner.change_visibility(receipt, 0).await?;
        inner.update_known(&held.job_id, |j| j.status = JobStatus::Pending);
        Ok(())
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
        let inner = &self.inner;
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
        let dead =
            dead.map_err(|e| errors::backend("GetQueueAttributes (dead-letter queue)", &e))?;
        let count = |attrs: Option<&HashMap<QueueAttributeName, String>>,
                     name: QueueAttributeName| {
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
        })
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

    #[test]
    fn urls_lose_their_user_info() {
        assert_eq!(
            display_url("http://user:pw@127.0.0.1:5000/1/q"),
            "http://127.0.0.1:5000/1/q"
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
