//! The durable providers (`postgres`, `sqlite`) against the memory provider's contract, plus
//! what only they promise: leases that expire and renew, wake-ups, retention, the claim plan.

use chaaskit_queue_core::config::{PostgresConfig, RetentionConfig, SqliteConfig};
use chaaskit_queue_core::durable::{PostgresQueue, SqliteQueue};
use chaaskit_queue_core::job::raw_json;
use chaaskit_queue_core::provider::QueueProvider;
use chaaskit_queue_core::{EnqueueOptions, JobStatus, NewJob, QueueError};
use sqlx::{Connection, Executor, PgConnection, Row};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of its own on the test database, dropped at the end; `None` (loudly) when
/// PostgreSQL is not running, a failure under `CI=true`.
struct PgSchema(String);

impl PgSchema {
    async fn new() -> Option<PgSchema> {
        if let Err(e) = PgConnection::connect(PG_URL).await {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL at {PG_URL} is required in CI: {e}");
            }
            eprintln!("SKIPPED: PostgreSQL not reachable at {PG_URL}: {e}");
            return None;
        }
        Some(PgSchema(format!(
            "q_{}",
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..12)
                .unwrap_or("x")
        )))
    }

    fn config(&self, visibility_timeout: u32) -> PostgresConfig {
        PostgresConfig {
            database_url: Some(PG_URL.into()),
            schema: Some(self.0.clone()),
            visibility_timeout,
            ..Default::default()
        }
    }

    async fn open(&self, visibility_timeout: u32) -> Arc<PostgresQueue> {
        PostgresQueue::connect_postgres(self.config(visibility_timeout))
            .await
            .unwrap()
    }

    async fn exec(&self, sql: &str) {
        let mut c = PgConnection::connect(PG_URL).await.unwrap();
        c.execute(sql).await.unwrap();
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut c) = PgConnection::connect(PG_URL).await {
                        let _ = c.execute(sql.as_str()).await;
                    }
                });
            }
        })
        .join();
    }
}

/// An SQLite file in a temp directory of its own.
struct LiteFile(std::path::PathBuf);

impl LiteFile {
    fn new() -> LiteFile {
        let dir = std::env::temp_dir().join(format!("chaaskit-q-{}", uuid::Uuid::new_v4()));
        LiteFile(dir)
    }
    fn config(&self, visibility_timeout: u32) -> SqliteConfig {
        SqliteConfig {
            database_url: format!("sqlite:{}", self.0.join("sub/queue.db").display()),
            visibility_timeout,
            ..Default::default()
        }
    }
    async fn open(&self, visibility_timeout: u32) -> Arc<SqliteQueue> {
        SqliteQueue::connect_sqlite(self.config(visibility_timeout))
            .await
            .unwrap()
    }
}

impl Drop for LiteFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn job(t: &str, o: EnqueueOptions) -> NewJob {
    NewJob::new(t, raw_json(r#"{"n":1}"#).unwrap(), o)
}

fn prio(n: u32) -> EnqueueOptions {
    EnqueueOptions {
        priority: Some(n),
        ..Default::default()
    }
}

/// Run a contract case against PostgreSQL and SQLite, with two providers on one queue.
macro_rules! contract {
    ($name:ident, $vt:expr, |$a:ident, $b:ident| $body:block) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(s) = PgSchema::new().await else { return };
                let $a: Arc<dyn QueueProvider> = s.open($vt).await;
                let $b: Arc<dyn QueueProvider> = s.open($vt).await;
                $body
                $a.close().await.unwrap();
                $b.close().await.unwrap();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = LiteFile::new();
                let $a: Arc<dyn QueueProvider> = f.open($vt).await;
                let $b: Arc<dyn QueueProvider> = f.open($vt).await;
                $body
                $a.close().await.unwrap();
                $b.close().await.unwrap();
            }
        }
    };
}

const NOW: Duration = Duration::ZERO;

contract!(priority_then_fifo, 30, |q, _b| {
    let a = q.enqueue(job("a", prio(5))).await.unwrap();
    let b = q.enqueue(job("b", prio(1))).await.unwrap();
    let c = q.enqueue(job("c", prio(5))).await.unwrap();
    assert_eq!(a.status, JobStatus::Pending);
    assert_eq!(a.options.priority, 5);
    let got: Vec<String> = q
        .receive(10, NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.job.id)
        .collect();
    assert_eq!(got, vec![b.id, a.id, c.id]);
});

