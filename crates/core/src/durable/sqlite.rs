//! The `sqlite` provider's table: a file (its directory created when missing) shared by the
//! processes of one host, one writer at a time; the statements are the shared [`Table`]'s.

use super::jobs::Jobs;
use super::sql::Statements;
use super::table::Table;
use super::Shared;
use crate::config::{rule, SqliteConfig};
use crate::db::dialect::Dialect;
use crate::db::migrate;
use crate::db::Pool;
use crate::error::{QueueError, Result};
use async_trait::async_trait;
use sqlx::sqlite::SqliteConnectOptions;
use std::str::FromStr;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::mpsc;

/// The `sqlite` provider's table.
pub struct SqliteJobs {
    table: Table,
}

impl SqliteJobs {
    /// A pool for `config.databaseUrl` (WAL, busy timeout; the file and its directory are
    /// created when missing), checked by one round trip.
    pub(super) async fn connect(config: &SqliteConfig) -> Result<SqliteJobs> {
        let url = config.database_url.trim().to_owned();
        rule::scheme_url_of(url.as_str().into(), &["sqlite"])
            .map_err(|e| QueueError::invalid(e.at("providerConfig.databaseUrl").to_string()))?;
        SqliteConnectOptions::from_str(&url).map_err(|e| {
            QueueError::invalid(format!(
                "providerConfig.databaseUrl {url:?} is not valid: {e}"
            ))
        })?;
        let pool = Pool::sqlite(&url)?;
        let sql = Statements::new(Dialect::Sqlite, r#""QueueJob""#, r#""QueueJobPause""#);
        let jobs = SqliteJobs {
            table: Table::new(pool.clone(), pool, sql, url, true),
        };
        jobs.table.ping().await?;
        Ok(jobs)
    }
}

#[async_trait]
impl Jobs for SqliteJobs {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn table(&self) -> &Table {
        &self.table
    }

    /// Apply the queue's migrations not yet in the file's ledger, in one `BEGIN IMMEDIATE`
    /// transaction, so concurrent starts run one by one (see `store::migrate`).
    async fn migrate(&self) -> Result<()> {
        migrate::migrate(&self.table.pool, None, migrate::QUEUE, &self.table.url)
            .await
            .map_err(QueueError::Backend)
    }

    /// No one to tell: `createQueueEvents` needs PostgreSQL.
    async fn listen_events(
        &self,
        _shared: Weak<Shared>,
    ) -> Result<mpsc::UnboundedReceiver<String>> {
        Err(crate::admin::unsupported(
            self.name(),
            "createQueueEvents (events across processes; use worker.on in the worker's process)",
        ))
    }

    /// Other processes sharing the file cannot wake this one.
    fn hears_other_processes(&self) -> bool {
        false
    }

    fn fallback_poll(&self) -> Duration {
        Duration::from_millis(100)
    }

    /// One writer.
    fn enqueue_concurrency(&self) -> usize {
        1
    }
}
