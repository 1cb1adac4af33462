//! PostgreSQL going away under a running scheduler (a loopback proxy cut and restored):
//! polls fail with a logged error, the loop goes on, and once the database is back every job
//! is enqueued exactly once — including the batch the provider took just before the cut.

mod scheduler_support;

use chaaskit_queue_core::config::SchedulerConfig;
use chaaskit_queue_core::job::now_ms;
use chaaskit_queue_core::scheduler::Scheduler;
use chaaskit_queue_core::store;
use chaaskit_queue_core::{EnqueueOptions, SharedProvider};
use scheduler_support::{fresh_pg, raw, Db, PgProxy, TestProvider};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_loses_and_doubles_nothing() {
    let Some(pg) = fresh_pg().await else { return };
    let name = pg.name.clone();
    let db = Db::Pg(pg);
    let proxy = PgProxy::start().await;
    let provider = TestProvider::new();
    let p: SharedProvider = provider.clone();

    // Direct access for setup and checks; the scheduler goes through the proxy.
    let direct = Scheduler::new(
        p.clone(),
        store::open(db.url()).unwrap(),
        SchedulerConfig::default(),
    );
    direct.migrate().await.unwrap();
    let config = SchedulerConfig {
        enabled: true,
        poll_interval: 100,
        database_url: Some(proxy.url(&name)),
        auto_migrate: true,
        ..Default::default()
    };
    let s = Scheduler::open(p, config).unwrap();

    // The database "restarts" right after the provider took the first batch, before the
    // scheduler could record it.
    let cut = Arc::new(AtomicBool::new(false));
    {
        let proxy = proxy.clone();
        let cut = cut.clone();
        *provider.after_enqueue.lock().unwrap() = Some(Box::new(move || {
            if !cut.swap(true, Ordering::SeqCst) {
                proxy.stop();
            }
        }));
    }
    let now = now_ms();
    for i in 0..100 {
        direct
            .schedule(
                "a",
                &raw(&format!(r#"{{"a":{i}}}"#)),
                now - 1000,
                &EnqueueOptions::default(),
            )
            .await
            .unwrap();
    }
    s.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cut.load(Ordering::SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cut.load(Ordering::SeqCst), "the first batch was enqueued");
    assert_eq!(provider.enqueued().len(), 100);

    // While it is down: more jobs come due, polls fail, the loop keeps going.
    for i in 0..50 {
        direct
            .schedule(
                "b",
                &raw(&format!(r#"{{"b":{i}}}"#)),
                now_ms() - 10,
                &EnqueueOptions::default(),
            )
            .await
            .unwrap();
    }
    // Longer than the pool's 5 s acquire timeout, so the write after the first batch fails
    // (rather than waiting for the database) and polls fail with an error.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    assert_eq!(
        provider.enqueued().len(),
        100,
        "nothing enqueued while the database is down"
    );
    assert_eq!(
        db.count_status("enqueuing").await,
        100,
        "the first batch is still claimed"
    );
    assert!(s.is_running());

    proxy.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while (db.count_status("enqueued").await < 150) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.stop().await;

    let counts = provider.counts();
    assert_eq!(counts.len(), 150, "nothing lost");
    assert!(
        counts.values().all(|&n| n == 1),
        "nothing doubled: {} enqueues",
        provider.enqueued().len()
    );
    assert_eq!(db.count_status("enqueued").await, 150);
    proxy.stop();
    db.cleanup().await;
}
