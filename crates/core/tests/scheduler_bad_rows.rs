//! Bad rows already in the tables (schedules or zones that do not parse, payloads that are
//! not JSON, columns that cannot be read) get their error recorded, the other rows still run,
//! and the poll task lives on; `is_running()` says whether it does.

mod scheduler_support;

use chaaskit_queue_core::job::now_ms;
use chaaskit_queue_core::scheduler::{Scheduler, SchedulerTuning};
use chaaskit_queue_core::store::RecurringJob;
use chaaskit_queue_core::EnqueueOptions;
use scheduler_support::{raw, Db, TestProvider};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn scheduler(db: &Db, provider: &Arc<TestProvider>, poll_ms: u64) -> Scheduler {
    scheduler_support::scheduler(db, provider, poll_ms, SchedulerTuning::default())
}

/// A due `RecurringJob` row, as another writer might have left it.
async fn insert_recurring(db: &Db, name: &str, payload: &str, schedule: &str, tz: &str) {
    let now = now_ms();
    let n = db
        .run(
            r#"INSERT INTO "RecurringJob" ("id", "name", "type", "payload", "options", "schedule", "timezone",
                "enabled", "nextRunAt", "updatedAt") VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $9)"#,
            &[
                Some(&format!("id-{name}")),
                Some(name),
                Some(&format!("{name}:job")),
                Some(payload),
                Some("{}"),
                Some(schedule),
                Some(tz),
            ],
            &[Some(now - 60_000), Some(now - 60_000)],
        )
        .await;
    assert_eq!(n, 1);
}

/// A due `ScheduledJob` row whose payload is the SQL expression `payload_sql`.
async fn insert_scheduled(db: &Db, id: &str, payload_sql: &str) {
    let now = now_ms();
    let sql = format!(
        r#"INSERT INTO "ScheduledJob" ("id", "type", "payload", "options", "status", "scheduledFor", "updatedAt")
        VALUES ($1, $2, {payload_sql}, $3, 'scheduled', $4, $5)"#
    );
    let n = db
        .run(
            &sql,
            &[Some(id), Some(&format!("{id}:job")), Some("{}")],
            &[Some(now - 60_000), Some(now - 60_000)],
        )
        .await;
    assert_eq!(n, 1);
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn by_name<'a>(rows: &'a [RecurringJob], name: &str) -> &'a RecurringJob {
    rows.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no recurring job {name}"))
}

