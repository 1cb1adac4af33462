//! What only SQLite has: a file (its directory created when missing) shared by the processes
//! of one host, and its own connect. The statements are in `sql.rs`.

use super::jobs::Jobs;
use super::sql::Statements;
use crate::config::SqliteConfig;
use crate::error::{QueueError, Result};
use crate::store::db::Pool;
use crate::store::dialect::Dialect;
use crate::store::migrate;
use sqlx::sqlite::SqliteConnectOptions;
use std::str::FromStr;

impl Jobs {
    /// A pool for `config.databaseUrl` (WAL, busy timeout; the file and its directory are
    /// created when missing), checked by one round trip.
    pub(super) async fn connect_sqlite(config: &SqliteConfig) -> Result<Jobs> {
        let url = config.database_url.trim().to_owned();
        if !url.starts_with("sqlite:") {
            return Err(QueueError::invalid(format!(
                "providerConfig.databaseUrl must be a sqlite: URL when type is 'sqlite', got {url:?}"
            )));
        }
        let opts = SqliteConnectOptions::from_str(&url).map_err(|e| {
            QueueError::invalid(format!(
                "providerConfig.databaseUrl {url:?} is not valid: {e}"
            ))
        })?;
        let file = opts.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !url.contains(":memory:") && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    QueueError::Backend(format!(
                        "cannot create the directory {dir:?} of the queue database {url}: {e}"
                    ))
                })?;
            }
        }
        let pool = Pool::sqlite(&url)?;
        let d = Dialect::Sqlite;
        let sql = Statements::new(d, r#""QueueJob""#, r#""QueueJobPause""#);
        let jobs = Jobs::new(d, pool.clone(), pool, sql, String::new(), url);
        jobs.ping().await?;
        Ok(jobs)
    }

    /// Apply the queue's migrations not yet in the file's ledger, in one `BEGIN IMMEDIATE`
    /// transaction, so concurrent starts run one by one (see `store::migrate`).
    pub(super) async fn migrate_sqlite(&self) -> Result<()> {
        migrate::migrate(&self.pool, None, migrate::QUEUE, &self.url)
            .await
            .map_err(QueueError::Backend)
    }
}
