//! Job log lines on the durable providers: retention (and any delete of a job) removes them
//! with the job, and the cap holds across hand-outs.

use chaaskit_queue_core::config::{PostgresConfig, SqliteConfig};
use chaaskit_queue_core::durable::{PostgresQueue, SqliteQueue};
use chaaskit_queue_core::job::{now_ms, raw_json};
use chaaskit_queue_core::joblog::{LogLine, MAX_LOG_LINES};
use chaaskit_queue_core::provider::QueueProvider;
use chaaskit_queue_core::{EnqueueOptions, NewJob};
use sqlx::{Connection, Executor, PgConnection};
use std::time::Duration;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn job() -> NewJob {
    NewJob::new("t", raw_json("{}").unwrap(), EnqueueOptions::default())
}

/// Two hand-outs of one job logging `MAX_LOG_LINES` lines each (the first released), acked;
/// the cap keeps the second's lines and counts the first's; retention 0 then purges the job
/// and its lines. Returns the job id, for the caller's own check of the table.
async fn scenario(q: &dyn QueueProvider, purge: impl std::future::Future<Output = u64>) -> String {
    let j = q.enqueue(job()).await.unwrap();
    for round in 1..=2u32 {
        let r = q.receive(1, Duration::ZERO).await.unwrap().pop().unwrap();
        for seq in 1..=MAX_LOG_LINES as u32 {
            let line = LogLine::new(now_ms(), r.job.attempts, seq, format!("r{round} l{seq}"));
            q.append_log(&r.receipt_handle, line).await.unwrap();
        }
        if round == 1 {
            q.release(&r.receipt_handle).await.unwrap();
        } else {
            q.acknowledge(&r.receipt_handle, None).await.unwrap();
        }
    }
    let logs = q.get_job_logs(&j.id).await.unwrap().unwrap();
    assert_eq!(logs.lines.len(), MAX_LOG_LINES);
    assert_eq!(logs.dropped, MAX_LOG_LINES as u64);
    assert_eq!(logs.lines[0].line, "r2 l1");
    assert_eq!(
        logs.lines[0].attempt, 1,
        "a released attempt does not count"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    purge.await;
    assert!(q.get_job(&j.id).await.unwrap().is_none());
    assert!(q.get_job_logs(&j.id).await.unwrap().is_none());
    j.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retention_removes_log_lines_with_the_job() {
    let dir = std::env::temp_dir().join(format!("chaaskit-logs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("q.db").display());
    let mut cfg = SqliteConfig {
        database_url: url.clone(),
        visibility_timeout: 30,
        ..Default::default()
    };
    cfg.retention.completed = 0;
    let q = SqliteQueue::connect_sqlite(cfg).await.unwrap();
    let id = scenario(q.as_ref(), async { q.purge_finished().await.unwrap() }).await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let left: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "QueueJobLog" WHERE "jobId" = $1"#)
        .bind(&id)
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(left, 0, "no line (nor the dropped count) outlives its job");
    q.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retention_removes_log_lines_with_the_job() {
    let mut c = match PgConnection::connect(PG_URL).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: PostgreSQL not reachable at {PG_URL}: {e}");
            return;
        }
        Err(e) => panic!("PostgreSQL at {PG_URL} is required in CI: {e}"),
    };
    let schema = format!("logs_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut cfg = PostgresConfig {
        database_url: Some(PG_URL.into()),
        schema: Some(schema.clone()),
        visibility_timeout: 30,
        ..Default::default()
    };
    cfg.retention.completed = 0;
    let q = PostgresQueue::connect_postgres(cfg).await.unwrap();
    let id = scenario(q.as_ref(), async { q.purge_finished().await.unwrap() }).await;
    let left: i64 = sqlx::query_scalar(&format!(
        r#"SELECT count(*) FROM "{schema}"."QueueJobLog" WHERE "jobId" = CAST($1 AS UUID)"#
    ))
    .bind(&id)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(left, 0, "no line (nor the dropped count) outlives its job");
    q.close().await.unwrap();
    c.execute(format!(r#"DROP SCHEMA IF EXISTS "{schema}" CASCADE"#).as_str())
        .await
        .unwrap();
}
