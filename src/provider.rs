//! `NativeProvider`: one queue provider (memory, SQS, PostgreSQL, SQLite) as a JavaScript class. Jobs cross as
//! JSON text; the memory provider also has synchronous fast paths, since it never blocks.

use crate::bridge::{napi_err, to_json};
use chaaskit_queue_core::config::ProviderConfig;
use chaaskit_queue_core::durable::{PostgresQueue, SqliteQueue};
use chaaskit_queue_core::job::{raw_json, EnqueueOptions, NewJob};
use chaaskit_queue_core::memory::MemoryQueue;
use chaaskit_queue_core::sqs::SqsProvider;
use chaaskit_queue_core::SharedProvider;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use uuid::fmt::Hyphenated;
use uuid::Uuid;

/// Options of one enqueue, already validated by `index.js`.
#[napi(object)]
pub struct EnqueueArgs {
    pub delay: Option<f64>,
    pub scheduled_for: Option<f64>,
    pub max_retries: Option<u32>,
    pub timeout: Option<f64>,
    pub deduplication_key: Option<String>,
    pub priority: Option<u32>,
}

fn enqueue_options(a: Option<EnqueueArgs>) -> EnqueueOptions {
    {
        let Some(a) = a else {
            return EnqueueOptions::default();
        };
        EnqueueOptions {
            delay: a.delay.map(|d| d.max(0.0) as u64),
            scheduled_for: a.scheduled_for.map(|t| t as i64),
            max_retries: a.max_retries,
            timeout: a.timeout.map(|t| t.max(0.0) as u64),
            deduplication_key: a.deduplication_key,
            priority: a.priority,
        }
    }
}

fn new_job(job_type: String, payload_json: &str, options: Option<EnqueueArgs>) -> Result<NewJob> {
    let payload = raw_json(payload_json)
        .map_err(|e| Error::new(Status::InvalidArg, format!("payload is not JSON: {e}")))?;
    Ok(NewJob::new(job_type, payload, enqueue_options(options)))
}

/// The jobs of `enqueueBulk` as `index.js` serialises them: `flat_json` is
/// `[type, payload, type, payload, …]` (one `JSON.stringify` for the whole batch) and
/// `options_json`, when some items have options, is `[[index, options], …]`.
fn bulk_jobs(flat_json: &str, options_json: Option<&str>) -> Result<Vec<NewJob>> {
    let invalid = |e: String| {
        Error::new(
            Status::InvalidArg,
            format!("enqueueBulk items are not valid: {e}"),
        )
    };
    let Flat(mut jobs) = serde_json::from_str(flat_json).map_err(|e| invalid(e.to_string()))?;
    if let Some(text) = options_json {
        let options: Vec<(usize, EnqueueOptions)> =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        for (i, o) in options {
            let job = jobs
                .get_mut(i)
                .ok_or_else(|| invalid(format!("options for item {i}, which does not exist")))?;
            job.options = o;
        }
    }
    Ok(jobs)
}

/// `[type, payload, …]` read straight into jobs, payloads kept as raw JSON.
struct Flat(Vec<NewJob>);

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Flat;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array [type, payload, type, payload, …]")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Flat, A::Error> {
                let mut jobs = Vec::with_capacity(seq.size_hint().unwrap_or(0) / 2);
                while let Some(job_type) = seq.next_element::<String>()? {
                    let payload: Box<RawValue> = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::custom("a type without a payload"))?;
                    jobs.push(NewJob::new(job_type, payload, EnqueueOptions::default()));
                }
                Ok(Flat(jobs))
            }
        }
        d.deserialize_seq(Pairs)
    }
}

/// Job ids as one string, 36 characters each (one JS string instead of one per job).
fn joined_ids(ids: &[Uuid]) -> String {
    let mut out = String::with_capacity(ids.len() * Hyphenated::LENGTH);
    let mut buf = [0u8; Hyphenated::LENGTH];
    for id in ids {
        out.push_str(id.hyphenated().encode_lower(&mut buf));
    }
    out
}

