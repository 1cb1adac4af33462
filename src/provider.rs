//! `NativeProvider`: one queue provider as a JavaScript class. Jobs, stats and options cross as
//! typed objects; the memory provider's hot paths (enqueue, receive) as compact forms.
//!
//! The memory provider never blocks, so its methods are synchronous (`*Sync`); `index.js` picks
//! the class for a provider's kind once, at construction. A received batch crosses as JSON
//! text (one `JSON.parse` beats building a thousand objects through napi), and a memory
//! enqueue returns the job's id and writes the rest of what it stored into `out` (see
//! [`ENQUEUED_SLOTS`]), the caller already holding the type and payload.

use crate::bridge::{config_value, guarded, invalid_arg, napi_err, throw_config, to_json};
use crate::config::provider_config;
use crate::enqueue::{bulk_jobs, new_job, options_object, TraceArgs};
use chaaskit_queue_core::config::{ConfigValue, ProviderConfig};
use chaaskit_queue_core::durable::{PostgresQueue, SqliteQueue};
use chaaskit_queue_core::job::{Job, JobStatus, Millis, QueueStats};
use chaaskit_queue_core::joblog::JobLogs;
use chaaskit_queue_core::memory::{JobView, MemoryQueue};
use chaaskit_queue_core::sqs::SqsProvider;
use chaaskit_queue_core::{Immediate, JobFilter, JobPage, SharedProvider};
use chrono::{DateTime, Utc};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use uuid::fmt::Hyphenated;
use uuid::Uuid;

/// `JobOptions`: what a job was stored with.
#[napi(object)]
pub struct JobOptionsObject {
    pub max_retries: u32,
    pub timeout: f64,
    pub priority: u32,
    pub deduplication_key: Option<String>,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// A job as the provider stores it. `payload` and `result` are JSON text (`index.js` parses
/// them, which keeps their key order and costs less than building them here).
#[napi(object)]
pub struct JobObject {
    pub id: String,
    #[napi(js_name = "type")]
    pub job_type: String,
    pub payload: String,
    pub options: JobOptionsObject,
    #[napi(
        ts_type = "'pending' | 'scheduled' | 'processing' | 'completed' | 'failed' | 'dead' | 'cancelled'"
    )]
    pub status: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub progress: Option<f64>,
    pub result: Option<String>,
    /// Set on a received job: the handle that settles this attempt.
    pub receipt_handle: Option<String>,
}

/// One `ctx.log` line: when, by which attempt, and the text.
#[napi(object)]
pub struct LogLineObject {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub line: String,
}

/// A job's kept log lines, oldest first, and how many older ones the cap dropped.
#[napi(object)]
pub struct JobLogsObject {
    pub lines: Vec<LogLineObject>,
    pub dropped: f64,
}

impl From<JobLogs> for JobLogsObject {
    fn from(l: JobLogs) -> Self {
        JobLogsObject {
            lines: l
                .lines
                .into_iter()
                .map(|x| LogLineObject {
                    at: date(x.at),
                    attempt: x.attempt,
                    line: x.line,
                })
                .collect(),
            dropped: l.dropped as f64,
        }
    }
}

pub(crate) fn date(ms: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl From<Job> for JobObject {
    fn from(j: Job) -> Self {
        JobObject {
            id: j.id,
            job_type: j.job_type,
            payload: j.payload.get().to_owned(),
            options: JobOptionsObject {
                max_retries: j.options.max_retries,
                timeout: j.options.timeout as f64,
                priority: j.options.priority,
                deduplication_key: j.options.deduplication_key,
                traceparent: j.options.traceparent,
                tracestate: j.options.tracestate,
            },
            status: j.status.as_str().to_owned(),
            attempts: j.attempts,
            created_at: date(j.created_at),
            scheduled_for: j.scheduled_for.map(date),
            started_at: j.started_at.map(date),
            completed_at: j.completed_at.map(date),
            last_error: j.last_error,
            progress: j.progress,
            result: j.result.map(|r| r.get().to_owned()),
            receipt_handle: None,
        }
    }
}

/// `QueueStats`.
#[napi(object)]
pub struct QueueStatsObject {
    pub pending: f64,
    pub processing: f64,
    pub completed: f64,
    pub failed: f64,
    pub dead: f64,
    pub scheduled: f64,
    pub cancelled: f64,
}

impl From<QueueStats> for QueueStatsObject {
    fn from(s: QueueStats) -> Self {
        QueueStatsObject {
            pending: s.pending as f64,
            processing: s.processing as f64,
            completed: s.completed as f64,
            failed: s.failed as f64,
            dead: s.dead as f64,
            scheduled: s.scheduled as f64,
            cancelled: s.cancelled as f64,
        }
    }
}

/// `ListJobsOptions` as JavaScript passes them, checked by the core (`admin::list_filter`).
#[napi(object, object_to_js = false)]
pub struct ListJobsArgs<'a> {
    #[napi(
        ts_type = "'pending' | 'scheduled' | 'processing' | 'completed' | 'failed' | 'dead' | 'cancelled'"
    )]
    pub status: Option<Unknown<'a>>,
    #[napi(js_name = "type", ts_type = "string")]
    pub job_type: Option<Unknown<'a>>,
    #[napi(ts_type = "number")]
    pub limit: Option<Unknown<'a>>,
    #[napi(ts_type = "string | null")]
    pub cursor: Option<Unknown<'a>>,
}