async fn bad_rows_are_recorded(db: &Db) {
    let provider = TestProvider::new();
    let s = scheduler(db, &provider, 50);
    s.migrate().await.unwrap();
    insert_recurring(db, "multibyte", "{}", "ééé 9 * * *", "UTC").await;
    insert_recurring(db, "chinese", "{}", "每天 9 点 * *", "UTC").await;
    insert_recurring(db, "bad-zone", "{}", "0 9 * * *", "Mars/Base").await;
    insert_recurring(db, "bad-payload", "not json", "every 1 hour", "UTC").await;
    insert_recurring(db, "good", r#"{"g":1}"#, "every 1 hour", "UTC").await;
    insert_scheduled(db, "s-bad-payload", "'{not json'").await;
    insert_scheduled(db, "s-good", r#"'{"s":1}'"#).await;
    if !db.is_pg() {
        // SQLite keeps whatever it is given: a blob where text belongs cannot be read.
        insert_scheduled(db, "s-blob", "X'FF00FF'").await;
    }

    let started = now_ms();
    s.start().await.unwrap();
    wait_until("the good rows", async || provider.enqueued().len() >= 2).await;
    // Several more polls go by over the bad rows.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.is_running(), "the poll task is alive");

    let mut types: Vec<String> = provider
        .enqueued()
        .iter()
        .map(|e| e.job_type.clone())
        .collect();
    types.sort();
    assert_eq!(types, ["good:job", "s-good:job"], "only the good rows ran");

    let rows = s.list_recurring().await.unwrap();
    for name in ["multibyte", "chinese"] {
        let r = by_name(&rows, name);
        let err = r.last_error.as_deref().unwrap_or_default();
        assert!(err.starts_with("invalid schedule"), "{name}: {err:?}");
        assert_eq!(r.next_run_at, None, "{name} is set aside");
        assert_eq!(r.last_run_at, None, "{name} did not run");
    }
    let zone = by_name(&rows, "bad-zone");
    assert_eq!(
        zone.last_error.as_deref(),
        Some("unknown time zone \"Mars/Base\"")
    );
    assert_eq!(zone.next_run_at, None);
    let payload = by_name(&rows, "bad-payload");
    let err = payload.last_error.as_deref().unwrap_or_default();
    assert!(err.starts_with("stored payload is not JSON"), "{err:?}");
    assert_eq!(payload.last_run_at, None);
    assert!(
        payload.next_run_at.is_some_and(|t| t > started),
        "this run is skipped, the next one is kept: {:?}",
        payload.next_run_at
    );
    let good = by_name(&rows, "good");
    assert_eq!(good.last_error, None);
    assert!(good.last_run_at.is_some() && good.next_run_at.is_some_and(|t| t > started));

    let bad = s.get_scheduled_job("s-bad-payload").await.unwrap().unwrap();
    assert_eq!(bad.status, "cancelled", "it can never be enqueued");
    let err = bad.error.as_deref().unwrap_or_default();
    assert!(err.starts_with("stored payload is not JSON"), "{err:?}");
    let ok = s.get_scheduled_job("s-good").await.unwrap().unwrap();
    assert_eq!((ok.status.as_str(), ok.error), ("enqueued", None));
    if !db.is_pg() {
        assert_eq!(db.count_status("cancelled").await, 2);
        let error: Option<String> = db
            .scalar(
                r#"SELECT "error" FROM "ScheduledJob" WHERE "id" = $1"#,
                Some("s-blob"),
            )
            .await;
        let error = error.unwrap_or_default();
        assert!(error.starts_with("unreadable row: "), "{error:?}");
    }

    // Re-registering a set-aside job with a good schedule brings it back.
    s.register_recurring(chaaskit_queue_core::scheduler::RecurringInput {
        name: "multibyte".into(),
        job_type: "multibyte:job".into(),
        payload: raw("{}"),
        schedule: "every 1 minute".into(),
        timezone: None,
        options: EnqueueOptions::default(),
    })
    .await
    .unwrap();
    let back = by_name(&s.list_recurring().await.unwrap(), "multibyte").clone();
    assert_eq!(back.last_error, None);
    assert!(back.next_run_at.is_some());

    s.stop().await;
    assert!(!s.is_running());
}
on_both!(
    bad_rows_are_recorded_and_skipped,
    super::bad_rows_are_recorded
);

/// Even a panic in the middle of a poll (here: in the provider) ends only that poll.
async fn a_panicking_poll_does_not_end_polling(db: &Db) {
    let provider = TestProvider::new();
    let s = scheduler(db, &provider, 30);
    s.migrate().await.unwrap();
    let panicked = Arc::new(AtomicBool::new(false));
    {
        let panicked = panicked.clone();
        *provider.after_enqueue.lock().unwrap() = Some(Box::new(move || {
            if !panicked.swap(true, Ordering::SeqCst) {
                panic!("provider blew up");
            }
        }));
    }
    s.schedule(
        "first",
        &raw("1"),
        now_ms() - 10,
        &EnqueueOptions::default(),
    )
    .await
    .unwrap();
    s.start().await.unwrap();
    wait_until("the panic", async || panicked.load(Ordering::SeqCst)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(s.is_running(), "polling goes on after a panic");
    s.schedule(
        "second",
        &raw("2"),
        now_ms() - 10,
        &EnqueueOptions::default(),
    )
    .await
    .unwrap();
    wait_until("the second job", async || {
        provider.enqueued().iter().any(|e| e.job_type == "second")
    })
    .await;
    s.stop().await;
}
on_both!(
    a_panic_in_a_poll_is_survived,
    super::a_panicking_poll_does_not_end_polling
);

/// When the poll task is gone for any reason (here: its runtime shut down), `is_running()`
/// says so.
#[test]
fn is_running_is_false_once_the_poll_task_is_gone() {
    let db = Db::lite();
    let provider = TestProvider::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(async {
        let s = scheduler(&db, &provider, 50);
        s.start().await.unwrap();
        s
    });
    assert!(s.is_running());
    rt.shutdown_timeout(Duration::from_secs(5));
    assert!(!s.is_running(), "the poll task ended with its runtime");
}
