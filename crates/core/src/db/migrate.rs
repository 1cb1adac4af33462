//! Schema migrations with a ledger: the numbered scripts of `migrations/`, each applied once per
//! database (on PostgreSQL, per schema) and recorded in `"QueueMigration"`, one at a time under
//! a lock, after the server's version is checked.
//!
//! PostgreSQL: a session advisory lock (the key earlier builds took per migration, so an old
//! process starting meanwhile waits too); each script runs in its own transaction with its
//! ledger row, except a script marked [`CONCURRENTLY`], whose statements run one by one outside
//! any transaction (`CREATE INDEX CONCURRENTLY` does not block writes to a large table).
//! SQLite: one `BEGIN IMMEDIATE` transaction around the whole run.
//!
//! A database made by a build before the ledger holds the baseline scripts' tables but no
//! ledger: those scripts are recorded as applied (adopted), never run again.

use super::{Fut, Pool};
use crate::pg_schema::quote_ident;
use sqlx::{Connection, Executor as _, PgConnection, Row as _, SqliteConnection};
use std::time::Duration;

/// A run's outcome: the error is a message naming the database (`label`) and the step; each
/// caller words it as its kind of error.
pub(crate) type Outcome = std::result::Result<(), String>;

/// A script's first line when its statements must run outside a transaction (PostgreSQL).
pub(crate) const CONCURRENTLY: &str = "-- chaaskit: no transaction";

/// Key of the PostgreSQL migration lock (the one every earlier build took).
const LOCK_KEY: i64 = 7_283_641_093;

/// Oldest PostgreSQL, as `server_version_num` (`CREATE OR REPLACE TRIGGER` is 14's).
const MIN_POSTGRES: i64 = 140_000;
/// Oldest SQLite (`unixepoch('subsec')` is 3.42's).
const MIN_SQLITE: (u32, u32) = (3, 42);

/// One numbered script, in both dialects.
pub(crate) struct Migration {
    /// Its number: the ledger's key, unique across every set below.
    pub id: i64,
    /// The file name without `.sql`.
    pub name: &'static str,
    pub postgres: &'static str,
    pub sqlite: &'static str,
    /// A baseline script (one that builds before the ledger ran at every start): the table
    /// whose presence means it was applied then.
    pub baseline_of: Option<&'static str>,
}

macro_rules! migration {
    ($id:expr, $name:literal, $baseline:expr) => {
        Migration {
            id: $id,
            name: $name,
            postgres: include_str!(concat!("../../../../migrations/postgres/", $name, ".sql")),
            sqlite: include_str!(concat!("../../../../migrations/sqlite/", $name, ".sql")),
            baseline_of: $baseline,
        }
    };
}

/// The scheduler's tables (`ScheduledJob`, `RecurringJob`).
pub(crate) const SCHEDULER: &[Migration] = &[migration!(1, "0001_scheduler", Some("ScheduledJob"))];

/// The `postgres` and `sqlite` queue providers' tables.
pub(crate) const QUEUE: &[Migration] = &[
    migration!(2, "0002_queue", Some("QueueJob")),
    migration!(3, "0003_admin", Some("QueueJobPause")),
    migration!(4, "0004_retention", None),
    migration!(5, "0005_lease_index", None),
    migration!(6, "0006_job_logs", None),
];

const LEDGER: &str = r#"CREATE TABLE IF NOT EXISTS "QueueMigration" (
    "id" INTEGER NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "appliedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
)"#;

/// Apply the migrations of `set` not yet in the ledger. On PostgreSQL `schema` is where the
/// tables and the ledger go (created when missing; `None`: the connection's current schema).
/// `url` names the database in errors (redacted, or a label).
pub(crate) fn migrate<'a>(
    pool: &'a Pool,
    schema: Option<&'a str>,
    set: &'a [Migration],
    url: &'a str,
) -> Run<'a> {
    // Boxed as `Send` here: left to inference, callers' futures are unprovably `Send` (see `db::Fut`).
    Box::pin(async move {
        let err = |e: sqlx::Error| format!("migrating the database {url}: {e}");
        match pool {
            Pool::Pg(p) => {
                // A connection of its own (session settings and the session lock die with it).
                let mut c = p.acquire().await.map_err(err)?.detach();
                let r = postgres(&mut c, schema, set, url).await;
                let _ = c.close().await;
                r
            }
            Pool::Sqlite(p) => {
                let mut c = p.acquire().await.map_err(err)?;
                sqlite(&mut c, set, url).await
            }
        }
    })
}

