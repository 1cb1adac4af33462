//! Four scheduler instances (each with its own connection pool, as separate processes would
//! have) on one database: every scheduled job and recurring occurrence is enqueued once.

mod scheduler_support;

use chaaskit_queue_core::config::SchedulerConfig;
use chaaskit_queue_core::job::now_ms;
use chaaskit_queue_core::scheduler::{RecurringInput, Scheduler, SchedulerTuning};
use chaaskit_queue_core::store;
use chaaskit_queue_core::{EnqueueOptions, SharedProvider};
use scheduler_support::{raw, Db, TestProvider};
use std::time::{Duration, Instant};

async fn four_instances(db: &Db) {
    let provider = TestProvider::new();
    let p: SharedProvider = provider.clone();
    let config = SchedulerConfig {
        enabled: true,
        poll_interval: 5,
        database_url: Some(db.url().to_owned()),
        auto_migrate: true,
        ..Default::default()
    };
    // Small batches, so the instances interleave many claims.
    let tuning = SchedulerTuning {
        batch_size: 37,
        ..Default::default()
    };
    let instances: Vec<Scheduler> = (0..4)
        .map(|_| {
            Scheduler::with_tuning(
                p.clone(),
                store::open(db.url()).unwrap(),
                config.clone(),
                tuning,
            )
        })
        .collect();
    let setup = &instances[0];
    setup.migrate().await.unwrap();
    let now = now_ms();
    for i in 0..1000 {
        let payload = raw(&format!(r#"{{"s":{i}}}"#));
        setup
            .schedule("s", &payload, now - 2000 + i, &EnqueueOptions::default())
            .await
            .unwrap();
    }
    for i in 0..50 {
        let name = format!("r{i:02}");
        let input = RecurringInput {
            name: name.clone(),
            job_type: "r".into(),
            payload: raw(&format!(r#"{{"r":{i}}}"#)),
            schedule: "every 1 day".into(),
            timezone: None,
            options: EnqueueOptions::default(),
        };
        setup.register_recurring(input).await.unwrap();
        db.set_next_run(&name, now - 1000 - i).await;
    }

    // All four start together (each migrates too, concurrently).
    let starts = instances.iter().map(|s| {
        let s = s.clone();
        async move { s.start().await }
    });
    for r in futures_join(starts).await {
        r.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while provider.enqueued().len() < 1050 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let them keep polling a little: nothing more may appear.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in &instances {
        s.stop().await;
    }

    let counts = provider.counts();
    let dups: usize = counts.values().map(|&n| n - 1).sum();
    let missed_s = (0..1000)
        .filter(|i| !counts.contains_key(&format!(r#"{{"s":{i}}}"#)))
        .count();
    let missed_r = (0..50)
        .filter(|i| !counts.contains_key(&format!(r#"{{"r":{i}}}"#)))
        .count();
    eprintln!(
        "4 instances: {} enqueued, {dups} duplicates, {missed_s}+{missed_r} missed",
        provider.enqueued().len()
    );
    assert_eq!(dups, 0, "duplicates");
    assert_eq!((missed_s, missed_r), (0, 0), "missed");
    assert_eq!(db.count_status("enqueued").await, 1000);
    let list = setup.list_recurring().await.unwrap();
    assert!(list
        .iter()
        .all(|r| r.next_run_at.unwrap() > now + 86_000_000 && r.last_run_at.is_some()));
}

/// Await futures concurrently (no extra crate).
async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut out = Vec::new();
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

on_both!(four_instances_enqueue_each_once, super::four_instances);
