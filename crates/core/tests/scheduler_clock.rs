//! Claims and leases follow the database's clock: a scheduler on a host whose clock runs
//! 6 minutes fast (past the 5-minute lease) does not take over another instance's live claims.

mod scheduler_support;

use chaaskit_queue_core::job::now_ms;
use chaaskit_queue_core::scheduler::{RecurringInput, Scheduler, SchedulerTuning, DEFAULT_LEASE};
use chaaskit_queue_core::store;
use chaaskit_queue_core::{EnqueueOptions, Millis};
use scheduler_support::{raw, Db, TestProvider};
use std::sync::Arc;
use std::time::Duration;

const SIX_MINUTES: Millis = 6 * 60_000;

/// This host's clock, 6 minutes fast.
fn fast_clock() -> Millis {
    now_ms() + SIX_MINUTES
}

fn scheduler(db: &Db, provider: &Arc<TestProvider>, tuning: SchedulerTuning) -> Scheduler {
    scheduler_support::scheduler(db, provider, 60_000, tuning)
}

async fn fast_host_leaves_live_claims_alone(db: &Db) {
    let provider = TestProvider::new();
    let fast = scheduler(
        db,
        &provider,
        SchedulerTuning {
            clock: fast_clock,
            ..Default::default()
        },
    );
    assert_eq!(SchedulerTuning::default().lease, DEFAULT_LEASE);
    assert!(
        DEFAULT_LEASE < Duration::from_millis(SIX_MINUTES as u64),
        "the skew is longer than the lease"
    );
    fast.migrate().await.unwrap();

    // The fast host's clock is really in use: rows it creates carry its dates.
    let before = now_ms();
    let row = fast
        .schedule(
            "claimed",
            &raw(r#"{"c":1}"#),
            before - 1000,
            &EnqueueOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        row.created_at >= before + SIX_MINUTES && row.created_at <= now_ms() + SIX_MINUTES,
        "createdAt {} is the fast host's time (now {before})",
        row.created_at
    );
    fast.register_recurring(RecurringInput {
        name: "claimed-rec".into(),
        job_type: "claimed:rec".into(),
        payload: raw("{}"),
        schedule: "every 1 day".into(),
        timezone: None,
        options: EnqueueOptions::default(),
    })
    .await
    .unwrap();
    db.set_next_run("claimed-rec", before - 1000).await;

    // Another, healthy instance claims both rows and is still enqueueing them.
    let live = store::open(db.url()).unwrap();
    let scheduled = live.claim_scheduled(DEFAULT_LEASE, 10).await.unwrap();
    assert_eq!(scheduled.rows.len(), 1);
    let claimed_at = scheduled.rows[0].updated_at;
    assert!(
        (claimed_at - now_ms()).abs() < 60_000,
        "the claim is stamped with the database's time, {claimed_at}"
    );
    let recurring = live.claim_recurring(DEFAULT_LEASE, 10).await.unwrap();
    assert_eq!(recurring.rows.len(), 1);
    let lease_until = recurring.rows[0].lease_until;
    assert_eq!(
        lease_until - recurring.rows[0].claimed_at,
        DEFAULT_LEASE.as_millis() as Millis
    );

    // By the fast host's clock both claims ran out a minute ago; by the database's they are live.
    assert!(fast_clock() > claimed_at + DEFAULT_LEASE.as_millis() as Millis);
    assert!(fast_clock() > lease_until);
    let out = fast.poll_once().await.unwrap();
    assert_eq!(
        (out.scheduled, out.recurring, out.failed),
        (0, 0, 0),
        "the fast host took over live claims"
    );
    assert!(provider.enqueued().is_empty());
    assert_eq!(db.count_status("enqueuing").await, 1);
    let rec = fast.list_recurring().await.unwrap().remove(0);
    assert_eq!(rec.next_run_at, Some(lease_until), "the lease is untouched");

    // The claims are real claims: the live instance finishes them, once.
    assert_eq!(
        live.mark_enqueued(std::slice::from_ref(&row.id), claimed_at)
            .await
            .unwrap(),
        1
    );
    assert_eq!(db.count_status("enqueued").await, 1);

    // A job due by the database's clock is enqueued by the fast host at once; one due only
    // by the fast host's clock waits for the database's.
    let due = fast
        .schedule(
            "due",
            &raw(r#"{"d":1}"#),
            now_ms() - 10,
            &EnqueueOptions::default(),
        )
        .await
        .unwrap();
    fast.schedule(
        "early",
        &raw(r#"{"e":1}"#),
        fast_clock(),
        &EnqueueOptions::default(),
    )
    .await
    .unwrap();
    let out = fast.poll_once().await.unwrap();
    assert_eq!((out.scheduled, out.recurring), (1, 0));
    let log = provider.enqueued();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].job_type, "due");
    assert_eq!(
        fast.get_scheduled_job(&due.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "enqueued"
    );
    assert_eq!(db.count_status("scheduled").await, 1, "the early one waits");
}
on_both!(
    a_fast_host_does_not_take_over_live_claims,
    super::fast_host_leaves_live_claims_alone
);

/// Once a claim's lease has run out by the database's clock, an instance with an accurate
/// clock and one with a fast clock agree: the row is taken over, once.
async fn expired_claims_are_taken_over(db: &Db) {
    let provider = TestProvider::new();
    let lease = Duration::from_millis(300);
    let fast = scheduler(
        db,
        &provider,
        SchedulerTuning {
            lease,
            clock: fast_clock,
            ..Default::default()
        },
    );
    fast.migrate().await.unwrap();
    fast.schedule("s", &raw("1"), now_ms() - 10, &EnqueueOptions::default())
        .await
        .unwrap();
    let dead = store::open(db.url()).unwrap();
    assert_eq!(dead.claim_scheduled(lease, 10).await.unwrap().rows.len(), 1);
    assert_eq!(fast.poll_once().await.unwrap().scheduled, 0, "still live");
    tokio::time::sleep(lease + Duration::from_millis(150)).await;
    assert_eq!(fast.poll_once().await.unwrap().scheduled, 1, "expired");
    assert_eq!(fast.poll_once().await.unwrap().scheduled, 0);
    assert_eq!(provider.enqueued().len(), 1);
}
on_both!(
    expired_claims_are_taken_over_once,
    super::expired_claims_are_taken_over
);