/// What [`migrate`] returns.
pub(crate) type Run<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>>;

/// Refuse a server older than the oldest supported one, with a clear message.
pub(crate) async fn check_version(pool: &Pool, url: &str) -> Outcome {
    let err = |e: sqlx::Error| format!("the database {url}: {e}");
    match pool {
        Pool::Pg(p) => postgres_version(&mut *p.acquire().await.map_err(err)?, url).await,
        Pool::Sqlite(p) => sqlite_version(&mut *p.acquire().await.map_err(err)?, url).await,
    }
}

fn postgres_version<'a>(c: &'a mut PgConnection, url: &'a str) -> Run<'a> {
    Box::pin(async move {
        let row = sqlx::query(
            "SELECT CAST(current_setting('server_version_num') AS BIGINT) AS n, current_setting('server_version') AS v",
        )
        .fetch_one(&mut *c)
        .await
        .map_err(|e| format!("the database {url}: {e}"))?;
        let n: i64 = row.try_get("n").unwrap_or(0);
        if n < MIN_POSTGRES {
            let v: String = row.try_get("v").unwrap_or_default();
            return Err(format!(
                "the database {url} is PostgreSQL {v}; @chaaskit/queue needs PostgreSQL 14 or later (CREATE OR REPLACE TRIGGER)"
            ));
        }
        Ok(())
    })
}

fn sqlite_version<'a>(c: &'a mut SqliteConnection, url: &'a str) -> Run<'a> {
    Box::pin(async move {
        let v: String = sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&mut *c)
            .await
            .map_err(|e| format!("the database {url}: {e}"))?;
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let got = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if got < MIN_SQLITE {
            return Err(format!(
                "the database {url} runs SQLite {v}; @chaaskit/queue needs SQLite 3.42 or later (unixepoch('subsec'))"
            ));
        }
        Ok(())
    })
}

/// The statements of a script, for one-by-one execution (statements end with `;` at a line's end).
fn statements(script: &str) -> Vec<&str> {
    script
        .split(";\n")
        .map(str::trim)
        .filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        })
        .collect()
}

/// Run SQL text of one or more statements on `c`.
fn raw_pg<'a>(c: &'a mut PgConnection, sql: &'a str) -> Fut<'a, ()> {
    Box::pin(async move { c.execute(sql).await.map(drop) })
}

/// Run SQL text of one or more statements on `c`.
fn raw_lite<'a>(c: &'a mut SqliteConnection, sql: &'a str) -> Fut<'a, ()> {
    Box::pin(async move { c.execute(sql).await.map(drop) })
}

/// Write `m` into the ledger.
fn record_pg<'a>(c: &'a mut PgConnection, m: &'a Migration) -> Fut<'a, ()> {
    Box::pin(async move {
        sqlx::query(r#"INSERT INTO "QueueMigration" ("id", "name") VALUES ($1, $2)"#)
            .bind(m.id)
            .bind(m.name)
            .execute(c)
            .await
            .map(drop)
    })
}

/// The migrations of `set` not in the ledger, in order.
fn pending<'a>(set: &'a [Migration], applied: &[i64]) -> Vec<&'a Migration> {
    set.iter().filter(|m| !applied.contains(&m.id)).collect()
}

