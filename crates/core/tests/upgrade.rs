//! Migrations with a ledger, on PostgreSQL and SQLite: a database made by a build before the
//! ledger (`fixtures/pre_ledger_*.sql`, that build's scripts as they were) is upgraded while a
//! worker runs on it, and loses nothing; concurrent starts apply each migration once.

use chaaskit_queue_core::config::{PostgresConfig, SchedulerConfig, SqliteConfig};
use chaaskit_queue_core::durable::DbQueue;
use chaaskit_queue_core::job::raw_json;
use chaaskit_queue_core::provider::{QueueProvider, SharedProvider};
use chaaskit_queue_core::scheduler::Scheduler;
use chaaskit_queue_core::{EnqueueOptions, JobStatus, NewJob};
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PRE_LEDGER_PG: &str = include_str!("fixtures/pre_ledger_postgres.sql");
const PRE_LEDGER_SQLITE: &str = include_str!("fixtures/pre_ledger_sqlite.sql");

/// Every migration, as the ledger must hold it after an upgrade: the scripts under
/// `migrations/postgres` (`NNNN_name.sql`), which `migrations/sqlite` mirrors name for name.
fn ledger_of_the_scripts() -> Vec<(i64, String)> {
    let dir = |d: &str| -> Vec<(i64, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/").to_owned() + d;
        let mut v: Vec<(i64, String)> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|f| f.strip_suffix(".sql").map(str::to_owned))
            .map(|name| (name[..4].parse().unwrap(), name))
            .collect();
        v.sort();
        v
    };
    let pg = dir("postgres");
    assert_eq!(
        pg,
        dir("sqlite"),
        "the two databases have the same migrations"
    );
    pg
}

/// The database under test: a schema of its own on the test PostgreSQL (dropped at the end),
/// or an SQLite file in a directory of its own.
enum Db {
    Pg(String),
    Lite(std::path::PathBuf),
}

impl Db {
    /// `None` (loudly) when PostgreSQL is not running; a failure under `CI=true`.
    async fn pg() -> Option<Db> {
        if let Err(e) = PgConnection::connect(PG_URL).await {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL at {PG_URL} is required in CI: {e}");
            }
            eprintln!("SKIPPED: PostgreSQL not reachable at {PG_URL}: {e}");
            return None;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        Some(Db::Pg(format!("up_{}", &id[..12])))
    }