fn job_filter(env: &Env, options: Option<Unknown>) -> Result<JobFilter> {
    let Some(u) = options_object(env, options, "options")? else {
        return Ok(JobFilter::default());
    };
    let a = unsafe { ListJobsArgs::from_napi_value(env.raw(), u.raw())? };
    let value = |v: Option<Unknown>| v.map_or(Ok(ConfigValue::Undefined), |u| config_value(&u, 1));
    chaaskit_queue_core::admin::list_filter(
        &value(a.status)?,
        value(a.job_type)?,
        &value(a.limit)?,
        value(a.cursor)?,
        "options",
    )
    .map_err(|e| throw_config(env, e))
}

/// `JobPage`: one page of `listJobs`.
#[napi(object)]
pub struct JobPageObject {
    pub jobs: Vec<JobObject>,
    pub next_cursor: Option<String>,
}

impl From<JobPage> for JobPageObject {
    fn from(p: JobPage) -> Self {
        JobPageObject {
            jobs: p.jobs.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// Numbers a memory enqueue writes per job into `out`: `createdAt`, `scheduledFor` (NaN when
/// none), `maxRetries`, `timeout`, `priority`, and the status's index in [`job_statuses`], or
/// -1 when a deduplication key matched an existing job (whose id is returned: read it with
/// `getJobSync`).
pub const ENQUEUED_SLOTS: usize = 6;

/// The job statuses, in the order the memory enqueue's `out` numbers them.
#[napi(
    ts_return_type = "Array<'pending' | 'scheduled' | 'processing' | 'completed' | 'failed' | 'dead' | 'cancelled'>"
)]
pub fn job_statuses() -> Vec<&'static str> {
    STATUSES.iter().map(|s| s.as_str()).collect()
}

/// [`ENQUEUED_SLOTS`], for `index.js`.
#[napi]
pub fn enqueued_slots() -> u32 {
    ENQUEUED_SLOTS as u32
}

const STATUSES: [JobStatus; 7] = JobStatus::ALL;

fn write_enqueued(v: &JobView<'_>, out: &mut [f64]) {
    let status = v.is_new.then(|| v.status());
    write_slots(out, v.created_at(), v.scheduled_for(), v.options(), status);
}

/// [`ENQUEUED_SLOTS`] numbers of a job; `status` None for the -1 of a deduplicated one.
fn write_slots(
    out: &mut [f64],
    created_at: Millis,
    scheduled_for: Option<Millis>,
    (max_retries, timeout, priority): (u32, u64, u32),
    status: Option<JobStatus>,
) {
    out[0] = created_at as f64;
    out[1] = scheduled_for.map_or(f64::NAN, |t| t as f64);
    out[2] = f64::from(max_retries);
    out[3] = timeout as f64;
    out[4] = f64::from(priority);
    out[5] = status
        .and_then(|st| STATUSES.iter().position(|s| *s == st))
        .map_or(-1.0, |i| i as f64);
}

/// An async `enqueueBulk`'s jobs in item order, as [`NativeProvider::enqueue_bulk_sync`] gives
/// them (`ids` joined, [`ENQUEUED_SLOTS`] numbers each in `slots`), except the job of an item
/// with a deduplication key, which may be one that already held the key: those are in
/// `keyed`, as JSON in item order, and their status number is -1.
#[napi(object, object_from_js = false)]
pub struct EnqueuedJobs {
    pub ids: String,
    pub slots: Float64Array,
    pub keyed: Option<String>,
}