fn postgres<'a>(
    c: &'a mut PgConnection,
    schema: Option<&'a str>,
    set: &'a [Migration],
    url: &'a str,
) -> Run<'a> {
    Box::pin(async move {
        let err = |what: String| {
            move |e: sqlx::Error| format!("migrating the database {url} ({what}): {e}")
        };
        postgres_version(c, url).await?;
        raw_pg(&mut *c, "SET client_min_messages = warning")
            .await
            .map_err(err("settings".into()))?;
        // Tried, not waited for: a session waiting inside `pg_advisory_lock` holds a snapshot,
        // and `CREATE INDEX CONCURRENTLY` in the holder's session waits for every snapshot to
        // go (a deadlock). Between tries this session holds nothing.
        let mut pause = Duration::from_millis(20);
        while !sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut *c)
            .await
            .map_err(err("taking the migration lock".into()))?
        {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        if let Some(s) = schema {
            let q = quote_ident(s);
            let sql = format!("CREATE SCHEMA IF NOT EXISTS {q}; SET search_path TO {q}");
            raw_pg(&mut *c, &sql)
                .await
                .map_err(err(format!("schema {s}")))?;
        }
        raw_pg(&mut *c, &LEDGER.replace("TIMESTAMP(3)", "TIMESTAMPTZ(3)"))
            .await
            .map_err(err("the ledger".into()))?;
        let applied: Vec<i64> =
            sqlx::query_scalar(r#"SELECT CAST("id" AS BIGINT) FROM "QueueMigration""#)
                .fetch_all(&mut *c)
                .await
                .map_err(err("reading the ledger".into()))?;
        for m in pending(set, &applied) {
            let e = err(m.name.to_owned());
            let adopt = match m.baseline_of {
                Some(table) => sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
                    .bind(quote_ident(table))
                    .fetch_one(&mut *c)
                    .await
                    .map_err(&e)?,
                None => false,
            };
            if adopt {
                tracing::info!(
                    "queue database {url}: {} adopted (made before the ledger)",
                    m.name
                );
                record_pg(&mut *c, m).await.map_err(&e)?;
            } else if m.postgres.starts_with(CONCURRENTLY) {
                // Not recorded until every statement ran: a run cut short starts it over, so
                // each of its statements must be safe to run again.
                for s in statements(m.postgres) {
                    raw_pg(&mut *c, s).await.map_err(&e)?;
                }
                record_pg(&mut *c, m).await.map_err(&e)?;
            } else {
                let mut tx = c.begin().await.map_err(&e)?;
                raw_pg(&mut tx, m.postgres).await.map_err(&e)?;
                record_pg(&mut tx, m).await.map_err(&e)?;
                tx.commit().await.map_err(&e)?;
            }
        }
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *c)
            .await
            .map_err(err("releasing the migration lock".into()))?;
        Ok(())
    })
}

fn sqlite<'a>(c: &'a mut SqliteConnection, set: &'a [Migration], url: &'a str) -> Run<'a> {
    Box::pin(async move {
        let err = |what: String| {
            move |e: sqlx::Error| format!("migrating the database {url} ({what}): {e}")
        };
        sqlite_version(c, url).await?;
        // The write lock first: concurrent starts (other processes on the file) run one by one.
        let mut tx = c
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(err("taking the write lock".into()))?;
        raw_lite(&mut tx, LEDGER)
            .await
            .map_err(err("the ledger".into()))?;
        let applied: Vec<i64> = sqlx::query_scalar(r#"SELECT "id" FROM "QueueMigration""#)
            .fetch_all(&mut *tx)
            .await
            .map_err(err("reading the ledger".into()))?;
        for m in pending(set, &applied) {
            let e = err(m.name.to_owned());
            let adopt = match m.baseline_of {
                Some(table) => {
                    sqlx::query_scalar::<_, i64>(
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
                    )
                    .bind(table)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(&e)?
                        > 0
                }
                None => false,
            };
            if adopt {
                tracing::info!(
                    "queue database {url}: {} adopted (made before the ledger)",
                    m.name
                );
            } else {
                raw_lite(&mut tx, m.sqlite).await.map_err(&e)?;
            }
            sqlx::query(r#"INSERT INTO "QueueMigration" ("id", "name") VALUES ($1, $2)"#)
                .bind(m.id)
                .bind(m.name)
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
        }
        tx.commit().await.map_err(err("committing".into()))?;
        Ok(())
    })
}
