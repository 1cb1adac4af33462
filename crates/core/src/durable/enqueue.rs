//! Enqueue: the rows a job becomes, the batcher that merges concurrent enqueues into one
//! statement, the deduplicated insert, and the statement of an enqueue inside a caller's
//! transaction (PostgreSQL).

use super::{DbQueue, Inner};
use crate::error::{QueueError, Result};
use crate::job::{Job, JobOptions, JobStatus, NewJob};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Jobs inserted in one statement at most by the enqueue batcher; a bulk this big goes alone.
pub(super) const ENQUEUE_BATCH: usize = 1000;

/// A job as the backend inserts it: the id is made here, times are made by the database.
#[derive(Clone, Debug)]
pub struct Insert {
    pub id: Uuid,
    pub job_type: String,
    pub payload: Box<RawValue>,
    /// [`JobOptions`] as JSON text.
    pub options: String,
    pub job_options: JobOptions,
    pub priority: i64,
    pub max_retries: i64,
    /// Relative delay in ms (the database adds it to its clock).
    pub delay_ms: Option<i64>,
    /// Absolute due time in epoch ms (`scheduledFor`); wins over `delay_ms`.
    pub scheduled_for: Option<i64>,
    pub deduplication_key: Option<String>,
}

/// What the database decided for an inserted row; the rest of the job is what was sent.
pub struct Inserted {
    pub id: Uuid,
    pub status: JobStatus,
    pub created_at: i64,
    pub scheduled_for: Option<i64>,
}

impl Insert {
    pub(super) fn job(&self, d: Inserted) -> Job {
        Job {
            id: self.id.hyphenated().to_string(),
            job_type: self.job_type.clone(),
            payload: self.payload.clone(),
            options: self.job_options.clone(),
            status: d.status,
            attempts: 0,
            created_at: d.created_at,
            scheduled_for: d.scheduled_for,
            started_at: None,
            completed_at: None,
            last_error: None,
            progress: None,
            result: None,
        }
    }
}

/// Enqueues made while one insert runs go together in the next (one statement, one commit).
pub(super) struct EnqueueReq {
    pub(super) rows: Vec<Insert>,
    pub(super) done: oneshot::Sender<Result<Vec<Job>>>,
}

impl DbQueue {
    /// Enqueue inside a caller's transaction: the statement to run on the caller's connection
    /// with its one parameter (JSON text). Its one row's `jobs` column is the jobs as JSON, in
    /// order; a rolled-back transaction leaves no job, a committed one wakes the workers.
    pub fn transactional_enqueue(&self, jobs: Vec<NewJob>) -> Result<(String, String)> {
        self.check_open()?;
        let rows = inserts(jobs)?;
        let param: Vec<serde_json::Value> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::json!({
                    "jid": r.id.hyphenated().to_string(),
                    "jtype": r.job_type,
                    "jpayload": r.payload.get(),
                    "joptions": r.options,
                    "jprio": r.priority,
                    "jretries": r.max_retries,
                    "jdelay": r.delay_ms,
                    "jsched": r.scheduled_for,
                    "jkey": r.deduplication_key,
                    "jord": i,
                })
            })
            .collect();
        let sql = self
            .inner
            .backend
            .tx_insert()
            .map(str::to_owned)
            .ok_or_else(|| {
                QueueError::invalid(format!(
                    "the tx option needs the postgres provider; this queue's provider is {}",
                    self.inner.backend.name()
                ))
            })?;
        Ok((sql, serde_json::Value::Array(param).to_string()))
    }
}

