//! [`Jobs`]: a durable provider's backend, one implementation per database. What both share
//! is the [`Table`] each holds; the trait is what differs (wake-ups, events, bulk insert,
//! migration, how often to look).

use super::table::Table;
use super::{Insert, Inserted, Shared};
use crate::error::Result;
use async_trait::async_trait;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// The jobs table of a PostgreSQL or an SQLite database.
#[async_trait]
pub trait Jobs: Send + Sync + 'static {
    /// `"postgres"` or `"sqlite"`.
    fn name(&self) -> &'static str;

    /// The statements both databases run alike.
    fn table(&self) -> &Table;

    /// The PostgreSQL schema of the table, which NOTIFY payloads name (empty elsewhere).
    fn schema(&self) -> &str {
        ""
    }

    /// Apply the migrations the database lacks (see `store::migrate`).
    async fn migrate(&self) -> Result<()>;

    /// Insert; rows whose deduplication key is taken by an unfinished job are skipped.
    /// Returns what the database decided for the inserted rows, in any order.
    async fn insert(&self, jobs: &[&Insert]) -> Result<Vec<Inserted>> {
        self.table().insert(jobs).await
    }

    /// After a purge that deleted rows: reclaim their space if the server will not on its own.
    /// Whether it did.
    async fn vacuum_if_unattended(&self) -> Result<bool> {
        Ok(false)
    }

    /// Tell other processes' idle receivers that jobs are visible (none to tell by default:
    /// they poll).
    async fn notify_others(&self) -> Result<()> {
        Ok(())
    }

    /// Tell every process that job `id` was cancelled, so a worker running it aborts.
    async fn notify_cancel(&self, _id: &str) -> Result<()> {
        Ok(())
    }

    /// Publish event payloads (see [`crate::events::encode`]) to other processes, in one
    /// statement (none by default).
    async fn publish(&self, _payloads: &[String]) -> Result<()> {
        Ok(())
    }

    /// The raw payloads of the events channel for this queue, from the moment this resolves
    /// until the receiver is dropped or the provider closes.
    async fn listen_events(&self, shared: Weak<Shared>) -> Result<UnboundedReceiver<String>>;

    /// Deliver wake-ups from other processes to `wake` until closed (none by default).
    fn listen(&self, _wake: Weak<Shared>) {}

    /// Whether every change another process makes that lets a job be claimed wakes this
    /// one's receivers.
    fn hears_other_processes(&self) -> bool;

    /// Longest sleep of an idle receiver between looks at the table.
    fn fallback_poll(&self) -> Duration;

    /// Enqueue statements worth running at once.
    fn enqueue_concurrency(&self) -> usize;

    /// The statement of an enqueue on a caller's connection inside its transaction, when the
    /// database has one.
    fn tx_insert(&self) -> Option<&str> {
        None
    }
}