impl EnqueuedJobs {
    /// `jobs` in item order; `keyed[i]` says whether item `i` had a deduplication key.
    fn new(jobs: Vec<Job>, keyed: &[bool]) -> Result<EnqueuedJobs> {
        let mut slots = vec![0.0; jobs.len() * ENQUEUED_SLOTS];
        let mut with_keys = Vec::new();
        for ((j, out), &k) in jobs
            .iter()
            .zip(slots.chunks_exact_mut(ENQUEUED_SLOTS))
            .zip(keyed)
        {
            let o = &j.options;
            let status = (!k).then_some(j.status);
            write_slots(
                out,
                j.created_at,
                j.scheduled_for,
                (o.max_retries, o.timeout, o.priority),
                status,
            );
            if k {
                with_keys.push(j);
            }
        }
        let mut ids = String::with_capacity(jobs.len() * Hyphenated::LENGTH);
        for j in &jobs {
            ids.push_str(&j.id);
        }
        Ok(EnqueuedJobs {
            ids,
            slots: slots.into(),
            keyed: if with_keys.is_empty() {
                None
            } else {
                Some(to_json(&with_keys)?)
            },
        })
    }
}

/// Job ids as one string, 36 characters each (one JS string instead of one per job).
fn joined_ids(ids: impl Iterator<Item = Uuid>, n: usize) -> String {
    let mut out = String::with_capacity(n * Hyphenated::LENGTH);
    let mut buf = [0u8; Hyphenated::LENGTH];
    for id in ids {
        out.push_str(id.hyphenated().encode_lower(&mut buf));
    }
    out
}

fn result_raw(result_json: Option<String>) -> Result<Option<Box<RawValue>>> {
    result_json
        .map(|r| {
            RawValue::from_string(r).map_err(|e| invalid_arg(format!("result is not JSON: {e}")))
        })
        .transpose()
}

#[napi]
pub struct NativeProvider {
    inner: SharedProvider,
    memory: Option<Arc<MemoryQueue>>,
    /// The postgres provider, for enqueues inside a caller's transaction.
    postgres: Option<Arc<PostgresQueue>>,
}

impl NativeProvider {
    fn memory(q: Arc<MemoryQueue>) -> Self {
        NativeProvider {
            inner: q.clone(),
            memory: Some(q),
            postgres: None,
        }
    }

    fn other(inner: SharedProvider) -> Self {
        NativeProvider {
            inner,
            memory: None,
            postgres: None,
        }
    }

    pub(crate) fn shared(&self) -> SharedProvider {
        self.inner.clone()
    }

    fn mem(&self) -> Result<&MemoryQueue> {
        self.memory.as_deref().ok_or_else(|| {
            Error::from_reason(format!(
                "the {} provider has no synchronous calls",
                self.inner.name()
            ))
        })
    }
}

/// A `providerConfig` checked, with its defaults (a `TypeError`/`RangeError` naming the
/// field otherwise, an `Error` for an unknown type). Pass the result to [`create_provider`].
#[napi(catch_unwind, ts_return_type = "Record<string, unknown>")]
pub fn check_provider_config(env: Env, config: Unknown) -> Result<serde_json::Value> {
    let c = provider_config(&env, &config, "providerConfig")?;
    serde_json::to_value(&c).map_err(|e| Error::from_reason(e.to_string()))
}

/// Create a provider from a config that [`check_provider_config`] returned.
#[napi]
pub async fn create_provider(config: serde_json::Value) -> Result<NativeProvider> {
    guarded("createQueueProvider", async move {
        let checked = ProviderConfig::from_value(&config.into(), "providerConfig")
            .map_err(|e| invalid_arg(e.to_string()))?;
        Ok(match checked.config {
            ProviderConfig::Memory(c) => NativeProvider::memory(MemoryQueue::new(c)),
            ProviderConfig::Sqs(c) => {
                NativeProvider::other(SqsProvider::connect(c).await.map_err(napi_err)?)
            }
            ProviderConfig::Postgres(c) => {
                let p = PostgresQueue::connect_postgres(c).await.map_err(napi_err)?;
                NativeProvider {
                    inner: p.clone(),
                    memory: None,
                    postgres: Some(p),
                }
            }
            ProviderConfig::Sqlite(c) => {
                NativeProvider::other(SqliteQueue::connect_sqlite(c).await.map_err(napi_err)?)
            }
        })
    })
    .await
}

