//! The scheduler against real databases (PostgreSQL and SQLite): tables Prisma made, rows the
//! old scheduler wrote, every method, backlogs, enqueue failures and crashed claims.

mod scheduler_support;

use chaaskit_queue_core::job::now_ms;
use chaaskit_queue_core::provider::DelaySink;
use chaaskit_queue_core::schedule::Schedule;
use chaaskit_queue_core::scheduler::{RecurringInput, Scheduler, SchedulerTuning};
use chaaskit_queue_core::store;
use chaaskit_queue_core::{EnqueueOptions, Immediate, JobStatus, NewJob, SharedProvider};
use scheduler_support::{config, raw, Db, TestProvider, PRISMA_PG_DDL, PRISMA_SQLITE_DDL};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const HOUR: i64 = 3_600_000;

fn scheduler(db: &Db, provider: &Arc<TestProvider>, tuning: SchedulerTuning) -> Scheduler {
    scheduler_support::scheduler(db, provider, 60_000, tuning)
}

fn recurring(name: &str, job_type: &str, schedule: &str, tz: Option<&str>) -> RecurringInput {
    RecurringInput {
        name: name.into(),
        job_type: job_type.into(),
        payload: raw(&format!(r#"{{"name":"{name}"}}"#)),
        schedule: schedule.into(),
        timezone: tz.map(str::to_owned),
        options: EnqueueOptions::default(),
    }
}

/// Tables made by Prisma and rows written by the old scheduler are picked up as they are.
async fn prisma_tables_and_old_rows(db: &Db) {
    db.exec(if db.is_pg() {
        PRISMA_PG_DDL
    } else {
        PRISMA_SQLITE_DDL
    })
    .await;
    let now = now_ms();
    // As the old scheduler wrote them (createdAt left to the column default).
    let ins = r#"INSERT INTO "ScheduledJob" ("id", "type", "payload", "options", "status", "scheduledFor", "updatedAt")
        VALUES ($1, $2, $3, $4, $5, $6, $7)"#;
    for (id, ty, payload, options, status, at) in [
        (
            "0b8e3a52-0000-4000-8000-000000000001",
            "email:send",
            r#"{"to":"a@b.c"}"#,
            r#"{"maxRetries":5,"timeout":10000,"priority":2}"#,
            "scheduled",
            now - HOUR,
        ),
        (
            "0b8e3a52-0000-4000-8000-000000000002",
            "report:run",
            r#"{"id":1}"#,
            "{}",
            "scheduled",
            now - 1000,
        ),
        (
            "0b8e3a52-0000-4000-8000-000000000003",
            "later",
            "{}",
            "{}",
            "scheduled",
            now + HOUR,
        ),
        (
            "0b8e3a52-0000-4000-8000-000000000004",
            "cancelled",
            "{}",
            "{}",
            "cancelled",
            now - HOUR,
        ),
        (
            "0b8e3a52-0000-4000-8000-000000000005",
            "done",
            "{}",
            "{}",
            "enqueued",
            now - HOUR,
        ),
    ] {
        db.run(
            ins,
            &[
                Some(id),
                Some(ty),
                Some(payload),
                Some(options),
                Some(status),
            ],
            &[Some(at), Some(now - 2 * HOUR)],
        )
        .await;
    }
    let ins = r#"INSERT INTO "RecurringJob" ("id", "name", "type", "payload", "options", "schedule", "timezone",
        "nextRunAt", "lastRunAt", "updatedAt", "enabled") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#;
    let ins = ins.replace("$11)", if db.is_pg() { "true)" } else { "1)" });
    db.run(
        &ins,
        &[
            Some("r-1"),
            Some("hourly-cleanup"),
            Some("maintenance:cleanup"),
            Some("{}"),
            Some("{}"),
            Some("every 1 hour"),
            Some("UTC"),
        ],
        &[
            Some(now - 3 * HOUR),
            Some(now - 4 * HOUR),
            Some(now - 4 * HOUR),
        ],
    )
    .await;
    db.run(
        &ins,
        &[
            Some("r-2"),
            Some("daily-digest"),
            Some("email:digest"),
            Some(r#"{"digestType":"daily"}"#),
            Some(r#"{"maxRetries":1}"#),
            Some("0 9 * * *"),
            Some("America/New_York"),
        ],
        &[Some(now + HOUR), None, Some(now)],
    )
    .await;
    db.run(
        &ins.replace("true)", "false)").replace("1)", "0)"),
        &[
            Some("r-3"),
            Some("disabled"),
            Some("x"),
            Some("{}"),
            Some("{}"),
            Some("every 1 minute"),
            Some("UTC"),
        ],
        &[Some(now - HOUR), None, Some(now)],
    )
    .await;

    let provider = TestProvider::new();
    let s = scheduler(db, &provider, SchedulerTuning::default());
    s.migrate().await.expect("migrate over Prisma's tables");
    let out = s.poll_once().await.expect("poll");
    assert_eq!((out.scheduled, out.recurring, out.failed), (2, 1, 0));

    let log = provider.enqueued();
    let email = log
        .iter()
        .find(|e| e.job_type == "email:send")
        .expect("email enqueued");
    assert_eq!(email.payload, r#"{"to":"a@b.c"}"#);
    assert_eq!(
        (
            email.options.max_retries,
            email.options.timeout,
            email.options.priority
        ),
        (Some(5), Some(10_000), Some(2))
    );
    let report = log
        .iter()
        .find(|e| e.job_type == "report:run")
        .expect("report enqueued");
    assert_eq!(report.options, EnqueueOptions::default());
    // The memory queue holds them with the stored options.
    let got = provider.queue.try_receive(10);
    let email_job = got
        .iter()
        .find(|j| j.job.job_type == "email:send")
        .expect("in queue");
    assert_eq!(email_job.job.options.max_retries, 5);
    assert_eq!(email_job.job.options.priority, 2);

    let status = |id: &'static str| {
        let s = s.clone();
        async move { s.get_scheduled_job(id).await.unwrap().unwrap().status }
    };
    assert_eq!(
        status("0b8e3a52-0000-4000-8000-000000000001").await,
        "enqueued"
    );
    assert_eq!(
        status("0b8e3a52-0000-4000-8000-000000000003").await,
        "scheduled"
    );
    assert_eq!(
        status("0b8e3a52-0000-4000-8000-000000000004").await,
        "cancelled"
    );

    let list = s.list_recurring().await.unwrap();
    let names: Vec<_> = list.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["daily-digest", "disabled", "hourly-cleanup"]);
    let hourly = &list[2];
    // Three occurrences were missed: one catch-up run, then the next future occurrence.
    assert_eq!(
        provider
            .enqueued()
            .iter()
            .filter(|e| e.job_type == "maintenance:cleanup")
            .count(),
        1
    );
    let last = hourly.last_run_at.expect("lastRunAt set");
    assert!(last >= now && last <= now_ms());
    let next = hourly.next_run_at.expect("nextRunAt");
    assert!(
        next > now_ms() && next <= now + HOUR,
        "next run {next} vs now {now}"
    );
    assert_eq!(
        next,
        now - 3 * HOUR + 4 * HOUR,
        "intervals keep their phase"
    );
    assert!(hourly.last_error.is_none());
    assert!(!list[1].enabled);

    // Nothing more is due.
    assert_eq!(
        s.poll_once().await.unwrap().scheduled + provider.enqueued().len(),
        3
    );
}
on_both!(
    prisma_tables_and_old_rows_are_picked_up,
    super::prisma_tables_and_old_rows
);

async fn every_method(db: &Db) {
    let provider = TestProvider::new();
    let s = scheduler(db, &provider, SchedulerTuning::default());
    s.migrate().await.unwrap();
    s.migrate().await.expect("migrate is idempotent");
    let now = now_ms();

    // schedule / get / cancel
    let opts = EnqueueOptions {
        max_retries: Some(2),
        delay: Some(99),
        ..Default::default()
    };
    let row = s
        .schedule(
            "report:send",
            &raw(r#"{"reportId":"123"}"#),
            now + HOUR,
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(row.status, "scheduled");
    assert_eq!(row.options, r#"{"maxRetries":2}"#);
    assert_eq!(row.payload, r#"{"reportId":"123"}"#);
    assert_eq!(row.scheduled_for, now + HOUR);
    assert_eq!(
        s.get_scheduled_job(&row.id).await.unwrap().as_ref(),
        Some(&row)
    );
    assert!(s.cancel_scheduled_job(&row.id).await.unwrap());
    assert!(
        !s.cancel_scheduled_job(&row.id).await.unwrap(),
        "only a scheduled job is cancelled"
    );
    assert!(!s.cancel_scheduled_job("no-such-id").await.unwrap());
    assert_eq!(
        s.get_scheduled_job(&row.id).await.unwrap().unwrap().status,
        "cancelled"
    );
    let e = s
        .schedule("", &raw("{}"), now, &opts)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(e, "type must be a non-empty string, got \"\"");

    // A due job is enqueued, after which it can no longer be cancelled; a cancelled one never runs.
    let due = s
        .schedule("due:job", &raw(r#"{"n":1}"#), now - 10, &opts)
        .await
        .unwrap();
    let out = s.poll_once().await.unwrap();
    assert_eq!(out.scheduled, 1);
    assert!(!s.cancel_scheduled_job(&due.id).await.unwrap());
    assert_eq!(provider.enqueued().len(), 1);
    assert_eq!(provider.enqueued()[0].options.max_retries, Some(2));
    assert_eq!(provider.enqueued()[0].options.delay, None);

    // registerRecurring validation quotes the value.
    let err = |r: RecurringInput| {
        let s = s.clone();
        async move { s.register_recurring(r).await.unwrap_err().to_string() }
    };
    assert_eq!(
        err(recurring("bad", "t", "61 * * * *", None)).await,
        "invalid schedule \"61 * * * *\": minute field \"61\": number out of bounds (0-59)"
    );
    assert_eq!(
        err(recurring("bad", "t", "0 9 * * *", Some("Mars/Base"))).await,
        "unknown time zone \"Mars/Base\""
    );
    assert_eq!(
        err(recurring("bad", "t", "0 0 30 2 *", None)).await,
        "invalid schedule \"0 0 30 2 *\": day of month 30 never occurs in the months given"
    );
    // Valid in form, but the weekday nearest February 30 never comes.
    assert_eq!(
        err(recurring("bad", "t", "0 0 30W 2 *", None)).await,
        "invalid schedule \"0 0 30W 2 *\": it never matches a date"
    );
    assert_eq!(
        err(recurring("", "t", "every 1 hour", None)).await,
        "name must be a non-empty string, got \"\""
    );
    assert!(
        s.list_recurring().await.unwrap().is_empty(),
        "nothing stored on invalid input"
    );

    let before = now_ms();
    let b = s
        .register_recurring(recurring(
            "b-digest",
            "email:digest",
            "0 9 * * *",
            Some("America/New_York"),
        ))
        .await
        .unwrap();
    assert_eq!(b.timezone, "America/New_York");
    assert!(b.enabled);
    let expected = Schedule::parse("0 9 * * *", "America/New_York")
        .unwrap()
        .next_after(before)
        .unwrap();
    assert_eq!(b.next_run_at, Some(expected));
    let a = s
        .register_recurring(recurring(
            "a-cleanup",
            "maintenance:cleanup",
            "every 1 hour",
            None,
        ))
        .await
        .unwrap();
    assert_eq!(a.timezone, "UTC");
    let next = a.next_run_at.unwrap();
    assert!(next >= before + HOUR && next <= now_ms() + HOUR);
    let names: Vec<_> = s
        .list_recurring()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a-cleanup", "b-digest"]);

    // disable / re-register (upsert by name, re-enables, keeps id) / enable / delete
    assert!(s.disable_recurring("a-cleanup").await.unwrap());
    assert!(!s.disable_recurring("nope").await.unwrap());
    assert!(!s.list_recurring().await.unwrap()[0].enabled);
    let mut again = recurring("a-cleanup", "maintenance:vacuum", "every 2 hours", None);
    again.options = EnqueueOptions {
        priority: Some(3),
        ..Default::default()
    };
    let a2 = s.register_recurring(again).await.unwrap();
    assert_eq!(a2.id, a.id);
    assert_eq!(a2.created_at, a.created_at);
    assert!(a2.enabled);
    assert_eq!(a2.job_type, "maintenance:vacuum");
    assert_eq!(a2.schedule, "every 2 hours");
    assert_eq!(a2.options, r#"{"priority":3}"#);
    assert!(a2.next_run_at.unwrap() >= before + 2 * HOUR);
    assert_eq!(s.list_recurring().await.unwrap().len(), 2);

    assert!(s.disable_recurring("b-digest").await.unwrap());
    db.set_next_run("b-digest", now - 5 * HOUR).await;
    assert_eq!(
        s.poll_once().await.unwrap().recurring,
        0,
        "a disabled job does not run"
    );
    assert!(s.enable_recurring("b-digest").await.unwrap());
    let b2 = s
        .list_recurring()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == "b-digest")
        .unwrap();
    assert!(b2.enabled);
    assert!(
        b2.next_run_at.unwrap() > now_ms(),
        "enable recomputes nextRunAt"
    );
    assert_eq!(s.poll_once().await.unwrap().recurring, 0);
    assert!(!s.enable_recurring("nope").await.unwrap());

    assert!(s.delete_recurring("b-digest").await.unwrap());
    assert!(!s.delete_recurring("b-digest").await.unwrap());
    let names: Vec<_> = s
        .list_recurring()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a-cleanup"]);
}
on_both!(every_method_works, super::every_method);

/// A backlog drains in one poll; failed enqueues keep the row scheduled with its error.
async fn backlog_and_failures(db: &Db) {
    let provider = TestProvider::new();
    let s = scheduler(
        db,
        &provider,
        SchedulerTuning {
            batch_size: 500,
            ..Default::default()
        },
    );
    s.migrate().await.unwrap();
    let now = now_ms();
    let mut ids = Vec::new();
    for i in 0..1200 {
        let row = s
            .schedule(
                "bulk",
                &raw(&format!(r#"{{"i":{i}}}"#)),
                now - 2000 + i, // all 1,200 already due
                &EnqueueOptions::default(),
            )
            .await
            .unwrap();
        ids.push(row.id);
    }

    provider.failing.store(true, Ordering::SeqCst);
    let out = s.poll_once().await.unwrap();
    assert_eq!(
        (out.scheduled, out.failed),
        (0, 500),
        "a wholly failed batch ends the poll"
    );
    let first = s.get_scheduled_job(&ids[0]).await.unwrap().unwrap();
    assert_eq!(first.status, "scheduled");
    assert_eq!(first.error.as_deref(), Some("test provider is failing"));
    assert_eq!(db.count_status("scheduled").await, 1200);

    provider.failing.store(false, Ordering::SeqCst);
    let out = s.poll_once().await.unwrap();
    assert_eq!(
        (out.scheduled, out.failed),
        (1200, 0),
        "the whole backlog in one poll"
    );
    let counts = provider.counts();
    assert_eq!(counts.len(), 1200);
    assert!(counts.values().all(|&n| n == 1));
    let first = s.get_scheduled_job(&ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (first.status.as_str(), first.error.as_deref()),
        ("enqueued", None)
    );
    assert_eq!(db.count_status("enqueued").await, 1200);

    // Recurring: a failed enqueue keeps the occurrence due and records lastError.
    let r = s
        .register_recurring(recurring("rec", "rec:job", "every 1 hour", None))
        .await
        .unwrap();
    let occurrence = now - 10;
    db.set_next_run("rec", occurrence).await;
    provider.failing.store(true, Ordering::SeqCst);
    let out = s.poll_once().await.unwrap();
    assert_eq!((out.recurring, out.failed), (0, 1));
    let row = s.list_recurring().await.unwrap().remove(0);
    assert_eq!(row.last_error.as_deref(), Some("test provider is failing"));
    assert_eq!(row.next_run_at, Some(occurrence));
    assert_eq!(row.last_run_at, None);
    // Re-registering clears lastError.
    let again = s
        .register_recurring(recurring("rec", "rec:job", "every 1 hour", None))
        .await
        .unwrap();
    assert_eq!(
        (again.id.as_str(), again.last_error.as_deref()),
        (r.id.as_str(), None)
    );
    db.set_next_run("rec", occurrence).await;
    let out = s.poll_once().await.unwrap();
    assert_eq!(out.failed, 1);
    provider.failing.store(false, Ordering::SeqCst);
    let out = s.poll_once().await.unwrap();
    assert_eq!((out.recurring, out.failed), (1, 0));
    let row = s.list_recurring().await.unwrap().remove(0);
    assert_eq!(row.last_error, None);
    assert!(row.last_run_at.is_some());
    assert!(row.next_run_at.unwrap() > now_ms());
    assert_eq!(
        provider
            .enqueued()
            .iter()
            .filter(|e| e.job_type == "rec:job")
            .count(),
        1
    );
}
on_both!(
    backlog_drains_and_failures_retry,
    super::backlog_and_failures
);

/// A scheduler that died between claim and enqueue loses nothing: the lease runs out and
/// another instance enqueues the row, once.
async fn crashed_claims_come_back(db: &Db) {
    let provider = TestProvider::new();
    let lease = Duration::from_millis(400);
    let s = scheduler(
        db,
        &provider,
        SchedulerTuning {
            lease,
            ..Default::default()
        },
    );
    s.migrate().await.unwrap();
    let now = now_ms();
    let row = s
        .schedule(
            "crash",
            &raw(r#"{"c":1}"#),
            now - 5,
            &EnqueueOptions::default(),
        )
        .await
        .unwrap();
    s.register_recurring(recurring("crash-rec", "crash:rec", "every 1 day", None))
        .await
        .unwrap();
    db.set_next_run("crash-rec", now - 5).await;

    // The "crashed" instance claims both and vanishes.
    let dead = store::open(db.url()).unwrap();
    assert_eq!(dead.claim_scheduled(lease, 10).await.unwrap().rows.len(), 1);
    assert_eq!(dead.claim_recurring(lease, 10).await.unwrap().rows.len(), 1);
    assert_eq!(
        s.get_scheduled_job(&row.id).await.unwrap().unwrap().status,
        "scheduled",
        "enqueuing is shown as scheduled"
    );
    assert!(
        !s.cancel_scheduled_job(&row.id).await.unwrap(),
        "a claimed job cannot be cancelled"
    );

    let out = s.poll_once().await.unwrap();
    assert_eq!((out.scheduled, out.recurring), (0, 0), "the lease holds");
    tokio::time::sleep(lease + Duration::from_millis(150)).await;
    let out = s.poll_once().await.unwrap();
    assert_eq!((out.scheduled, out.recurring), (1, 1));
    assert_eq!(s.poll_once().await.unwrap().scheduled, 0);
    assert_eq!(provider.enqueued().len(), 2);
    assert_eq!(
        s.get_scheduled_job(&row.id).await.unwrap().unwrap().status,
        "enqueued"
    );
}
on_both!(
    crashed_claims_are_recovered,
    super::crashed_claims_come_back
);

async fn wait_for(provider: &TestProvider, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while provider.enqueued().len() < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// start() polls at once and then on its interval, and takes long delays from the provider.
async fn start_stop_and_delay_sink(db: &Db) {
    let provider = TestProvider::new();
    let p: SharedProvider = provider.clone();
    // A long interval: the first poll can only be the one start() makes at once.
    let first = Scheduler::open(p.clone(), config(db, 60_000)).unwrap();
    first.migrate().await.unwrap();
    first
        .schedule("early", &raw("1"), now_ms() - 1, &EnqueueOptions::default())
        .await
        .unwrap();
    first.start().await.unwrap();
    assert!(first.is_running());
    first.start().await.expect("second start is a no-op");
    assert!(
        provider.sink_set.load(Ordering::SeqCst),
        "delay sink registered"
    );
    wait_for(&provider, 1).await;
    assert_eq!(provider.enqueued().len(), 1, "polled at once");
    first.stop().await;
    assert!(
        !provider.sink_set.load(Ordering::SeqCst),
        "delay sink removed"
    );

    // A short interval: a job handed over by the provider runs on a later poll.
    let s = Scheduler::open(p, config(db, 50)).unwrap();
    s.start().await.unwrap();
    let at = now_ms() + 150;
    let job = s
        .schedule_at(
            NewJob::new(
                "late",
                raw(r#"{"l":1}"#),
                EnqueueOptions {
                    priority: Some(4),
                    ..Default::default()
                },
            ),
            at,
        )
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Scheduled);
    assert_eq!(job.scheduled_for, Some(at));
    assert_eq!(job.options.priority, 4);
    let row = s
        .get_scheduled_job(&job.id)
        .await
        .unwrap()
        .expect("row stored");
    assert_eq!(row.scheduled_for, at);
    wait_for(&provider, 2).await;
    let log = provider.enqueued();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[1].job_type.as_str(), log[1].options.priority),
        ("late", Some(4))
    );
    assert!(now_ms() >= at);

    s.stop().await;
    assert!(!s.is_running());
    assert!(
        !provider.sink_set.load(Ordering::SeqCst),
        "delay sink removed"
    );
    s.schedule(
        "after-stop",
        &raw("2"),
        now_ms() - 1,
        &EnqueueOptions::default(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(provider.enqueued().len(), 2, "no polls after stop");
}
on_both!(
    start_stop_and_delay_sink_work,
    super::start_stop_and_delay_sink
);

/// Enqueued and cancelled one-time rows go once older than `scheduler.retention`; waiting and
/// younger rows stay.
async fn finished_rows_are_purged(db: &Db) {
    let provider = TestProvider::new();
    let s = scheduler(db, &provider, SchedulerTuning::default());
    s.migrate().await.unwrap();
    let now = now_ms();
    let o = EnqueueOptions::default();
    let sent = s.schedule("sent", &raw("{}"), now - 5, &o).await.unwrap();
    let gone = s
        .schedule("gone", &raw("{}"), now + HOUR, &o)
        .await
        .unwrap();
    let waits = s
        .schedule("waits", &raw("{}"), now + HOUR, &o)
        .await
        .unwrap();
    let young = s
        .schedule("young", &raw("{}"), now + HOUR, &o)
        .await
        .unwrap();
    assert_eq!(s.poll_once().await.unwrap().scheduled, 1);
    assert!(s.cancel_scheduled_job(&gone.id).await.unwrap());
    assert!(s.cancel_scheduled_job(&young.id).await.unwrap());
    // Age every row but the young one past the default retention (7 days).
    let aged = db
        .run(
            r#"UPDATE "ScheduledJob" SET "updatedAt" = $2 WHERE "id" <> $1"#,
            &[Some(&young.id)],
            &[Some(now - 8 * 24 * HOUR)],
        )
        .await;
    assert_eq!(aged, 3);
    assert_eq!(s.purge_finished().await.unwrap(), 2);
    assert!(s.get_scheduled_job(&sent.id).await.unwrap().is_none());
    assert!(s.get_scheduled_job(&gone.id).await.unwrap().is_none());
    assert!(s.get_scheduled_job(&waits.id).await.unwrap().is_some());
    assert!(s.get_scheduled_job(&young.id).await.unwrap().is_some());
}
on_both!(
    finished_scheduled_rows_are_purged,
    super::finished_rows_are_purged
);