impl Inner {
    /// Insert `rows`; returns their jobs in order (for a deduplicated row, the unfinished job
    /// holding its key; if that job finished between the insert and the look-up, insert again).
    pub(super) async fn insert_all(&self, rows: &[&Insert]) -> Result<Vec<Job>> {
        let b = &self.backend;
        let mut by_id: HashMap<Uuid, Job> = HashMap::with_capacity(rows.len());
        let mut todo: Vec<&Insert> = rows.to_vec();
        let mut by_key: HashMap<String, Job> = HashMap::new();
        for _ in 0..3 {
            let sent: HashMap<Uuid, &Insert> = todo.iter().map(|r| (r.id, *r)).collect();
            for d in b.insert(&todo).await? {
                if let Some(r) = sent.get(&d.id) {
                    by_id.insert(d.id, r.job(d));
                }
            }
            let missing: Vec<&Insert> = todo
                .into_iter()
                .filter(|r| !by_id.contains_key(&r.id))
                .collect();
            let keys: Vec<String> = missing
                .iter()
                .filter_map(|r| r.deduplication_key.clone())
                .filter(|k| !by_key.contains_key(k))
                .collect();
            if !keys.is_empty() {
                for j in b.table().by_dedup_keys(&keys).await? {
                    if let Some(k) = j.options.deduplication_key.clone() {
                        by_key.insert(k, j);
                    }
                }
            }
            todo = missing
                .into_iter()
                .filter(|r| {
                    !r.deduplication_key
                        .as_ref()
                        .is_some_and(|k| by_key.contains_key(k))
                })
                .collect();
            if todo.is_empty() {
                break;
            }
        }
        if !todo.is_empty() {
            return Err(QueueError::Backend(format!(
                "{} job(s) were neither queued nor deduplicated (their deduplication keys kept changing hands); nothing else failed",
                todo.len()
            )));
        }
        self.shared.wake();
        rows.iter()
            .map(|r| {
                by_id
                    .remove(&r.id)
                    .or_else(|| {
                        r.deduplication_key
                            .as_ref()
                            .and_then(|k| by_key.get(k).cloned())
                    })
                    .ok_or_else(|| QueueError::Backend("the database lost a queued job".into()))
            })
            .collect()
    }
}

/// Inserts enqueues in batches, [`Jobs::enqueue_concurrency`] at once; when a merged batch fails,
/// each request is tried alone, so one caller's bad job fails only that caller.
pub(super) async fn enqueue_loop(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<EnqueueReq>) {
    let Some(width) = inner
        .upgrade()
        .map(|i| i.backend.enqueue_concurrency().max(1))
    else {
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(width));
    let mut running = tokio::task::JoinSet::new();
    while let Some(first) = rx.recv().await {
        // Wait for a free slot first: what arrives meanwhile joins this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let mut n = first.rows.len();
        let mut batch = vec![first];
        while n < ENQUEUE_BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.rows.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let Some(i) = inner.upgrade() else {
            for r in batch {
                let _ = r.done.send(Err(QueueError::Closed));
            }
            break;
        };
        running.spawn(async move {
            insert_batch(&i, batch).await;
            drop(slot);
        });
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

/// One batch of enqueues in one statement; when it fails, each request alone.
pub(super) async fn insert_batch(i: &Inner, batch: Vec<EnqueueReq>) {
    if batch.len() == 1 {
        for r in batch {
            let out = i.insert_all(&r.rows.iter().collect::<Vec<_>>()).await;
            let _ = r.done.send(out);
        }
        return;
    }
    let rows: Vec<&Insert> = batch.iter().flat_map(|r| r.rows.iter()).collect();
    let merged = i.insert_all(&rows).await;
    drop(rows);
    match merged {
        Ok(jobs) => {
            let mut jobs = jobs.into_iter();
            for r in batch {
                let mine: Vec<Job> = jobs.by_ref().take(r.rows.len()).collect();
                let _ = r.done.send(Ok(mine));
            }
        }
        Err(_) => {
            for r in batch {
                let out = i.insert_all(&r.rows.iter().collect::<Vec<_>>()).await;
                let _ = r.done.send(out);
            }
        }
    }
}

/// The rows to insert for `jobs`, ids made here.
pub(super) fn inserts(jobs: Vec<NewJob>) -> Result<Vec<Insert>> {
    jobs.into_iter()
        .map(|j| {
            let o = j.options.job_options();
            let options = serde_json::to_string(&o).map_err(|e| {
                QueueError::invalid(format!("job options are not serialisable: {e}"))
            })?;
            Ok(Insert {
                id: Uuid::now_v7(),
                job_type: j.job_type,
                payload: j.payload,
                options,
                job_options: o.clone(),
                priority: i64::from(o.priority),
                max_retries: i64::from(o.max_retries),
                delay_ms: j
                    .options
                    .delay
                    .filter(|&d| d > 0)
                    .map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
                scheduled_for: j.options.scheduled_for,
                deduplication_key: o.deduplication_key,
            })
        })
        .collect()
}
