//! The two database drivers behind one small surface: connect, run a statement with bound
//! values, read a column. Dates cross as epoch milliseconds and are stored as each dialect keeps them.
//! Shared by the scheduler's store and the durable queue providers; calls return the driver's
//! error, which each caller words for its own database.

pub(crate) mod dialect;
pub(crate) mod migrate;

use crate::error::{QueueError, Result};
use crate::job::Millis;
use crate::pg_schema::quote_ident;
use crate::redact::redact_url;
use chrono::{DateTime, NaiveDateTime};
use dialect::Dialect;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Database, Decode, Encode, PgConnection, PgPool, Postgres, Row as _, Sqlite};
use sqlx::{SqliteConnection, SqlitePool, Transaction, Type};
use std::str::FromStr;
use std::time::Duration;

/// A value bound to a `$n` placeholder.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Flag(bool),
    Float(f64),
    Time(Millis),
    OptTime(Option<Millis>),
    /// A batch of rows, one [`Column`] per field, bound as the dialect binds a batch
    /// (see `Dialect::rows`): PostgreSQL, one array per column; SQLite, one JSON array of rows.
    Rows(&'a [Column<'a>]),
}

/// One field of every row of a batch.
#[derive(Clone, Debug)]
pub(crate) enum Column<'a> {
    Text(Vec<&'a str>),
    OptText(Vec<Option<&'a str>>),
    Int(Vec<i64>),
    OptInt(Vec<Option<i64>>),
}

impl Column<'_> {
    fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::OptText(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::OptInt(v) => v.len(),
        }
    }

    fn json(&self, i: usize) -> Value {
        match self {
            Column::Text(v) => Value::from(v[i]),
            Column::OptText(v) => v[i].map_or(Value::Null, Value::from),
            Column::Int(v) => Value::from(v[i]),
            Column::OptInt(v) => v[i].map_or(Value::Null, Value::from),
        }
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;
type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// A batch on PostgreSQL: one array parameter per column.
fn pg_rows<'q>(mut q: PgQuery<'q>, cols: &'q [Column<'q>]) -> PgQuery<'q> {
    for c in cols {
        q = match c {
            Column::Text(v) => q.bind(v.as_slice()),
            Column::OptText(v) => q.bind(v.as_slice()),
            Column::Int(v) => q.bind(v.as_slice()),
            Column::OptInt(v) => q.bind(v.as_slice()),
        };
    }
    q
}

/// A batch on SQLite: one parameter, the JSON array of the rows, each an array of its fields.
fn sqlite_rows<'q>(q: SqliteQuery<'q>, cols: &'q [Column<'q>]) -> SqliteQuery<'q> {
    let n = cols.first().map_or(0, Column::len);
    let rows: Vec<Value> = (0..n)
        .map(|i| Value::Array(cols.iter().map(|c| c.json(i)).collect()))
        .collect();
    q.bind(Value::Array(rows).to_string())
}

/// What a database call returns: a boxed `Send` future (an `async fn` here would leave its
/// callers' futures unprovably `Send`, a known limit of the compiler with these drivers).
pub(crate) type Fut<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = sqlx::Result<T>> + Send + 'a>>;