/// A memory provider, at once (`getQueueProvider()` must not wait): the default config, or
/// `config` checked as `createQueueProvider` would.
#[napi(catch_unwind)]
pub fn create_memory_provider(env: Env, config: Option<Unknown>) -> Result<NativeProvider> {
    let c = match config {
        None => ProviderConfig::default_memory(),
        Some(c) => provider_config(&env, &c, "providerConfig")?,
    };
    match c {
        ProviderConfig::Memory(c) => Ok(NativeProvider::memory(MemoryQueue::new(c))),
        _ => Err(invalid_arg("createMemoryProvider needs type 'memory'")),
    }
}

#[napi]
impl NativeProvider {
    #[napi(getter)]
    pub fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// Whether the `*Sync` methods are available (the memory provider).
    #[napi(getter)]
    pub fn is_sync(&self) -> bool {
        self.memory.is_some()
    }

    /// `type` and `options` are checked here, before the promise (see `crate::enqueue`).
    #[napi(
        catch_unwind,
        ts_args_type = "type: string, payloadJson: string, options?: EnqueueArgs | undefined | null",
        ts_return_type = "Promise<JobObject>"
    )]
    pub fn enqueue<'env>(
        &self,
        env: &'env Env,
        job_type: Unknown,
        payload_json: String,
        options: Option<Unknown>,
    ) -> Result<PromiseRaw<'env, JobObject>> {
        let job = new_job(env, job_type, &payload_json, options)?;
        let inner = self.inner.clone();
        env.spawn_future(guarded("enqueue", async move {
            Ok(inner.enqueue(job).await.map_err(napi_err)?.into())
        }))
    }

    /// See `crate::enqueue::bulk_jobs` for the arguments.
    #[napi(
        catch_unwind,
        ts_args_type = "items: unknown, flatJson: string, optionItems?: Array<number> | undefined | null, options?: Array<EnqueueArgs> | undefined | null, trace?: TraceArgs | undefined | null",
        ts_return_type = "Promise<EnqueuedJobs>"
    )]
    /// The queued jobs as numbers (see [`EnqueuedJobs`]), which `index.js` makes into jobs with
    /// the caller's items: a batch of 1,000 objects built property by property through napi
    /// cost the JavaScript thread about half of a PostgreSQL bulk enqueue's time, and parsing
    /// them from JSON about 6%.
    pub fn enqueue_bulk<'env>(
        &self,
        env: &'env Env,
        items: Unknown,
        flat_json: String,
        option_items: Option<Vec<u32>>,
        options: Option<Vec<Unknown>>,
        trace: Option<TraceArgs>,
    ) -> Result<PromiseRaw<'env, EnqueuedJobs>> {
        let jobs = bulk_jobs(env, &items, &flat_json, option_items, options, trace)?;
        let keyed: Vec<bool> = jobs
            .iter()
            .map(|j| j.options.deduplication_key.is_some())
            .collect();
        let inner = self.inner.clone();
        env.spawn_future(guarded("enqueueBulk", async move {
            let jobs = inner.enqueue_bulk(jobs).await.map_err(napi_err)?;
            if jobs.len() != keyed.len() {
                return Err(Error::from_reason(format!(
                    "enqueueBulk: {} jobs came back for {} items",
                    jobs.len(),
                    keyed.len()
                )));
            }
            EnqueuedJobs::new(jobs, &keyed)
        }))
    }

    /// Memory: the job's id; the rest of the job goes into `out` (see [`ENQUEUED_SLOTS`]).
    #[napi(
        catch_unwind,
        ts_args_type = "type: string, payloadJson: string, options: EnqueueArgs | undefined | null, out: Float64Array"
    )]
    pub fn enqueue_sync(
        &self,
        env: Env,
        job_type: Unknown,
        payload_json: String,
        options: Option<Unknown>,
        mut out: Float64ArraySlice,
    ) -> Result<String> {
        let job = new_job(&env, job_type, &payload_json, options)?;
        // Safety: the JavaScript thread is in this call, so nothing else touches the array.
        let out = unsafe { out.as_mut() };
        let out = out
            .get_mut(..ENQUEUED_SLOTS)
            .ok_or_else(|| invalid_arg("out is too short"))?;
        let mut ids = self
            .mem()?
            .enqueue_viewing(vec![job], |v| {
                write_enqueued(&v, out);
                v.uuid()
            })
            .map_err(napi_err)?;
        Ok(joined_ids(ids.drain(..), 1))
    }

    /// Memory: the ids joined (36 characters each), in order; the rest of each job goes into
    /// `out`, [`ENQUEUED_SLOTS`] numbers per job. See `crate::enqueue::bulk_jobs` for the arguments.
    #[napi(
        catch_unwind,
        ts_args_type = "items: unknown, flatJson: string, optionItems: Array<number> | undefined | null, options: Array<EnqueueArgs> | undefined | null, out: Float64Array, trace?: TraceArgs | undefined | null"
    )]
    // Positional arguments: the fast path's calling convention with index.js.
    #[allow(clippy::too_many_arguments)]
    pub fn enqueue_bulk_sync(
        &self,
        env: Env,
        items: Unknown,
        flat_json: String,
        option_items: Option<Vec<u32>>,
        options: Option<Vec<Unknown>>,
        mut out: Float64ArraySlice,
        trace: Option<TraceArgs>,
    ) -> Result<String> {
        let jobs = bulk_jobs(&env, &items, &flat_json, option_items, options, trace)?;
        // Safety: the JavaScript thread is in this call, so nothing else touches the array.
        let out = unsafe { out.as_mut() };
        let n = jobs.len();
        if out.len() < n * ENQUEUED_SLOTS {
            return Err(invalid_arg("out is too short"));
        }
        let mut slots = out.chunks_exact_mut(ENQUEUED_SLOTS);
        let ids = self
            .mem()?
            .enqueue_viewing(jobs, |v| {
                if let Some(o) = slots.next() {
                    write_enqueued(&v, o);
                }
                v.uuid()
            })
            .map_err(napi_err)?;
        Ok(joined_ids(ids.into_iter(), n))
    }

    /// Up to `max` jobs, waiting up to `wait_ms` for the first, as JSON text (an array of jobs
    /// with their `receiptHandle`, dates as epoch ms).
    #[napi]
    pub async fn receive(&self, max: u32, wait_ms: f64) -> Result<String> {
        guarded("receive", async {
            let wait = Duration::from_millis(wait_ms.max(0.0) as u64);
            to_json(
                &self
                    .inner
                    .receive(max as usize, wait)
                    .await
                    .map_err(napi_err)?,
            )
        })
        .await
    }

    /// Memory: the visible jobs now, without waiting, as [`NativeProvider::receive`] gives them.
    #[napi(catch_unwind)]
    pub fn try_receive_sync(&self, max: u32) -> Result<String> {
        to_json(&self.mem()?.try_receive(max as usize))
    }

    #[napi]
    pub async fn acknowledge(&self, receipt: String, result_json: Option<String>) -> Result<()> {
        guarded("acknowledge", async {
            self.inner
                .acknowledge(&receipt, result_raw(result_json)?)
                .await
                .map_err(napi_err)
        })
        .await
    }

    #[napi(catch_unwind)]
    pub fn acknowledge_sync(&self, receipt: String, result_json: Option<String>) -> Result<()> {
        self.mem()?
            .acknowledge_now(&receipt, result_raw(result_json)?)
            .map_err(napi_err)
    }

    #[napi]
    pub async fn fail(&self, receipt: String, error: String) -> Result<()> {
        guarded("fail", async {
            self.inner.fail(&receipt, &error).await.map_err(napi_err)
        })
        .await
    }

    #[napi(catch_unwind)]
    pub fn fail_sync(&self, receipt: String, error: String) -> Result<()> {
        self.mem()?.fail_now(&receipt, &error).map_err(napi_err)
    }

    #[napi]
    pub async fn get_job(&self, id: String) -> Result<Option<JobObject>> {
        guarded("getJob", async {
            Ok(self
                .inner
                .get_job(&id)
                .await
                .map_err(napi_err)?
                .map(Into::into))
        })
        .await
    }

    /// A job's `ctx.log` lines (see `chaaskit_queue_core::joblog`); `null` when there is no
    /// such job.
    #[napi]
    pub async fn get_job_logs(&self, id: String) -> Result<Option<JobLogsObject>> {
        guarded("getJobLogs", async {
            Ok(self
                .inner
                .get_job_logs(&id)
                .await
                .map_err(napi_err)?
                .map(Into::into))
        })
        .await
    }

    #[napi(catch_unwind)]
    pub fn get_job_sync(&self, id: String) -> Result<Option<JobObject>> {
        Ok(self.mem()?.get_job_now(&id).map(Into::into))
    }

    #[napi]
    pub async fn get_stats(&self) -> Result<QueueStatsObject> {
        guarded("getStats", async {
            Ok(self.inner.stats().await.map_err(napi_err)?.into())
        })
        .await
    }

    #[napi(catch_unwind)]
    pub fn get_stats_sync(&self) -> Result<QueueStatsObject> {
        Ok(self.mem()?.stats_now().into())
    }

    /// `options` are checked here, before the promise.
    #[napi(
        catch_unwind,
        ts_args_type = "options?: ListJobsArgs | undefined | null",
        ts_return_type = "Promise<JobPageObject>"
    )]
    pub fn list_jobs<'env>(
        &self,
        env: &'env Env,
        options: Option<Unknown>,
    ) -> Result<PromiseRaw<'env, JobPageObject>> {
        let filter = job_filter(env, options)?;
        let inner = self.inner.clone();
        env.spawn_future(guarded("listJobs", async move {
            Ok(inner.list_jobs(filter).await.map_err(napi_err)?.into())
        }))
    }

    #[napi]
    pub async fn retry_job(&self, id: String) -> Result<bool> {
        guarded("retryJob", async {
            self.inner.retry_job(&id).await.map_err(napi_err)
        })
        .await
    }

    #[napi]
    pub async fn cancel_job(&self, id: String) -> Result<bool> {
        guarded("cancelJob", async {
            self.inner.cancel_job(&id).await.map_err(napi_err)
        })
        .await
    }

    /// Pause jobs of `job_type`, or everything when it is absent.
    #[napi]
    pub async fn pause(&self, job_type: Option<String>) -> Result<()> {
        guarded("pause", async {
            if let Some(t) = &job_type {
                chaaskit_queue_core::job::check_name("type", t).map_err(napi_err)?;
            }
            self.inner
                .pause(job_type.as_deref())
                .await
                .map_err(napi_err)
        })
        .await
    }

    #[napi]
    pub async fn resume(&self, job_type: Option<String>) -> Result<()> {
        guarded("resume", async {
            if let Some(t) = &job_type {
                chaaskit_queue_core::job::check_name("type", t).map_err(napi_err)?;
            }
            self.inner
                .resume(job_type.as_deref())
                .await
                .map_err(napi_err)
        })
        .await
    }

    /// What is paused: `null` stands for everything.
    #[napi(ts_return_type = "Promise<Array<string | null>>")]
    pub async fn paused(&self) -> Result<Vec<Option<String>>> {
        guarded("paused", async {
            self.inner.paused().await.map_err(napi_err)
        })
        .await
    }

    /// SQS: move the dead-letter queue's messages back; how many.
    #[napi]
    pub async fn redrive_dead_letters(&self) -> Result<f64> {
        guarded("redriveDeadLetters", async {
            Ok(self.inner.redrive_dead_letters().await.map_err(napi_err)? as f64)
        })
        .await
    }

    #[napi]
    pub async fn close(&self) -> Result<()> {
        guarded("close", async {
            self.inner.close().await.map_err(napi_err)
        })
        .await
    }

    /// Postgres only: `[sql, param]` that enqueue these jobs (the arguments of `enqueueBulk`)
    /// when run on the caller's connection inside its transaction; the one row's `jobs` is the
    /// jobs as JSON.
    #[napi(
        catch_unwind,
        ts_args_type = "items: unknown, flatJson: string, optionItems?: Array<number> | undefined | null, options?: Array<EnqueueArgs> | undefined | null, trace?: TraceArgs | undefined | null"
    )]
    pub fn tx_enqueue_sql(
        &self,
        env: Env,
        items: Unknown,
        flat_json: String,
        option_items: Option<Vec<u32>>,
        options: Option<Vec<Unknown>>,
        trace: Option<TraceArgs>,
    ) -> Result<Vec<String>> {
        let pg = self.postgres.as_ref().ok_or_else(|| {
            invalid_arg(format!(
                "options.tx needs the postgres provider; this provider is {}",
                self.inner.name()
            ))
        })?;
        let jobs = bulk_jobs(&env, &items, &flat_json, option_items, options, trace)?;
        let (sql, param) = pg.transactional_enqueue(jobs).map_err(napi_err)?;
        Ok(vec![sql, param])
    }

    /// Longest delay the provider holds itself, in ms; `null` when unbounded.
    #[napi(getter)]
    pub fn max_delay_ms(&self) -> Option<f64> {
        self.inner.max_delay().map(|d| d.as_millis() as f64)
    }
}
