//! Shared parts of the scheduler tests: fresh PostgreSQL databases, SQLite files, a memory
//! queue that can be made to fail, and a loopback TCP proxy that plays a database restart.
#![allow(dead_code)]

use async_trait::async_trait;
use chaaskit_queue_core::config::{MemoryConfig, SchedulerConfig};
use chaaskit_queue_core::memory::MemoryQueue;
use chaaskit_queue_core::provider::{DelaySink, QueueProvider};
use chaaskit_queue_core::scheduler::{Scheduler, SchedulerTuning};
use chaaskit_queue_core::{store, SharedProvider};
use chaaskit_queue_core::{Job, NewJob, QueueError, QueueStats, ReceivedJob, Result};
use serde_json::value::RawValue;
use sqlx::{Connection, Executor, PgConnection};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The PostgreSQL the tests create their databases on; `CHAASKIT_TEST_PG_URL` overrides it.
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn pg_admin_url() -> String {
    std::env::var("CHAASKIT_TEST_PG_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| PG_ADMIN_URL.to_owned())
}

/// Report that the running test is skipped because `why`, where `cargo test` shows it (the
/// harness captures `println!`, not the process's stdout); under `CI=true`, fail instead.
pub fn skipped(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}; a skip is a failure under CI=true");
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\nSKIPPED {test}: {why}");
    let _ = out.flush();
}

/// Prisma's DDL for the spec's models on PostgreSQL (`prisma migrate diff` output), as an
/// app database that Prisma made holds them.
pub const PRISMA_PG_DDL: &str = r#"
-- CreateTable
CREATE TABLE "ScheduledJob" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    "scheduledFor" TIMESTAMP(3) NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'scheduled',
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ScheduledJob_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RecurringJob" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    "schedule" TEXT NOT NULL,
    "timezone" TEXT NOT NULL DEFAULT 'UTC',
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "nextRunAt" TIMESTAMP(3),
    "lastRunAt" TIMESTAMP(3),
    "lastError" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "RecurringJob_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ScheduledJob_status_scheduledFor_idx" ON "ScheduledJob"("status", "scheduledFor");

-- CreateIndex
CREATE INDEX "ScheduledJob_type_idx" ON "ScheduledJob"("type");

-- CreateIndex
CREATE UNIQUE INDEX "RecurringJob_name_key" ON "RecurringJob"("name");

-- CreateIndex
CREATE INDEX "RecurringJob_enabled_nextRunAt_idx" ON "RecurringJob"("enabled", "nextRunAt");
"#;

/// Prisma's DDL for the same models on SQLite.
pub const PRISMA_SQLITE_DDL: &str = r#"
CREATE TABLE "ScheduledJob" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    "scheduledFor" DATETIME NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'scheduled',
    "error" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
CREATE TABLE "RecurringJob" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    "schedule" TEXT NOT NULL,
    "timezone" TEXT NOT NULL DEFAULT 'UTC',
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "nextRunAt" DATETIME,
    "lastRunAt" DATETIME,
    "lastError" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
CREATE INDEX "ScheduledJob_status_scheduledFor_idx" ON "ScheduledJob"("status", "scheduledFor");
CREATE INDEX "ScheduledJob_type_idx" ON "ScheduledJob"("type");
CREATE UNIQUE INDEX "RecurringJob_name_key" ON "RecurringJob"("name");
CREATE INDEX "RecurringJob_enabled_nextRunAt_idx" ON "RecurringJob"("enabled", "nextRunAt");
"#;

/// A database of its own on the local PostgreSQL, dropped by [`PgDb::drop_db`].
pub struct PgDb {
    pub name: String,
    pub url: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh database, or `None` (test skipped, loudly) when PostgreSQL is not running —
/// a failure instead when `CI=true`.
pub async fn fresh_pg() -> Option<PgDb> {
    let admin_url = pg_admin_url();
    let mut admin = match PgConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) => {
            skipped(&format!("PostgreSQL not reachable at {admin_url}: {e}"));
            return None;
        }
    };
    let name = format!(
        "chaaskit_sched_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..8)
            .unwrap_or("x")
    );
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .expect("create test database");
    let server = admin_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .map_or(admin_url.as_str(), |(server, _db)| server);
    let url = format!("{server}/{name}");
    Some(PgDb { name, url })
}

async fn drop_database(name: &str) {
    if let Ok(mut admin) = PgConnection::connect(&pg_admin_url()).await {
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        let _ = admin.execute(sql.as_str()).await;
    }
}

impl Drop for PgDb {
    /// Also when a test panics: drop the database from a thread with its own runtime.
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        if name.is_empty() {
            return;
        }
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(drop_database(&name));
            }
        })
        .join();
    }
}

impl PgDb {
    pub async fn drop_db(mut self) {
        drop_database(&std::mem::take(&mut self.name)).await;
    }

    pub async fn conn(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("connect to test database")
    }
}

/// A SQLite file in a temporary directory (removed on drop).
pub struct SqliteDb {
    pub dir: std::path::PathBuf,
    pub url: String,
}