contract!(
    receive_counts_attempts_and_ack_stores_result,
    30,
    |q, _b| {
        let j = q.enqueue(job("a", Default::default())).await.unwrap();
        let r = q.receive(1, NOW).await.unwrap().pop().unwrap();
        assert_eq!(r.job.id, j.id);
        assert_eq!(r.job.attempts, 1);
        assert_eq!(r.job.status, JobStatus::Processing);
        assert!(r.job.started_at.is_some());
        assert_eq!(r.job.payload.get(), r#"{"n":1}"#);
        q.set_progress(&r.receipt_handle, 40.0).await.unwrap();
        q.acknowledge(&r.receipt_handle, Some(raw_json(r#"{"ok":true}"#).unwrap()))
            .await
            .unwrap();
        let done = q.get_job(&j.id).await.unwrap().unwrap();
        assert_eq!(done.status, JobStatus::Completed);
        assert_eq!(done.progress, Some(40.0));
        assert_eq!(
            done.result.unwrap().get(),
            r#"{"ok": true}"#.replace(' ', "")
        );
        assert!(done.completed_at.unwrap() >= done.started_at.unwrap());
        // The attempt is over: its receipt settles nothing more.
        assert!(matches!(
            q.acknowledge(&r.receipt_handle, None).await,
            Err(QueueError::UnknownReceipt(_))
        ));
        assert!(matches!(
            q.fail("not-a-receipt", "x").await,
            Err(QueueError::UnknownReceipt(_))
        ));
        assert!(q.get_job("nope").await.unwrap().is_none());
        assert!(q
            .get_job(&uuid::Uuid::new_v4().to_string())
            .await
            .unwrap()
            .is_none());
    }
);

contract!(delay_and_scheduled_for, 30, |q, other| {
    let d = q
        .enqueue(job(
            "a",
            EnqueueOptions {
                delay: Some(300),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(d.status, JobStatus::Scheduled);
    assert!(d.scheduled_for.is_some());
    let past = q
        .enqueue(job(
            "b",
            EnqueueOptions {
                scheduled_for: Some(1_000),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(past.status, JobStatus::Pending);
    let far = q
        .enqueue(job(
            "c",
            EnqueueOptions {
                scheduled_for: Some(chaaskit_queue_core::job::now_ms() + 3_600_000),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(far.status, JobStatus::Scheduled);
    assert_eq!(q.stats().await.unwrap().scheduled, 2);
    let first = q.receive(10, NOW).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].job.id, past.id);
    // A receiver on another provider sleeps until the delayed job is due.
    let t = Instant::now();
    let got = other.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job.id, d.id);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
});

// A receiver that saw the queue run dry skips the next look until something changes: what
// another provider queues, releases or fails must still reach it at once, not at the fallback
// poll (2 s on PostgreSQL).
contract!(
    a_receiver_that_saw_no_more_jobs_still_hears_of_new_ones,
    30,
    |q, other| {
        let a = q.enqueue(job("a", Default::default())).await.unwrap();
        let got = q.receive(5, NOW).await.unwrap();
        assert_eq!(got.len(), 1, "a short claim");
        assert_eq!(got[0].job.id, a.id);
        assert!(q.receive(5, NOW).await.unwrap().is_empty());
        // Queued elsewhere while this receiver waits.
        let waiting = {
            let q = q.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                (
                    q.receive(5, Duration::from_secs(5)).await.unwrap(),
                    t.elapsed(),
                )
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let b = other.enqueue(job("b", Default::default())).await.unwrap();
        let (got_b, took) = waiting.await.unwrap();
        assert_eq!(got_b.len(), 1);
        assert_eq!(got_b[0].job.id, b.id);
        assert!(took < Duration::from_secs(1), "{took:?}");
        // Released elsewhere after this receiver came back empty-handed.
        let c = other.enqueue(job("c", Default::default())).await.unwrap();
        let held = other.receive(5, NOW).await.unwrap();
        assert_eq!(held.len(), 1);
        assert!(q.receive(5, NOW).await.unwrap().is_empty());
        other.release(&held[0].receipt_handle).await.unwrap();
        let t = Instant::now();
        let got = q.receive(5, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].job.id, c.id);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        for r in [&got[0], &got_b[0]] {
            q.acknowledge(&r.receipt_handle, None).await.unwrap();
        }
    }
);

contract!(dedup_returns_existing_until_finished, 30, |q, other| {
    let d = || EnqueueOptions {
        deduplication_key: Some("k".into()),
        ..Default::default()
    };
    let a = q.enqueue(job("a", d())).await.unwrap();
    let b = other.enqueue(job("a", d())).await.unwrap();
    assert_eq!(a.id, b.id);
    let bulk = q
        .enqueue_bulk(vec![job("x", Default::default()), job("a", d())])
        .await
        .unwrap();
    assert_eq!(bulk[1].id, a.id);
    assert_ne!(bulk[0].id, a.id);
    let r = q.receive(1, NOW).await.unwrap().pop().unwrap();
    assert_eq!(r.job.id, a.id);
    q.acknowledge(&r.receipt_handle, None).await.unwrap();
    let c = q.enqueue(job("a", d())).await.unwrap();
    assert_ne!(a.id, c.id);
    assert_eq!(
        q.get_job(&a.id)
            .await
            .unwrap()
            .unwrap()
            .options
            .deduplication_key
            .as_deref(),
        Some("k")
    );
    // Two keys repeated inside one bulk: each first item wins.
    let e = q
        .enqueue_bulk(vec![
            job("a", d()),
            job(
                "b",
                EnqueueOptions {
                    deduplication_key: Some("m".into()),
                    ..Default::default()
                },
            ),
            job("a", d()),
        ])
        .await
        .unwrap();
    assert_eq!(e[0].id, c.id);
    assert_eq!(e[2].id, c.id);
    assert_ne!(e[1].id, c.id);
});

contract!(fail_backs_off_then_dies, 30, |q, _b| {
    let o = EnqueueOptions {
        max_retries: Some(1),
        ..Default::default()
    };
    let j = q.enqueue(job("a", o)).await.unwrap();
    let r = q.receive(1, NOW).await.unwrap().pop().unwrap();
    q.fail(&r.receipt_handle, "boom").await.unwrap();
    let s = q.get_job(&j.id).await.unwrap().unwrap();
    assert_eq!(s.status, JobStatus::Failed);
    assert_eq!(s.last_error.as_deref(), Some("boom"));
    assert_eq!(q.stats().await.unwrap().failed, 1);
    assert!(
        q.receive(1, NOW).await.unwrap().is_empty(),
        "backoff hides the job"
    );
    assert!(matches!(
        q.fail(&r.receipt_handle, "x").await,
        Err(QueueError::UnknownReceipt(_))
    ));
    // Backoff after attempt 1: 2 s.
    let t = Instant::now();
    let r2 = q
        .receive(1, Duration::from_secs(5))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    assert!(waited < Duration::from_millis(3500), "{waited:?}");
    assert_eq!(r2.job.attempts, 2);
    q.fail(&r2.receipt_handle, "again").await.unwrap();
    let dead = q.get_job(&j.id).await.unwrap().unwrap();
    assert_eq!(dead.status, JobStatus::Dead);
    assert!(dead.completed_at.is_some());
    assert_eq!(q.stats().await.unwrap().dead, 1);
});

contract!(
    release_is_visible_at_once_without_an_attempt,
    30,
    |q, other| {
        let j = q.enqueue(job("a", Default::default())).await.unwrap();
        let r = q.receive(1, NOW).await.unwrap().pop().unwrap();
        let waiting = {
            let other = other.clone();
            tokio::spawn(async move { other.receive(1, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        q.release(&r.receipt_handle).await.unwrap();
        let got = waiting.await.unwrap().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].job.id, j.id);
        assert_eq!(got[0].job.attempts, 1, "a released attempt does not count");
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        // The released receipt settles nothing, the new one does.
        assert!(q.acknowledge(&r.receipt_handle, None).await.is_err());
        other
            .acknowledge(&got[0].receipt_handle, None)
            .await
            .unwrap();
    }
);

contract!(bulk_keeps_order_and_stats_count, 30, |q, _b| {
    let jobs: Vec<NewJob> = (0..500)
        .map(|i| {
            NewJob::new(
                "bulk",
                raw_json(&format!("{{\"i\":{i}}}")).unwrap(),
                Default::default(),
            )
        })
        .collect();
    let out = q.enqueue_bulk(jobs).await.unwrap();
    assert_eq!(out.len(), 500);
    assert_eq!(out[7].payload.get(), r#"{"i":7}"#);
    let s = q.stats().await.unwrap();
    assert_eq!(s.pending, 500);
    let mut seen = Vec::new();
    loop {
        let got = q.receive(64, NOW).await.unwrap();
        if got.is_empty() {
            break;
        }
        for r in &got {
            seen.push(r.job.id.clone());
        }
    }
    let want: Vec<String> = out.into_iter().map(|j| j.id).collect();
    assert_eq!(seen, want, "first in, first out");
    assert_eq!(q.stats().await.unwrap().processing, 500);
    assert!(q.enqueue_bulk(Vec::new()).await.unwrap().is_empty());
});

// A large batch without deduplication keys goes in by COPY on PostgreSQL (an INSERT on SQLite):
// each job as enqueueBulk returns it is the job as stored, and as a one-job enqueue (an INSERT
// on both) of the same item stores it, down to escapes, due times and the database's clock.
contract!(a_large_bulk_is_stored_as_returned, 30, |q, _b| {
    let now = chaaskit_queue_core::job::now_ms();
    let item = |i: usize| {
        let o = EnqueueOptions {
            priority: Some(u32::try_from(i % 3).unwrap()),
            delay: i.is_multiple_of(5).then_some(60_000),
            scheduled_for: match i % 5 {
                1 => Some(now + 3_600_000),
                2 => Some(now - 1_000),
                _ => None,
            },
            max_retries: i.is_multiple_of(7).then_some(0),
            ..Default::default()
        };
        let payload = format!(
            "{{\n\t\"i\": {i}, \"s\": \"tab\\t nl\\n cr\\r back\\\\ quote\\\" \\u00e9 \\\\N\"}}"
        );
        let t = if i % 5 == 3 {
            "odd\ttype\\with\nescapes"
        } else {
            "bulk"
        };
        NewJob::new(t, raw_json(&payload).unwrap(), o)
    };
    let n = 100;
    let out = q.enqueue_bulk((0..n).map(item).collect()).await.unwrap();
    let one = q.enqueue_bulk(vec![item(n)]).await.unwrap().pop().unwrap();
    let one_alone = q.enqueue(item(0)).await.unwrap();
    assert_eq!(out.len(), n);
    let shown = |j: &chaaskit_queue_core::Job| {
        let mut v = serde_json::to_value(j).unwrap();
        v.as_object_mut().unwrap().remove("id");
        v
    };
    for (i, j) in out.iter().enumerate() {
        let stored = q.get_job(&j.id).await.unwrap().expect("stored");
        assert_eq!(
            shown(&stored),
            shown(j),
            "job {i} as returned and as stored"
        );
        let sent: serde_json::Value = serde_json::from_str(item(i).payload.get()).unwrap();
        let got: serde_json::Value = serde_json::from_str(j.payload.get()).unwrap();
        assert_eq!(got, sent, "job {i}'s payload");
        assert_eq!(j.job_type, item(i).job_type);
        assert_eq!(
            j.created_at, out[0].created_at,
            "one batch, one clock reading"
        );
        let (status, due) = match i % 5 {
            0 => (JobStatus::Scheduled, Some(j.created_at + 60_000)),
            1 => (JobStatus::Scheduled, Some(now + 3_600_000)),
            _ => (JobStatus::Pending, None),
        };
        assert_eq!((j.status, j.scheduled_for), (status, due), "job {i}");
        assert_eq!(j.options.max_retries, if i % 7 == 0 { 0 } else { 3 });
    }
    // The same item as a one-job enqueue: the same shape but for its clock reading.
    let delayed = |j: &chaaskit_queue_core::Job| j.scheduled_for.map(|at| at - j.created_at);
    assert_eq!(delayed(&one_alone), delayed(&out[0]));
    assert_eq!(one.status, out[n % 5].status);
    let mut a = shown(&one_alone);
    let mut b = shown(&out[0]);
    for v in [&mut a, &mut b] {
        let o = v.as_object_mut().unwrap();
        o.remove("createdAt");
        o.remove("scheduledFor");
    }
    assert_eq!(a, b);
    let s = q.stats().await.unwrap();
    assert_eq!((s.pending, s.scheduled), (60, 42));
    // Due ones come out by priority, then in order.
    let got = q.receive(100, NOW).await.unwrap();
    let ids: Vec<&str> = got.iter().map(|r| r.job.id.as_str()).collect();
    let mut want: Vec<(u32, usize, &str)> = out
        .iter()
        .chain([&one])
        .enumerate()
        .filter(|(_, j)| j.status == JobStatus::Pending)
        .map(|(i, j)| (j.options.priority, i, j.id.as_str()))
        .collect();
    want.sort();
    assert_eq!(ids, want.iter().map(|w| w.2).collect::<Vec<_>>());
});

contract!(close_ends_receivers_and_refuses_enqueues, 30, |q, _b| {
    let waiting = {
        let q = q.clone();
        tokio::spawn(async move { q.receive(1, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    q.close().await.unwrap();
    assert!(waiting.await.unwrap().unwrap().is_empty());
    assert!(matches!(
        q.enqueue(job("a", Default::default())).await,
        Err(QueueError::Closed)
    ));
});

contract!(
    a_dead_workers_job_runs_again_after_its_lease,
    1,
    |q, other| {
        let j = q.enqueue(job("a", Default::default())).await.unwrap();
        let r = q.receive(1, NOW).await.unwrap().pop().unwrap();
        // The holder goes away without settling (its heartbeat stops with it).
        q.close().await.unwrap();
        let t = Instant::now();
        let again = other
            .receive(1, Duration::from_secs(10))
            .await
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(again.job.id, j.id);
        assert_eq!(again.job.attempts, 2);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert_ne!(again.receipt_handle, r.receipt_handle);
        other
            .acknowledge(&again.receipt_handle, None)
            .await
            .unwrap();
    }
);

contract!(the_heartbeat_keeps_a_long_job_leased, 1, |q, other| {
    let j = q.enqueue(job("a", Default::default())).await.unwrap();
    let r = q.receive(1, NOW).await.unwrap().pop().unwrap();
    // Three lease lengths: without the heartbeat, `other` would take it.
    let got = other.receive(1, Duration::from_millis(3000)).await.unwrap();
    assert!(got.is_empty(), "a renewed lease is not reclaimed");
    q.acknowledge(&r.receipt_handle, None).await.unwrap();
    assert_eq!(
        q.get_job(&j.id).await.unwrap().unwrap().status,
        JobStatus::Completed
    );
});

contract!(
    an_idle_receiver_wakes_on_another_providers_enqueue,
    30,
    |q, other| {
        let waiting = {
            let other = other.clone();
            tokio::spawn(async move {
                let r = other.receive(1, Duration::from_secs(10)).await;
                (Instant::now(), r)
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = Instant::now();
        q.enqueue(job("a", Default::default())).await.unwrap();
        let (at, r) = waiting.await.unwrap();
        assert_eq!(r.unwrap().len(), 1);
        // PostgreSQL: NOTIFY (its fallback poll is 2 s); SQLite: its 100 ms poll.
        assert!(at - t < Duration::from_millis(400), "{:?}", at - t);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retention_purges_finished_jobs() {
    let Some(s) = PgSchema::new().await else {
        return;
    };
    let mut cfg = s.config(30);
    cfg.retention = RetentionConfig {
        completed: 0,
        dead: 3_600_000,
        cancelled: 0,
    };
    let q = PostgresQueue::connect_postgres(cfg).await.unwrap();
    let o = EnqueueOptions {
        max_retries: Some(0),
        ..Default::default()
    };
    let a = q.enqueue(job("a", Default::default())).await.unwrap();
    let d = q.enqueue(job("d", o)).await.unwrap();
    let c = q.enqueue(job("c", Default::default())).await.unwrap();
    assert!(q.cancel_job(&c.id).await.unwrap());
    for r in q.receive(2, NOW).await.unwrap() {
        if r.job.id == a.id {
            q.acknowledge(&r.receipt_handle, None).await.unwrap();
        } else {
            q.fail(&r.receipt_handle, "x").await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The background purge may have run first; between them the jobs are gone.
    assert!(q.purge_finished().await.unwrap() <= 2);
    assert!(q.get_job(&a.id).await.unwrap().is_none());
    assert!(
        q.get_job(&c.id).await.unwrap().is_none(),
        "cancelled jobs are purged"
    );
    assert_eq!(
        q.get_job(&d.id).await.unwrap().unwrap().status,
        JobStatus::Dead,
        "dead jobs are kept longer"
    );
    // A purge that deleted rows vacuums the table when the server's autovacuum is off (this
    // machine's is): the space of purged rows is reused and the table stays bounded.
    let mut c = PgConnection::connect(PG_URL).await.unwrap();
    let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let b = q.enqueue(job("b", Default::default())).await.unwrap();
    let r = q.receive(1, NOW).await.unwrap().pop().unwrap();
    assert_eq!(r.job.id, b.id);
    q.acknowledge(&r.receipt_handle, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(q.purge_finished().await.unwrap() <= 1);
    let vacuumed: bool = sqlx::query_scalar(
        "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'QueueJob'",
    )
    .bind(&s.0)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(vacuumed, autovacuum == "off", "autovacuum = {autovacuum}");
    q.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retention_purges_finished_jobs() {
    let f = LiteFile::new();
    let mut cfg = f.config(30);
    cfg.retention.completed = 0;
    cfg.retention.cancelled = 0;
    let q = SqliteQueue::connect_sqlite(cfg).await.unwrap();
    let a = q.enqueue(job("a", Default::default())).await.unwrap();
    let c = q.enqueue(job("c", Default::default())).await.unwrap();
    assert!(q.cancel_job(&c.id).await.unwrap());
    let r = q.receive(1, NOW).await.unwrap().pop().unwrap();
    q.acknowledge(&r.receipt_handle, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The background purge may have run first; between them the jobs are gone.
    assert!(q.purge_finished().await.unwrap() <= 2);
    assert!(q.get_job(&a.id).await.unwrap().is_none());
    assert!(
        q.get_job(&c.id).await.unwrap().is_none(),
        "cancelled jobs are purged"
    );
    q.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_migrate_once() {
    let Some(s) = PgSchema::new().await else {
        return;
    };
    let opens = (0..6).map(|_| PostgresQueue::connect_postgres(s.config(30)));
    let qs = futures_join(opens).await;
    for q in &qs {
        assert!(q.is_ok(), "{:?}", q.as_ref().err());
    }
    let f = LiteFile::new();
    let opens = (0..6).map(|_| SqliteQueue::connect_sqlite(f.config(30)));
    for q in futures_join(opens).await {
        assert!(q.is_ok(), "{:?}", q.err());
    }
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let hs: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in hs {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_database_that_is_down_is_named_without_its_password() {
    let cfg = PostgresConfig {
        database_url: Some("postgres://u:secret@127.0.0.1:1/db".into()),
        ..Default::default()
    };
    let e = PostgresQueue::connect_postgres(cfg)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("postgres://u:***@127.0.0.1:1/db"), "{e}");
    assert!(!e.contains("secret"), "{e}");
    let bad = PostgresConfig {
        database_url: Some("mysql://x".into()),
        ..Default::default()
    };
    let e = PostgresQueue::connect_postgres(bad)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("providerConfig.databaseUrl"), "{e}");
    let bad = SqliteConfig {
        database_url: "postgres://x".into(),
        ..Default::default()
    };
    let e = SqliteQueue::connect_sqlite(bad)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("providerConfig.databaseUrl"), "{e}");
}

/// The claim walks an index with 1M jobs queued: no sequential scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_claim_is_index_work_with_a_million_jobs() {
    let Some(s) = PgSchema::new().await else {
        return;
    };
    let q = s.open(30).await;
    let t = format!("\"{}\".\"QueueJob\"", s.0);
    s.exec(&format!(
        r#"INSERT INTO {t} ("id", "type", "payload", "options", "status", "priority", "maxRetries")
        SELECT gen_random_uuid(), 'bulk', '{{}}', '{{}}', CASE WHEN g % 10 = 0 THEN 'completed' ELSE 'pending' END, g % 3, 3
        FROM generate_series(1, 1000000) g; ANALYZE {t};"#
    ))
    .await;
    let mut c = PgConnection::connect(PG_URL).await.unwrap();
    let plan: Vec<String> = sqlx::query(&format!(
        r#"EXPLAIN SELECT "id" FROM {t}
        WHERE "status" IN ('pending', 'scheduled', 'failed') AND "runAt" <= now()
        ORDER BY "priority", "runAt", "seq" LIMIT 32 FOR UPDATE SKIP LOCKED"#
    ))
    .fetch_all(&mut c)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    let plan = plan.join("\n");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert!(plan.contains("QueueJob_claim_idx"), "{plan}");
    let t0 = Instant::now();
    let got = q.receive(32, NOW).await.unwrap();
    assert_eq!(got.len(), 32);
    assert!(got.iter().all(|r| r.job.attempts == 1));
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    q.close().await.unwrap();
}

/// Sequential scans of `table` so far, as the statistics have them (a backend reports its
/// counts within a second of going idle).
async fn seq_scans(table: &str) -> i64 {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut c = PgConnection::connect(PG_URL).await.unwrap();
    sqlx::query("SELECT seq_scan FROM pg_stat_user_tables WHERE relid = CAST($1 AS REGCLASS)")
        .bind(table)
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0)
}

/// Every statement of a worker's loop (claims, heartbeats, acknowledgements, failures, lease
/// reaping, retention) finds its rows through an index with 10k jobs queued, where the planner
/// once hash-joined a claim's 100 chosen rows against a scan of the whole table (twice the
/// time of the rest of the claim): the table's count of sequential scans does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_worker_statements_never_scan_the_table() {
    let Some(s) = PgSchema::new().await else {
        return;
    };
    // The table from a first provider, closed so that its connections (which scanned the
    // empty table, rightly) report their counts as they end; the jobs go in before the
    // provider under test starts, so its start-up statements are measured too.
    s.open(1).await.close().await.unwrap();
    let t = format!("\"{}\".\"QueueJob\"", s.0);
    s.exec(&format!(
        r#"ALTER TABLE {t} SET (autovacuum_enabled = false);
        INSERT INTO {t} ("id", "type", "payload", "options", "status", "priority", "maxRetries")
        SELECT gen_random_uuid(), 'bulk', '{{}}', '{{}}', CASE WHEN g % 10 = 0 THEN 'completed' ELSE 'pending' END, g % 3, 3
        FROM generate_series(1, 10000) g; ANALYZE {t};"#
    ))
    .await;
    let before = seq_scans(&t).await;
    let q = s.open(1).await;
    // More rounds than PostgreSQL's 5 custom plans before it may switch to a generic one.
    for round in 0..8 {
        let got = q.receive(100, NOW).await.unwrap();
        assert_eq!(got.len(), 100);
        if round == 0 {
            // Held past a few heartbeats (a third of the 1 s lease each).
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
        for (i, r) in got.iter().enumerate() {
            if i % 2 == 0 {
                q.acknowledge(&r.receipt_handle, None).await.unwrap();
            } else {
                q.fail(&r.receipt_handle, "x").await.unwrap();
            }
        }
    }
    // Closed first: its connections report their counts as they end.
    q.close().await.unwrap();
    assert_eq!(seq_scans(&t).await, before, "sequential scans of {t}");
}

/// Enqueue inside the caller's transaction: nothing after a rollback; after the commit the
/// jobs exist, in order, a deduplicated item names the existing job, and an idle receiver wakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_enqueue_inside_the_callers_transaction() {
    let Some(s) = PgSchema::new().await else {
        return;
    };
    let q = s.open(30).await;
    let existing = q
        .enqueue(job(
            "a",
            EnqueueOptions {
                deduplication_key: Some("k".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    // Running (so not visible), yet unfinished: it still holds its key.
    let held = q.receive(1, NOW).await.unwrap();
    assert_eq!(held.len(), 1);
    let jobs = || {
        vec![
            job("x", prio(2)),
            job(
                "y",
                EnqueueOptions {
                    deduplication_key: Some("k".into()),
                    ..Default::default()
                },
            ),
            job(
                "z",
                EnqueueOptions {
                    delay: Some(60_000),
                    ..Default::default()
                },
            ),
        ]
    };
    let mut c = PgConnection::connect(PG_URL).await.unwrap();
    let (sql, param) = q.transactional_enqueue(jobs()).unwrap();
    let mut tx = c.begin().await.unwrap();
    let text: String = sqlx::query_scalar(&sql)
        .bind(&param)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let rolled: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(rolled.len(), 3);
    assert!(q
        .get_job(rolled[0]["id"].as_str().unwrap())
        .await
        .unwrap()
        .is_none());
    let st = q.stats().await.unwrap();
    assert_eq!(
        (st.pending, st.scheduled),
        (0, 0),
        "a rollback leaves no job"
    );

    let waiting = {
        let q = q.clone();
        tokio::spawn(async move { q.receive(10, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (sql, param) = q.transactional_enqueue(jobs()).unwrap();
    let mut tx = c.begin().await.unwrap();
    let text: String = sqlx::query_scalar(&sql)
        .bind(&param)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "nothing is visible before the commit"
    );
    let t = Instant::now();
    tx.commit().await.unwrap();
    let got = waiting.await.unwrap().unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    let out: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(out[0]["type"], "x");
    assert_eq!(out[0]["status"], "pending");
    assert_eq!(out[1]["id"].as_str(), Some(existing.id.as_str()));
    assert_eq!(out[2]["status"], "scheduled");
    let ids: Vec<&str> = got.iter().map(|r| r.job.id.as_str()).collect();
    assert_eq!(ids, vec![out[0]["id"].as_str().unwrap()]);
    q.close().await.unwrap();
}

#[path = "scheduler_support/mod.rs"]
mod scheduler_support;

/// The database goes away mid-run and comes back: an enqueue meanwhile rejects (never claims
/// success), a lost completion makes its job run again after the lease, and the provider
/// reconnects by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_a_database_restart() {
    let Some(s) = PgSchema::new().await else {
        return;
    };
    // Create the schema directly, then go through a proxy that plays the restart.
    s.open(1).await.close().await.unwrap();
    let proxy = scheduler_support::PgProxy::start().await;
    let mut cfg = s.config(1);
    cfg.database_url = Some(proxy.url("test"));
    let q = PostgresQueue::connect_postgres(cfg).await.unwrap();
    let a = q.enqueue(job("a", Default::default())).await.unwrap();
    let r = q.receive(1, NOW).await.unwrap().pop().unwrap();
    proxy.stop();
    let t = Instant::now();
    assert!(q.enqueue(job("b", Default::default())).await.is_err());
    assert!(q.acknowledge(&r.receipt_handle, None).await.is_err());
    eprintln!("failing calls took {:?}", t.elapsed());
    proxy.restart().await;
    let c = q.enqueue(job("c", Default::default())).await.unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 2 && Instant::now() < deadline {
        for r in q.receive(10, Duration::from_secs(1)).await.unwrap() {
            got.push(r.job.id.clone());
            q.acknowledge(&r.receipt_handle, None).await.unwrap();
        }
    }
    got.sort();
    let mut want = vec![a.id.clone(), c.id.clone()];
    want.sort();
    assert_eq!(
        got, want,
        "the unacknowledged job ran again; the rejected one never existed"
    );
    let st = q.stats().await.unwrap();
    assert_eq!((st.completed, st.pending, st.processing), (2, 0, 0));
    q.close().await.unwrap();
    proxy.stop();
}

/// `validateQueueConfig` and the providers apply one rule to the URL: an uppercase scheme is
/// refused by both, with the same words.
#[tokio::test]
async fn an_uppercase_scheme_is_refused_as_validate_refuses_it() {
    let pg = PostgresQueue::connect_postgres(PostgresConfig {
        database_url: Some("POSTGRES://u:pw@127.0.0.1/db".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        pg.err().map(|e| e.to_string()).unwrap_or_default(),
        "providerConfig.databaseUrl must be a postgres:// or postgresql:// URL, got \"postgres://u:***@127.0.0.1/db\""
    );
    let lite = SqliteQueue::connect_sqlite(SqliteConfig {
        database_url: "SQLITE:q.db".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        lite.err().map(|e| e.to_string()).unwrap_or_default(),
        "providerConfig.databaseUrl must be a sqlite: URL, got \"SQLITE:q.db\""
    );
}