    fn lite() -> Db {
        let dir = std::env::temp_dir().join(format!("chaaskit-up-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Db::Lite(dir.join("queue.db"))
    }

    /// The scheduler's URL: the same schema (by search_path) or file.
    fn url(&self) -> String {
        match self {
            Db::Pg(s) => format!("{PG_URL}?options=-c%20search_path%3D{s}"),
            Db::Lite(f) => format!("sqlite:{}", f.display()),
        }
    }

    async fn open(&self, auto_migrate: bool) -> Arc<DbQueue> {
        match self {
            Db::Pg(s) => DbQueue::connect_postgres(PostgresConfig {
                database_url: Some(PG_URL.into()),
                schema: Some(s.clone()),
                auto_migrate,
                ..Default::default()
            })
            .await
            .unwrap(),
            Db::Lite(_) => DbQueue::connect_sqlite(SqliteConfig {
                database_url: self.url(),
                auto_migrate,
                ..Default::default()
            })
            .await
            .unwrap(),
        }
    }

    /// Run SQL text (several statements) in the schema or file.
    async fn exec(&self, sql: &str) {
        match self {
            Db::Pg(s) => {
                let mut c = PgConnection::connect(PG_URL).await.unwrap();
                let sql = format!("SET search_path TO \"{s}\";\n{sql}");
                c.execute(sql.as_str()).await.unwrap();
            }
            Db::Lite(_) => {
                let mut c = SqliteConnection::connect(&format!("{}?mode=rwc", self.url()))
                    .await
                    .unwrap();
                c.execute(sql).await.unwrap();
            }
        }
    }

    /// One text column of a query's rows.
    async fn texts(&self, sql: &str) -> Vec<String> {
        match self {
            Db::Pg(s) => {
                let mut c = PgConnection::connect(PG_URL).await.unwrap();
                c.execute(format!("SET search_path TO \"{s}\"").as_str())
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
            Db::Lite(_) => {
                let mut c = SqliteConnection::connect(&self.url()).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
        }
    }

    /// The ledger, as (id, name) in order.
    async fn ledger(&self) -> Vec<(i64, String)> {
        self.texts(
            r#"SELECT CAST("id" AS TEXT) || ' ' || "name" FROM "QueueMigration" ORDER BY "id""#,
        )
        .await
        .iter()
        .map(|r| {
            let (id, name) = r.split_once(' ').unwrap();
            (id.parse().unwrap(), name.to_owned())
        })
        .collect()
    }

    /// The names of the indexes on "QueueJob" that the server may use.
    async fn indexes(&self) -> Vec<String> {
        match self {
            Db::Pg(s) => {
                self.texts(&format!(
                    "SELECT CAST(c.relname AS TEXT) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
                     WHERE n.nspname = '{s}' AND t.relname = 'QueueJob' AND i.indisvalid ORDER BY 1"
                ))
                .await
            }
            Db::Lite(_) => {
                self.texts(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'QueueJob' ORDER BY 1",
                )
                .await
            }
        }
    }

    /// The database clock moved by `ms`, as a value of a "QueueJob" date column.
    fn at(&self, ms: i64) -> String {
        match self {
            Db::Pg(_) => format!("(now() + INTERVAL '{ms} milliseconds')"),
            Db::Lite(_) => format!("(CAST(unixepoch('subsec') * 1000 AS INTEGER) + {ms})"),
        }
    }

    /// The same for the scheduler's tables (PostgreSQL: `TIMESTAMP(3)` in UTC).
    fn sched_at(&self, ms: i64) -> String {
        match self {
            Db::Pg(_) => format!("((now() AT TIME ZONE 'UTC') + INTERVAL '{ms} milliseconds')"),
            Db::Lite(_) => self.at(ms),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        match self {
            Db::Lite(f) => {
                if let Some(dir) = f.parent() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            Db::Pg(s) => {
                let sql = format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE");
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
    }
}

/// A row of the old "QueueJob" table.
struct OldJob {
    id: String,
    status: &'static str,
    /// `runAt` from now, ms.
    run_at: i64,
    /// `lockedUntil` from now, ms (processing jobs).
    locked: Option<i64>,
    key: Option<&'static str>,
    attempts: i64,
}

impl OldJob {
    fn new(status: &'static str, run_at: i64) -> OldJob {
        OldJob {
            id: uuid::Uuid::new_v4().to_string(),
            status,
            run_at,
            locked: None,
            key: None,
            attempts: 0,
        }
    }

    /// Whether a worker runs it.
    fn runs(&self) -> bool {
        match self.status {
            "pending" | "scheduled" | "failed" => self.run_at <= 0,
            "processing" => self.locked.is_some_and(|l| l <= 0),
            _ => false,
        }
    }
}

/// The old build's rows: jobs in every status (a lease that ran out among them), a held
/// deduplication key, a due and a future one-time schedule, a due recurring one.
async fn fill(db: &Db) -> (Vec<OldJob>, String, String) {
    let mut jobs: Vec<OldJob> = (0..200).map(|_| OldJob::new("pending", -1000)).collect();
    jobs.push(OldJob::new("scheduled", -1000));
    jobs.push(OldJob {
        key: Some("held"),
        ..OldJob::new("scheduled", 3_600_000)
    });
    jobs.push(OldJob {
        attempts: 1,
        ..OldJob::new("failed", -1000)
    });
    jobs.push(OldJob {
        locked: Some(-1000),
        attempts: 1,
        ..OldJob::new("processing", -60_000)
    });
    for s in ["completed", "dead", "cancelled"] {
        jobs.push(OldJob::new(s, -60_000));
    }
    let values: Vec<String> = jobs
        .iter()
        .map(|j| {
            let done = matches!(j.status, "completed" | "dead" | "cancelled");
            format!(
                "('{id}', 'old', '{{\"n\":1}}', '{options}', '{status}', 3, {attempts}, {attempts}, {run_at}, {locked}, {completed}, {key}, {now})",
                id = j.id,
                status = j.status,
                attempts = j.attempts,
                run_at = db.at(j.run_at),
                locked = j.locked.map_or("NULL".into(), |l| db.at(l)),
                completed = if done { db.at(-1000) } else { "NULL".into() },
                key = j.key.map_or("NULL".into(), |k| format!("'{k}'")),
                // As the old build stored them: the key in the options too.
                options = j.key.map_or("{}".into(), |k| format!(r#"{{"deduplicationKey":"{k}"}}"#)),
                now = db.at(-60_000),
            )
        })
        .collect();
    let (once, later) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    db.exec(&format!(
        r#"INSERT INTO "QueueJob" ("id", "type", "payload", "options", "status", "maxRetries", "attempts", "deliveries", "runAt", "lockedUntil", "completedAt", "deduplicationKey", "createdAt") VALUES {jobs};
        INSERT INTO "ScheduledJob" ("id", "type", "payload", "options", "scheduledFor", "status", "createdAt", "updatedAt") VALUES
            ('{once}', 'once', '{{}}', '{{}}', {due}, 'scheduled', {due}, {due}),
            ('{later}', 'later', '{{}}', '{{}}', {future}, 'scheduled', {due}, {due});
        INSERT INTO "RecurringJob" ("id", "name", "type", "payload", "options", "schedule", "timezone", "enabled", "nextRunAt", "createdAt", "updatedAt") VALUES
            ('{rid}', 'every-minute', 'every', '{{}}', '{{}}', '* * * * *', 'UTC', TRUE, {due}, {due}, {due});"#,
        jobs = values.join(",\n"),
        due = db.sched_at(-60_000),
        future = db.sched_at(3_600_000),
        rid = uuid::Uuid::new_v4(),
    ))
    .await;
    (jobs, once, later)
}

/// A worker on `q`: claims and acknowledges every job, reporting (id, type) of each.
fn worker(
    q: Arc<DbQueue>,
) -> (
    mpsc::UnboundedReceiver<(String, String)>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let got = match q.receive(10, Duration::from_millis(200)).await {
                Ok(got) => got,
                Err(e) => panic!("the worker's claim failed: {e}"),
            };
            for r in got {
                q.acknowledge(&r.receipt_handle, None).await.unwrap();
                if tx.send((r.job.id.clone(), r.job.job_type.clone())).is_err() {
                    return;
                }
            }
        }
    });
    (rx, task)
}

async fn upgrade_while_a_worker_runs(db: Db) {
    let pre = match db {
        Db::Pg(ref s) => {
            format!("CREATE SCHEMA \"{s}\"; SET search_path TO \"{s}\";\n{PRE_LEDGER_PG}")
        }
        Db::Lite(_) => PRE_LEDGER_SQLITE.to_owned(),
    };
    match db {
        Db::Pg(_) => {
            // The old scripts wait for the migration lock inside their transaction; a new
            // start elsewhere on this database building an index CONCURRENTLY waits for that
            // transaction in turn (PostgreSQL then aborts one of them). So this test takes
            // the lock by trying first, as the new migrations do; the script's own
            // `pg_advisory_xact_lock` then finds it held by its session.
            let mut c = PgConnection::connect(PG_URL).await.unwrap();
            loop {
                let mut tx = c.begin().await.unwrap();
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7283641093)")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                if got {
                    tx.execute(pre.as_str()).await.unwrap();
                    tx.commit().await.unwrap();
                    break;
                }
                tx.rollback().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Db::Lite(_) => db.exec(&pre).await,
    }
    let (jobs, once, later) = fill(&db).await;
    let indexes_before = db.indexes().await;
    assert!(indexes_before.contains(&"QueueJob_finished_idx".to_owned()));

    // A worker on the old schema (it migrates nothing), busy before the upgrade starts.
    let old = db.open(false).await;
    let (mut done, task) = worker(old.clone());
    let mut seen: HashSet<String> = HashSet::new();
    let mut types: HashSet<String> = HashSet::new();
    let (id, t) = done.recv().await.unwrap();
    seen.insert(id);
    types.insert(t);

    // The upgrade: the queue's migrations, then the scheduler's, while the worker claims.
    let new = db.open(true).await;
    let provider: SharedProvider = new.clone();
    let scheduler = Scheduler::open(
        provider,
        SchedulerConfig {
            enabled: true,
            database_url: Some(db.url()),
            ..Default::default()
        },
    )
    .unwrap();
    scheduler.migrate().await.unwrap();
    let ledger = ledger_of_the_scripts();
    assert_eq!(db.ledger().await, ledger, "each migration recorded once");
    let indexes = db.indexes().await;
    assert!(
        indexes.contains(&"QueueJob_done_idx".to_owned()),
        "{indexes:?}"
    );
    assert!(
        !indexes.contains(&"QueueJob_finished_idx".to_owned()),
        "{indexes:?}"
    );
    // PostgreSQL reaps through the status index, so a heartbeat's update can be HOT.
    let lease = indexes.contains(&"QueueJob_lease_idx".to_owned());
    assert_eq!(lease, matches!(db, Db::Lite(_)), "{indexes:?}");

    // The held key still holds: the same unfinished job comes back.
    let held = jobs.iter().find(|j| j.key.is_some()).unwrap();
    let again = new
        .enqueue(NewJob::new(
            "old",
            raw_json("{}").unwrap(),
            EnqueueOptions {
                deduplication_key: Some("held".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(again.id, held.id);

    // The old schedules: the due one-time and recurring ones are enqueued; the later one waits.
    let out = scheduler.poll_once().await.unwrap();
    assert_eq!((out.scheduled, out.recurring, out.failed), (1, 1, 0));
    let later_row = scheduler.get_scheduled_job(&later).await.unwrap().unwrap();
    assert_eq!(later_row.status, "scheduled");
    assert_eq!(
        scheduler
            .get_scheduled_job(&once)
            .await
            .unwrap()
            .unwrap()
            .status,
        "enqueued"
    );

    // Every old job that was due runs (the expired lease's too), and the scheduled ones.
    let mut due: HashSet<String> = jobs
        .iter()
        .filter(|j| j.runs())
        .map(|j| j.id.clone())
        .collect();
    while !(due.is_subset(&seen) && types.contains("once") && types.contains("every")) {
        let (id, t) = done.recv().await.unwrap();
        assert!(seen.insert(id.clone()), "job {id} ran twice");
        types.insert(t);
        due.retain(|d| !seen.contains(d));
    }
    task.abort();

    // Nothing is lost: every old row is there, in the state it should be.
    for j in &jobs {
        let got = new.get_job(&j.id).await.unwrap();
        let got = got.unwrap_or_else(|| panic!("job {} ({}) lost", j.id, j.status));
        let want = match j.status {
            _ if j.runs() => JobStatus::Completed,
            "scheduled" => JobStatus::Scheduled,
            "completed" => JobStatus::Completed,
            "dead" => JobStatus::Dead,
            "cancelled" => JobStatus::Cancelled,
            s => panic!("unexpected status {s}"),
        };
        assert_eq!(got.status, want, "job {} was {}", j.id, j.status);
    }

    // A later start finds everything applied and runs nothing again.
    let third = db.open(true).await;
    scheduler.migrate().await.unwrap();
    assert_eq!(db.ledger().await, ledger);
    for q in [old, new, third] {
        q.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_from_the_pre_ledger_schema_while_a_worker_runs() {
    if let Some(db) = Db::pg().await {
        upgrade_while_a_worker_runs(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_from_the_pre_ledger_schema_while_a_worker_runs() {
    upgrade_while_a_worker_runs(Db::lite()).await;
}

/// Several providers and schedulers start at once on a new database: each migration is
/// applied once, and every start succeeds.
async fn concurrent_starts(db: Db) {
    let mut starts = Vec::new();
    for i in 0..6u32 {
        let (queue_url, schema) = (
            db.url(),
            match &db {
                Db::Pg(s) => Some(s.clone()),
                Db::Lite(_) => None,
            },
        );
        starts.push(tokio::spawn(async move {
            let q = match schema {
                Some(s) => {
                    DbQueue::connect_postgres(PostgresConfig {
                        database_url: Some(PG_URL.into()),
                        schema: Some(s),
                        ..Default::default()
                    })
                    .await
                }
                None => {
                    DbQueue::connect_sqlite(SqliteConfig {
                        database_url: queue_url.clone(),
                        ..Default::default()
                    })
                    .await
                }
            }
            .unwrap();
            if i.is_multiple_of(2) {
                let s = Scheduler::open(
                    q.clone(),
                    SchedulerConfig {
                        database_url: Some(queue_url),
                        ..Default::default()
                    },
                )
                .unwrap();
                s.migrate().await.unwrap();
            }
            q
        }));
    }
    let mut qs = Vec::new();
    for s in starts {
        qs.push(s.await.unwrap());
    }
    let ledger = ledger_of_the_scripts();
    assert_eq!(db.ledger().await, ledger);
    for q in qs {
        q.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_starts_apply_each_migration_once() {
    if let Some(db) = Db::pg().await {
        // The scheduler's tables live in the schema too (its URL's search_path).
        concurrent_starts(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_starts_apply_each_migration_once() {
    concurrent_starts(Db::lite()).await;
}