impl SqliteDb {
    pub fn new() -> SqliteDb {
        let dir =
            std::env::temp_dir().join(format!("chaaskit-sched-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite:{}?mode=rwc", dir.join("queue.db").display());
        SqliteDb { dir, url }
    }
}

impl Drop for SqliteDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the scheduler handed to the provider.
#[derive(Clone, Debug)]
pub struct Enqueued {
    pub job_type: String,
    pub payload: String,
    pub options: chaaskit_queue_core::EnqueueOptions,
}

type Hook = Box<dyn Fn() + Send + Sync>;

/// The memory queue, plus a switch that makes enqueues fail, a log of what was enqueued,
/// and a hook run after each successful enqueue call.
pub struct TestProvider {
    pub queue: Arc<MemoryQueue>,
    pub failing: AtomicBool,
    pub log: Mutex<Vec<Enqueued>>,
    pub after_enqueue: Mutex<Option<Hook>>,
    pub sink_set: AtomicBool,
}

impl TestProvider {
    pub fn new() -> Arc<TestProvider> {
        Arc::new(TestProvider {
            queue: MemoryQueue::new(MemoryConfig {
                max_history_size: 100,
            }),
            failing: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
            after_enqueue: Mutex::new(None),
            sink_set: AtomicBool::new(false),
        })
    }

    pub fn enqueued(&self) -> Vec<Enqueued> {
        self.log.lock().unwrap().clone()
    }

    /// How many times each payload was enqueued.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for e in self.log.lock().unwrap().iter() {
            *m.entry(e.payload.clone()).or_insert(0) += 1;
        }
        m
    }

    fn check(&self) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError::Backend("test provider is failing".into()));
        }
        Ok(())
    }

    fn record(&self, jobs: &[NewJob]) {
        let mut log = self.log.lock().unwrap();
        for j in jobs {
            log.push(Enqueued {
                job_type: j.job_type.clone(),
                payload: j.payload.get().to_owned(),
                options: j.options.clone(),
            });
        }
        drop(log);
        // A hook may panic (a test of the poll loop): take the lock even if a panic poisoned it.
        let hook = self.after_enqueue.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = hook.as_ref() {
            h();
        }
    }
}

#[async_trait]
impl QueueProvider for TestProvider {
    fn name(&self) -> &'static str {
        "memory"
    }
    async fn enqueue(&self, job: NewJob) -> Result<Job> {
        self.check()?;
        let j = self.queue.enqueue(job.clone()).await?;
        self.record(&[job]);
        Ok(j)
    }
    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        self.check()?;
        let out = self.queue.enqueue_bulk(jobs.clone()).await?;
        self.record(&jobs);
        Ok(out)
    }
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>> {
        self.queue.receive(max, wait).await
    }
    async fn acknowledge(&self, receipt: &str, result: Option<Box<RawValue>>) -> Result<()> {
        self.queue.acknowledge(receipt, result).await
    }
    async fn fail(&self, receipt: &str, error: &str) -> Result<()> {
        self.queue.fail(receipt, error).await
    }
    async fn release(&self, receipt: &str) -> Result<()> {
        self.queue.release(receipt).await
    }
    async fn set_progress(&self, receipt: &str, percent: f64) -> Result<()> {
        self.queue.set_progress(receipt, percent).await
    }
    async fn get_job(&self, id: &str) -> Result<Option<Job>> {
        self.queue.get_job(id).await
    }
    async fn stats(&self) -> Result<QueueStats> {
        self.queue.stats().await
    }
    async fn close(&self) -> Result<()> {
        self.queue.close().await
    }
    fn set_delay_sink(&self, sink: Option<Arc<dyn DelaySink>>) {
        self.sink_set.store(sink.is_some(), Ordering::SeqCst);
    }
}

/// The accept loop and the connections of a running proxy.
type Serving = (JoinHandle<()>, Arc<Mutex<Vec<JoinHandle<()>>>>);

/// A loopback TCP proxy to PostgreSQL that can be stopped (every connection cut, the port
/// closed) and started again on the same port: a database restart seen from the client.
pub struct PgProxy {
    pub port: u16,
    state: Mutex<Option<Serving>>,
}

impl PgProxy {
    pub async fn start() -> Arc<PgProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let p = Arc::new(PgProxy {
            port,
            state: Mutex::new(None),
        });
        p.serve(listener);
        p
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn serve(&self, listener: TcpListener) {
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let c2 = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let h = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                c2.lock().unwrap().push(h);
            }
        });
        *self.state.lock().unwrap() = Some((accept, conns));
    }

    /// Cut every connection and stop listening.
    pub fn stop(&self) {
        if let Some((accept, conns)) = self.state.lock().unwrap().take() {
            accept.abort();
            for h in conns.lock().unwrap().drain(..) {
                h.abort();
            }
        }
    }

    /// Listen again on the same port.
    pub async fn restart(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebinding proxy port {}: {e}", self.port),
            }
        };
        self.serve(listener);
    }
}