fn result_raw(result_json: Option<String>) -> Result<Option<Box<RawValue>>> {
    result_json
        .map(|r| {
            RawValue::from_string(r)
                .map_err(|e| Error::new(Status::InvalidArg, format!("result is not JSON: {e}")))
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

/// Create a provider from a `providerConfig` given as JSON text.
#[napi]
pub async fn create_provider(config_json: String) -> Result<NativeProvider> {
    let config: ProviderConfig = serde_json::from_str(&config_json)
        .map_err(|e| Error::new(Status::InvalidArg, format!("invalid providerConfig: {e}")))?;
    Ok(match config {
        ProviderConfig::Memory(c) => {
            let q = MemoryQueue::new(c);
            NativeProvider {
                inner: q.clone(),
                memory: Some(q),
                postgres: None,
            }
        }
        ProviderConfig::Sqs(c) => {
            let p = SqsProvider::connect(c).await.map_err(napi_err)?;
            NativeProvider {
                inner: p,
                memory: None,
                postgres: None,
            }
        }
        ProviderConfig::Postgres(c) => {
            let p = PostgresQueue::connect(c).await.map_err(napi_err)?;
            NativeProvider {
                inner: p.clone(),
                memory: None,
                postgres: Some(p),
            }
        }
        ProviderConfig::Sqlite(c) => NativeProvider {
            inner: SqliteQueue::connect(c).await.map_err(napi_err)?,
            memory: None,
            postgres: None,
        },
    })
}

/// Create a memory provider synchronously (`getQueueProvider()` must not wait).
#[napi]
pub fn create_memory_provider(max_history_size: u32) -> NativeProvider {
    let q = MemoryQueue::new(chaaskit_queue_core::config::MemoryConfig {
        max_history_size: max_history_size as usize,
    });
    NativeProvider {
        inner: q.clone(),
        memory: Some(q),
        postgres: None,
    }
}

impl NativeProvider {
    pub(crate) fn shared(&self) -> SharedProvider {
        self.inner.clone()
    }

    fn mem(&self) -> Result<&MemoryQueue> {
        self.memory
            .as_deref()
            .ok_or_else(|| Error::from_reason("synchronous calls need the memory provider"))
    }
}

#[napi]
impl NativeProvider {
    #[napi(getter)]
    pub fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// Whether the `*Sync` methods are available.
    #[napi(getter)]
    pub fn is_sync(&self) -> bool {
        self.memory.is_some()
    }

    #[napi]
    pub async fn enqueue(
        &self,
        job_type: String,
        payload_json: String,
        options: Option<EnqueueArgs>,
    ) -> Result<String> {
        let job = new_job(job_type, &payload_json, options)?;
        to_json(&self.inner.enqueue(job).await.map_err(napi_err)?)
    }

    /// Memory only: returns just the job's id (an existing id for a duplicate).
    #[napi]
    pub fn enqueue_sync(
        &self,
        job_type: String,
        payload_json: String,
        options: Option<EnqueueArgs>,
    ) -> Result<String> {
        let job = new_job(job_type, &payload_json, options)?;
        let ids = self.mem()?.enqueue_bulk_ids(vec![job]).map_err(napi_err)?;
        Ok(joined_ids(&ids))
    }

    /// See [`bulk_jobs`] for the arguments. Returns the jobs as JSON text.
    #[napi]
    pub async fn enqueue_bulk(
        &self,
        flat_json: String,
        options_json: Option<String>,
    ) -> Result<String> {
        let jobs = bulk_jobs(&flat_json, options_json.as_deref())?;
        to_json(&self.inner.enqueue_bulk(jobs).await.map_err(napi_err)?)
    }

    /// Memory only: returns just the ids, in order (an existing id for a duplicate), joined.
    #[napi]
    pub fn enqueue_bulk_sync(
        &self,
        flat_json: String,
        options_json: Option<String>,
    ) -> Result<String> {
        let jobs = bulk_jobs(&flat_json, options_json.as_deref())?;
        Ok(joined_ids(
            &self.mem()?.enqueue_bulk_ids(jobs).map_err(napi_err)?,
        ))
    }

    #[napi]
    pub async fn receive(&self, max: u32, wait_ms: f64) -> Result<String> {
        let wait = Duration::from_millis(wait_ms.max(0.0) as u64);
        to_json(
            &self
                .inner
                .receive(max as usize, wait)
                .await
                .map_err(napi_err)?,
        )
    }

    /// Memory only: the visible jobs now, without waiting.
    #[napi]
    pub fn try_receive_sync(&self, max: u32) -> Result<String> {
        to_json(&self.mem()?.try_receive(max as usize))
    }

    #[napi]
    pub async fn acknowledge(&self, receipt: String, result_json: Option<String>) -> Result<()> {
        self.inner
            .acknowledge(&receipt, result_raw(result_json)?)
            .await
            .map_err(napi_err)
    }

    #[napi]
    pub fn acknowledge_sync(&self, receipt: String, result_json: Option<String>) -> Result<()> {
        self.mem()?
            .acknowledge_now(&receipt, result_raw(result_json)?)
            .map_err(napi_err)
    }

    #[napi]
    pub async fn fail(&self, receipt: String, error: String) -> Result<()> {
        self.inner.fail(&receipt, &error).await.map_err(napi_err)
    }

    #[napi]
    pub fn fail_sync(&self, receipt: String, error: String) -> Result<()> {
        self.mem()?.fail_now(&receipt, &error).map_err(napi_err)
    }

    #[napi]
    pub async fn release(&self, receipt: String) -> Result<()> {
        self.inner.release(&receipt).await.map_err(napi_err)
    }

    #[napi]
    pub async fn get_job(&self, id: String) -> Result<Option<String>> {
        self.inner
            .get_job(&id)
            .await
            .map_err(napi_err)?
            .map(|j| to_json(&j))
            .transpose()
    }

    #[napi]
    pub fn get_job_sync(&self, id: String) -> Result<Option<String>> {
        self.mem()?
            .get_job_now(&id)
            .map(|j| to_json(&j))
            .transpose()
    }

    #[napi]
    pub async fn get_stats(&self) -> Result<String> {
        to_json(&self.inner.stats().await.map_err(napi_err)?)
    }

    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.inner.close().await.map_err(napi_err)
    }

    /// Postgres only: `[sql, param]` that enqueue these jobs (see [`bulk_jobs`]) when run on the
    /// caller's connection inside its transaction; the one row's `jobs` is the jobs as JSON.
    #[napi]
    pub fn tx_enqueue_sql(
        &self,
        flat_json: String,
        options_json: Option<String>,
    ) -> Result<Vec<String>> {
        let pg = self.postgres.as_ref().ok_or_else(|| {
            Error::new(
                Status::InvalidArg,
                format!(
                    "options.tx needs the postgres provider; this provider is {}",
                    self.inner.name()
                ),
            )
        })?;
        let jobs = bulk_jobs(&flat_json, options_json.as_deref())?;
        let (sql, param) = pg.transactional_enqueue(jobs).map_err(napi_err)?;
        Ok(vec![sql, param])
    }

    /// Longest delay the provider holds itself, in ms; `null` when unbounded.
    #[napi(getter)]
    pub fn max_delay_ms(&self) -> Option<f64> {
        self.inner.max_delay().map(|d| d.as_millis() as f64)
    }
}
