//! The worker and its provider's signals: `cancelJob` of a running job aborts the attempt
//! (reason `Cancelled`), discards its outcome and frees the slot; on a durable provider a lease
//! reclaimed after it ran out reaches the worker as `stalled`.

use chaaskit_queue_core::config::{MemoryConfig, SqliteConfig, WorkerConfig};
use chaaskit_queue_core::durable::DbQueue;
use chaaskit_queue_core::job::{EnqueueOptions, Job, JobStatus, NewJob};
use chaaskit_queue_core::memory::MemoryQueue;
use chaaskit_queue_core::worker::{AbortReason, Dispatch, HandlerRuntime, Outcome, Worker};
use chaaskit_queue_core::{Immediate, QueueProvider, SharedProvider};
use serde_json::value::RawValue;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records what the worker asks; never completes a job by itself.
#[derive(Default)]
struct Recorder {
    started: Mutex<Vec<Dispatch>>,
    aborted: Mutex<Vec<(u64, AbortReason)>>,
    stalled: Mutex<Vec<Job>>,
}

impl HandlerRuntime for Recorder {
    fn start(&self, jobs: Vec<Dispatch>) {
        self.started.lock().unwrap().extend(jobs);
    }
    fn abort(&self, tokens: Vec<u64>, reason: AbortReason) {
        self.aborted
            .lock()
            .unwrap()
            .extend(tokens.into_iter().map(|t| (t, reason)));
    }
    fn stalled(&self, job: Job) {
        self.stalled.lock().unwrap().push(job);
    }
}

fn job(t: &str, max_retries: u32) -> NewJob {
    NewJob {
        job_type: t.into(),
        payload: RawValue::from_string("{}".into()).unwrap(),
        options: EnqueueOptions {
            max_retries: Some(max_retries),
            ..Default::default()
        },
    }
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn worker(p: SharedProvider, rec: &Arc<Recorder>) -> Arc<Worker> {
    let config = WorkerConfig {
        concurrency: 1,
        poll_interval: 20,
        ..WorkerConfig::default()
    };
    Worker::new(p, config, rec.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_aborts_it_and_discards_its_outcome() {
    let q = MemoryQueue::new(MemoryConfig::default());
    let rec = Arc::new(Recorder::default());
    let w = worker(q.clone(), &rec);
    let run = tokio::spawn(w.run());
    let a = q.enqueue_now(job("a", 3)).unwrap();
    let b = q.enqueue_now(job("b", 0)).unwrap();
    until("a to start", || rec.started.lock().unwrap().len() == 1).await;
    let token = rec.started.lock().unwrap()[0].token;
    assert!(q.cancel_job_now(&a.id));
    until("the abort", || !rec.aborted.lock().unwrap().is_empty()).await;
    assert_eq!(
        rec.aborted.lock().unwrap().clone(),
        vec![(token, AbortReason::Cancelled)]
    );
    // b waits: the cancelled handler still holds the only slot until it returns.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(rec.started.lock().unwrap().len(), 1);
    // The handler fails late: discarded (not counted, not retried), and b starts.
    let next = w.complete(vec![Outcome {
        token,
        error: Some("aborted".into()),
        result: None,
    }]);
    let started_b = !next.is_empty() || rec.started.lock().unwrap().len() == 2;
    if !started_b {
        until("b to start", || rec.started.lock().unwrap().len() == 2).await;
    }
    let got = q.get_job_now(&a.id).unwrap();
    assert_eq!(got.status, JobStatus::Cancelled);
    assert_eq!(got.attempts, 1);
    assert_eq!(got.last_error, None);
    let s = w.stats();
    assert_eq!((s.processed, s.succeeded, s.failed), (0, 0, 0));
    assert_eq!(w.cancel(&b.id), 1, "a direct cancel aborts b's attempt");
    w.stop().await;
    run.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaimed_lease_reaches_the_worker_as_stalled() {
    let dir = std::env::temp_dir().join(format!("chaaskit-stalled-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("q.db").display());
    let config = SqliteConfig {
        database_url: url,
        visibility_timeout: 1,
        ..SqliteConfig::default()
    };
    // A claims the job and goes away without settling it (a crash: its heartbeat stops).
    let a = DbQueue::connect_sqlite(config.clone()).await.unwrap();
    let j = a.enqueue(job("x", 0)).await.unwrap();
    assert_eq!(a.receive(1, Duration::ZERO).await.unwrap().len(), 1);
    a.close().await.unwrap();
    let b = DbQueue::connect_sqlite(config).await.unwrap();
    let rec = Arc::new(Recorder::default());
    let w = worker(b.clone(), &rec);
    let run = tokio::spawn(w.run());
    until("stalled", || !rec.stalled.lock().unwrap().is_empty()).await;
    let s = rec.stalled.lock().unwrap()[0].clone();
    assert_eq!(s.id, j.id);
    assert_eq!(s.status, JobStatus::Dead, "no retries left");
    assert!(rec.started.lock().unwrap().is_empty());
    w.stop().await;
    run.await.unwrap();
    b.close().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