/// A connection pool of either kind.
#[derive(Clone)]
pub(crate) enum Pool {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

/// A transaction of either kind.
pub(crate) enum Tx {
    Pg(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// A connection of either kind.
enum Conn<'c> {
    Pg(&'c mut PgConnection),
    Sqlite(&'c mut SqliteConnection),
}

/// A result row of either kind.
pub(crate) enum Row {
    Pg(PgRow),
    Sqlite(SqliteRow),
}

/// How long a call waits for a PostgreSQL connection before it fails (the database is down).
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings of every PostgreSQL pool here: up to `max` connections, each call waiting
/// [`PG_ACQUIRE_TIMEOUT`] for one at most.
pub(crate) fn pg_pool_options(max: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
}

impl Pool {
    /// A PostgreSQL pool whose `search_path` is `schema` when one is given; connections open
    /// on first use (call inside a tokio runtime).
    pub(crate) fn postgres(url: &str, schema: Option<&str>) -> Result<Pool> {
        let mut opts = PgConnectOptions::from_str(url).map_err(|e| {
            QueueError::invalid(format!("invalid PostgreSQL URL {:?}: {e}", redact_url(url)))
        })?;
        if let Some(schema) = schema {
            opts = opts.options([("search_path", quote_ident(schema))]);
        }
        Ok(Pool::Pg(pg_pool_options(4).connect_lazy_with(opts)))
    }

    /// A SQLite pool for a `sqlite:` URL, creating the file if missing; connections open on
    /// first use (call inside a tokio runtime).
    pub(crate) fn sqlite(url: &str) -> Result<Pool> {
        Ok(Pool::Sqlite(Self::sqlite_pool(url)?))
    }

    /// The pool of [`Pool::sqlite`] itself (the sqlite queue provider shares its settings).
    /// The file's directory is created when missing, as the file is.
    pub(crate) fn sqlite_pool(url: &str) -> Result<sqlx::SqlitePool> {
        let opts = SqliteConnectOptions::from_str(url).map_err(|e| {
            QueueError::invalid(format!("invalid SQLite URL {:?}: {e}", redact_url(url)))
        })?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let dir = opts.get_filename().parent().map(ToOwned::to_owned);
        if let Some(dir) = dir.filter(|d| !in_memory && !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::create_dir_all(&dir).map_err(|e| {
                QueueError::Backend(format!(
                    "cannot create the directory {dir:?} of the SQLite database {}: {e}",
                    redact_url(url)
                ))
            })?;
        }
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        // An in-memory database lives as long as its one connection.
        let (connections, idle, lifetime) = if in_memory {
            (1, None, None)
        } else {
            (
                4,
                Some(Duration::from_secs(600)),
                Some(Duration::from_secs(1800)),
            )
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .idle_timeout(idle)
            .max_lifetime(lifetime)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(opts);
        Ok(pool)
    }

    /// Open up to `n` connections at once and leave them idle in the pool, so that the first
    /// statements of a burst do not each wait for a connection to be made (on PostgreSQL with
    /// TLS, tens of milliseconds). Failures are left for the statements to meet.
    pub(crate) async fn warm(&self, n: usize) {
        use futures_util::future::join_all;
        match self {
            Pool::Pg(p) => {
                let n = n.min(p.options().get_max_connections() as usize);
                drop(join_all((0..n).map(|_| p.acquire())).await)
            }
            Pool::Sqlite(p) => {
                let n = n.min(p.options().get_max_connections() as usize);
                drop(join_all((0..n).map(|_| p.acquire())).await)
            }
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Pool::Pg(_) => Dialect::Postgres,
            Pool::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Run SQL text of several statements, without parameters.
    pub(crate) fn script<'a>(&'a self, sql: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            match self {
                Pool::Pg(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
                Pool::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
            }
        })
    }

    /// Begin a transaction with `statement` (`BEGIN`, `BEGIN IMMEDIATE`).
    pub(crate) fn begin(&self, statement: &'static str) -> Fut<'_, Tx> {
        Box::pin(async move {
            Ok(match self {
                Pool::Pg(p) => Tx::Pg(p.begin_with(statement).await?),
                Pool::Sqlite(p) => Tx::Sqlite(p.begin_with(statement).await?),
            })
        })
    }

    /// The rows of one statement.
    pub(crate) fn fetch<'a>(&'a self, sql: &'a str, args: &'a [Arg<'a>]) -> Fut<'a, Vec<Row>> {
        Box::pin(async move {
            match self {
                Pool::Pg(p) => Conn::Pg(&mut *p.acquire().await?).fetch(sql, args).await,
                Pool::Sqlite(p) => {
                    Conn::Sqlite(&mut *p.acquire().await?)
                        .fetch(sql, args)
                        .await
                }
            }
        })
    }

    /// Run one statement; the number of rows it changed.
    pub(crate) fn execute<'a>(&'a self, sql: &'a str, args: &'a [Arg<'a>]) -> Fut<'a, u64> {
        Box::pin(async move {
            match self {
                Pool::Pg(p) => Conn::Pg(&mut *p.acquire().await?).execute(sql, args).await,
                Pool::Sqlite(p) => {
                    Conn::Sqlite(&mut *p.acquire().await?)
                        .execute(sql, args)
                        .await
                }
            }
        })
    }
}

impl Tx {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Pg(t) => Conn::Pg(&mut *t),
            Tx::Sqlite(t) => Conn::Sqlite(&mut *t),
        }
    }

    pub(crate) fn fetch<'a>(&'a mut self, sql: &'a str, args: &'a [Arg<'a>]) -> Fut<'a, Vec<Row>> {
        Box::pin(async move { self.conn().fetch(sql, args).await })
    }

    pub(crate) fn commit(self) -> Fut<'static, ()> {
        Box::pin(async move {
            match self {
                Tx::Pg(t) => t.commit().await,
                Tx::Sqlite(t) => t.commit().await,
            }
        })
    }
}

/// A PostgreSQL `TIMESTAMP(3)` value (UTC) for epoch milliseconds.
fn pg_time(ms: Millis) -> NaiveDateTime {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .naive_utc()
}

/// A statement of database `DB` being bound.
type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// Bind `args` in order, with dates as `time` makes them and batches as `rows` binds them.
fn bind<'q, DB, T>(
    mut q: Query<'q, DB>,
    args: &[Arg<'q>],
    time: fn(Millis) -> T,
    rows: fn(Query<'q, DB>, &'q [Column<'q>]) -> Query<'q, DB>,
) -> Query<'q, DB>
where
    DB: Database,
    T: 'q + Send + Encode<'q, DB> + Type<DB>,
    Option<T>: Encode<'q, DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB>,
    bool: Encode<'q, DB> + Type<DB>,
    f64: Encode<'q, DB> + Type<DB>,
{
    for a in args {
        q = match *a {
            Arg::Text(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::OptInt(v) => q.bind(v),
            Arg::Flag(v) => q.bind(v),
            Arg::Float(v) => q.bind(v),
            Arg::Time(v) => q.bind(time(v)),
            Arg::OptTime(v) => q.bind(v.map(time)),
            Arg::Rows(cols) => rows(q, cols),
        };
    }
    q
}

impl Conn<'_> {
    async fn fetch(self, sql: &str, args: &[Arg<'_>]) -> sqlx::Result<Vec<Row>> {
        Ok(match self {
            Conn::Pg(c) => bind(sqlx::query(sql), args, pg_time, pg_rows)
                .fetch_all(c)
                .await?
                .into_iter()
                .map(Row::Pg)
                .collect(),
            Conn::Sqlite(c) => bind(sqlx::query(sql), args, std::convert::identity, sqlite_rows)
                .fetch_all(c)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
        })
    }

    async fn execute(self, sql: &str, args: &[Arg<'_>]) -> sqlx::Result<u64> {
        Ok(match self {
            Conn::Pg(c) => bind(sqlx::query(sql), args, pg_time, pg_rows)
                .execute(c)
                .await?
                .rows_affected(),
            Conn::Sqlite(c) => bind(sqlx::query(sql), args, std::convert::identity, sqlite_rows)
                .execute(c)
                .await?
                .rows_affected(),
        })
    }
}

/// Date text SQLite may hold (`CURRENT_TIMESTAMP` defaults, ISO strings), read as UTC.
const SQLITE_DATE_FORMATS: [&str; 3] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S%.f",
];

fn column_error(col: &str, why: impl std::fmt::Display) -> QueueError {
    QueueError::Store(format!("database column {col} {why}"))
}

impl Row {
    /// A column of a type both drivers decode the same way (text, booleans).
    pub(crate) fn get<T>(&self, col: &str) -> Result<T>
    where
        T: for<'r> Decode<'r, Postgres>
            + Type<Postgres>
            + for<'r> Decode<'r, Sqlite>
            + Type<Sqlite>,
    {
        match self {
            Row::Pg(r) => r.try_get(col),
            Row::Sqlite(r) => r.try_get(col),
        }
        .map_err(|e| column_error(col, e))
    }

    /// A nullable date column as epoch milliseconds. SQLite may hold an integer or text.
    pub(crate) fn opt_time(&self, col: &str) -> Result<Option<Millis>> {
        let r = match self {
            Row::Pg(r) => {
                let t: Option<NaiveDateTime> = r.try_get(col).map_err(|e| column_error(col, e))?;
                return Ok(t.map(|t| t.and_utc().timestamp_millis()));
            }
            Row::Sqlite(r) => r,
        };
        if let Ok(v) = r.try_get::<Option<i64>, _>(col) {
            return Ok(v);
        }
        let text: String = r.try_get(col).map_err(|e| column_error(col, e))?;
        SQLITE_DATE_FORMATS
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(&text, f).ok())
            .map(|t| t.and_utc().timestamp_millis())
            .or_else(|| {
                DateTime::parse_from_rfc3339(&text)
                    .ok()
                    .map(|t| t.timestamp_millis())
            })
            .map(Some)
            .ok_or_else(|| column_error(col, format_args!("holds {text:?}, not a date")))
    }

    /// A date column that may not be NULL.
    pub(crate) fn time(&self, col: &str) -> Result<Millis> {
        self.opt_time(col)?
            .ok_or_else(|| column_error(col, "is NULL"))
    }
}