pub fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("json")
}

/// A test database of either kind, with raw access for setting rows up as other writers
/// (Prisma, the old scheduler) would.
pub enum Db {
    Pg(PgDb),
    Lite(SqliteDb),
}

impl Db {
    pub async fn pg() -> Option<Db> {
        fresh_pg().await.map(Db::Pg)
    }

    pub fn lite() -> Db {
        Db::Lite(SqliteDb::new())
    }

    pub fn url(&self) -> &str {
        match self {
            Db::Pg(d) => &d.url,
            Db::Lite(d) => &d.url,
        }
    }

    pub fn is_pg(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    pub async fn cleanup(self) {
        if let Db::Pg(d) = self {
            d.drop_db().await;
        }
    }

    /// Run SQL text (several statements allowed).
    pub async fn exec(&self, sql: &str) {
        match self {
            Db::Pg(d) => {
                let mut c = d.conn().await;
                sqlx::raw_sql(sql).execute(&mut c).await.expect("exec");
            }
            Db::Lite(d) => {
                let mut c = sqlx::SqliteConnection::connect(&d.url)
                    .await
                    .expect("sqlite connect");
                sqlx::raw_sql(sql).execute(&mut c).await.expect("exec");
            }
        }
    }

    /// Run one statement whose `$n` parameters are text, except those listed in `times`,
    /// which are epoch milliseconds bound as this database stores dates. Returns rows changed.
    pub async fn run(&self, sql: &str, texts: &[Option<&str>], times: &[Option<i64>]) -> u64 {
        match self {
            Db::Pg(d) => {
                let mut c = d.conn().await;
                let mut q = sqlx::query(sql);
                for t in texts {
                    q = q.bind(*t);
                }
                for t in times {
                    q = q.bind(t.map(|ms| {
                        chrono::DateTime::from_timestamp_millis(ms)
                            .unwrap()
                            .naive_utc()
                    }));
                }
                q.execute(&mut c).await.expect("run").rows_affected()
            }
            Db::Lite(d) => {
                let mut c = sqlx::SqliteConnection::connect(&d.url)
                    .await
                    .expect("sqlite connect");
                let mut q = sqlx::query(sql);
                for t in texts {
                    q = q.bind(*t);
                }
                for t in times {
                    q = q.bind(*t);
                }
                q.execute(&mut c).await.expect("run").rows_affected()
            }
        }
    }

    /// Move a recurring job's `nextRunAt`, as if time had passed.
    pub async fn set_next_run(&self, name: &str, at: i64) {
        let n = self
            .run(
                r#"UPDATE "RecurringJob" SET "nextRunAt" = $2 WHERE "name" = $1"#,
                &[Some(name)],
                &[Some(at)],
            )
            .await;
        assert_eq!(n, 1, "no recurring job {name}");
    }

    /// The one value `sql` selects, with `$1` bound to `arg` when given.
    pub async fn scalar<T>(&self, sql: &str, arg: Option<&str>) -> T
    where
        T: Send + Unpin,
        (T,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
    {
        match self {
            Db::Pg(d) => {
                let mut c = d.conn().await;
                let q = sqlx::query_scalar(sql);
                let q = if let Some(a) = arg { q.bind(a) } else { q };
                q.fetch_one(&mut c).await.expect("scalar")
            }
            Db::Lite(d) => {
                let mut c = sqlx::SqliteConnection::connect(&d.url)
                    .await
                    .expect("sqlite connect");
                let q = sqlx::query_scalar(sql);
                let q = if let Some(a) = arg { q.bind(a) } else { q };
                q.fetch_one(&mut c).await.expect("scalar")
            }
        }
    }

    /// Count `ScheduledJob` rows with a status.
    pub async fn count_status(&self, status: &str) -> i64 {
        let sql = r#"SELECT COUNT(*) AS n FROM "ScheduledJob" WHERE "status" = $1"#;
        self.scalar(sql, Some(status)).await
    }
}

/// The scheduler config the tests use: `db`, polling every `poll_ms`.
pub fn config(db: &Db, poll_ms: u64) -> SchedulerConfig {
    SchedulerConfig {
        enabled: true,
        poll_interval: poll_ms,
        database_url: Some(db.url().to_owned()),
        auto_migrate: true,
        ..Default::default()
    }
}

/// A scheduler on `db` with a store (connection pool) of its own, as another process has.
pub fn scheduler(
    db: &Db,
    provider: &Arc<TestProvider>,
    poll_ms: u64,
    tuning: SchedulerTuning,
) -> Scheduler {
    let p: SharedProvider = provider.clone();
    let store = store::open(db.url()).expect("open store");
    Scheduler::with_tuning(p, store, config(db, poll_ms), tuning)
}

/// Run `$body(db)` against a fresh PostgreSQL database and a fresh SQLite file.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::scheduler_support::Db::pg().await {
                    $body(&db).await;
                    db.cleanup().await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::scheduler_support::Db::lite();
                $body(&db).await;
                db.cleanup().await;
            }
        }
    };
}
